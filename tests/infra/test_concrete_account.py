"""A stage that names its AWS account in cdk.json synthesises, cdk-nag included.

With a literal account, `Stack.format_arn` writes the account number into the ARN instead of
the `AWS::AccountId` token, so every IAM5 acknowledgement must spell the finding the same way
or cdk-nag fails the synthesis.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_a_stage_with_a_literal_account_passes_cdk_nag(tmp_path):
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    stages = copy.deepcopy(context["maas:stages"])
    stages["dev"]["account"] = "111122223333"
    env = {
        **os.environ,
        "CDK_OUTDIR": str(tmp_path),
        "CDK_CONTEXT_JSON": json.dumps({"stage": "dev", "maas:stages": stages}),
    }

    done = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    template = json.loads((tmp_path / "maas-dev.template.json").read_text())
    assert "111122223333" in json.dumps(template)
