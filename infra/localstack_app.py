"""The slice of the platform that LocalStack's community runtime can host: the ArtifactStore.

`cdklocal deploy` runs this app against LocalStack in the LocalStack test tier, so the bucket and
key settings the cloud stack relies on are checked on a deployed stack, not only in a template.
Run it through the CDK CLI: `cdklocal deploy --app "python -m infra.localstack_app"`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402  (jsii reads the variable above when it starts)

from infra.artifact_store import ArtifactStore  # noqa: E402

STACK_NAME = "maas-localstack-store"
LOCALSTACK_ACCOUNT = "000000000000"
REPO_ROOT = Path(__file__).resolve().parent.parent


def build(outdir: str | None = None) -> cdk.App:
    # The same feature flags as the cloud app, so the store synthesises the same way.
    flags = {
        key: value
        for key, value in json.loads((REPO_ROOT / "cdk.json").read_text())["context"].items()
        if key.startswith("@aws-cdk/")
    }
    app = cdk.App(outdir=outdir, context=flags)
    stack = cdk.Stack(
        app,
        STACK_NAME,
        env=cdk.Environment(account=LOCALSTACK_ACCOUNT, region="us-east-1"),
        description="maas ArtifactStore on LocalStack",
    )
    store = ArtifactStore(
        stack,
        "Store",
        removal_policy=cdk.RemovalPolicy.DESTROY,
        capture_retention=cdk.Duration.days(7),
    )
    for name, bucket in {
        "DataBucket": store.data,
        "ArtifactBucket": store.artifacts,
        "CaptureBucket": store.capture,
        "AccessLogBucket": store.access_logs,
    }.items():
        cdk.CfnOutput(stack, name, value=bucket.bucket_name)
    cdk.CfnOutput(stack, "KeyArn", value=store.key.key_arn)
    return app


if __name__ == "__main__":
    build(os.environ.get("CDK_OUTDIR")).synth()
