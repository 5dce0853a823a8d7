"""Which Powertools release each pinned public layer version carries.

Lambda numbers layer versions 1, 2, 3...; the number says nothing about the Powertools
release inside. Powertools publishes every release as one layer version, the same number for
every runtime and architecture, and records the pair in the public SSM parameter
`/aws/service/powertools/python/{arch}/{python_version}/{release}`, whose value is the layer
ARN. Only versions listed here may be pinned in cdk.json, so the release the handlers run on
in the cloud is known at synth time and checked against pyproject's floor by the tests.

Sources:
- Layer ARN format, SSM parameters: https://docs.powertools.aws.dev/lambda/python/latest/getting-started/install/
- 27 = 3.23.0 (python313 and python314 layers of Nov 13 2025):
  https://github.com/aws-powertools/powertools-lambda-python/issues/7689
- 36 = 3.31.1, the release pinned; confirm before a deploy with
  `aws ssm get-parameter --name /aws/service/powertools/python/arm64/python3.14/3.31.1`.
"""

from __future__ import annotations

LAYER_RELEASES: dict[int, str] = {
    27: "3.23.0",
    36: "3.31.1",
}
# The handlers import aws_lambda_powertools.event_handler.request (absent before 3.27) and
# pass status_code= to route decorators (accepted from 3.28).
MINIMUM_RELEASE = "3.28.0"


def release_tuple(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def release_of(layer_version: int) -> str:
    """The Powertools release in `layer_version`; ValueError for a layer we cannot vouch for."""
    if layer_version not in LAYER_RELEASES:
        raise ValueError(
            f"Powertools layer version {layer_version} is not in infra/powertools_layer.py; "
            "add it with the release it carries"
        )
    return LAYER_RELEASES[layer_version]


def check_layer(layer_version: int) -> str:
    """The layer's release, or ValueError if it is older than the handlers need."""
    release = release_of(layer_version)
    if release_tuple(release) < release_tuple(MINIMUM_RELEASE):
        raise ValueError(
            f"Powertools layer version {layer_version} carries {release}; the handlers need "
            f">= {MINIMUM_RELEASE}"
        )
    return release
