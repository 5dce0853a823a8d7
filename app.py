#!/usr/bin/env python3
"""CDK entry point: `npx cdk deploy -c stage=dev` (one stage) or `python app.py` (every stage
in cdk.json). Offline: no Docker, no AWS credentials; stage settings come from cdk.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parent


def main() -> int:
    from infra.assembly import build_app, stage_names
    from infra.config import ConfigError
    from maas_contract.routes import OpenApiError

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    # `cdk -c stage=dev` reaches us through CDK_CONTEXT_JSON; plain `python app.py` builds all.
    cli_context = json.loads(os.environ.get("CDK_CONTEXT_JSON", "{}"))
    requested = cli_context.get("stage") or os.environ.get("MAAS_STAGE")
    try:
        app = build_app(
            repo_root=REPO_ROOT,
            context={**context, **cli_context},
            stages=stage_names(context, requested),
            outdir=os.environ.get("CDK_OUTDIR", str(REPO_ROOT / "cdk.out")),
        )
        app.synth()
    except (ConfigError, OpenApiError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
