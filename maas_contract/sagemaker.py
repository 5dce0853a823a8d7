"""SageMaker's documented rules that maas relies on, in one place.

Sources (AWS documentation):
- Instance store volumes, "Instance types that support local instance storage":
  https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html
- ResourceConfig.VolumeKmsKeyId: "You can't request a VolumeKmsKeyId when using an instance
  type with local storage."
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html
- CreateEndpointConfig.KmsKeyId: "If you specify a value for KmsKeyId when using any
  nitro-based instances with local storage, the call to CreateEndpointConfig fails."
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html
- Deployment guardrails, Exclusions: blue/green and rolling deployments need the new endpoint
  config to keep the old config's variant names.
  https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html
"""

from __future__ import annotations

import re

# ml.<family>.<size>; families whose instances carry NVMe instance storage. SageMaker mounts
# that storage instead of an EBS volume, and encrypts it in hardware, so it refuses a KMS key
# for the volume.
LOCAL_STORAGE_FAMILIES = frozenset(
    {
        "c5d",
        "c6gd",
        "c6id",
        "g4dn",
        "g5",
        "g6",
        "g6e",
        "gr6",
        "m5d",
        "m6gd",
        "m6id",
        "p4d",
        "p4de",
        "p5",
        "p5e",
        "p5en",
        "p6-b200",
        "r5d",
        "r6gd",
        "r6id",
        "trn1",
        "trn1n",
        "trn2",
        "x2iedn",
    }
)
# Families with NVIDIA GPUs: CUDA images and GPU-only recipes.
GPU_FAMILIES = frozenset(
    {"p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "g4dn", "g5", "g6", "g6e", "gr6"}
)
# Families may carry a suffix after a hyphen: ml.p6-b200.48xlarge, ml.m7i-flex.large.
_INSTANCE_TYPE = re.compile(
    r"^ml\.([a-z0-9]+(?:-[a-z0-9]+)*)\.([0-9]*x?large|medium|small|metal[-a-z0-9]*)$"
)

# One variant name per endpoint, for every version: blue/green and rolling updates need the
# new config to keep the old variant name. The version lives in the registry, the config
# name, the tags and the model server's CustomAttributes answer.
VARIANT_NAME = "AllTraffic"
# What the model server puts in the response's CustomAttributes to say which version answered.
VERSION_ATTRIBUTE = "maas-version"


def instance_family(instance_type: str) -> str:
    """`ml.g5.xlarge` -> `g5`; ValueError for anything that is not an ml.* instance type."""
    match = _INSTANCE_TYPE.match(instance_type)
    if not match:
        raise ValueError(f"{instance_type!r} is not a SageMaker ml.* instance type")
    return match.group(1)


def has_local_storage(instance_type: str) -> bool:
    """True where SageMaker refuses a KMS key for the instance's storage volume."""
    return instance_family(instance_type) in LOCAL_STORAGE_FAMILIES


def is_gpu(instance_type: str) -> bool:
    return instance_family(instance_type) in GPU_FAMILIES


def volume_kms_allowed(instance_types: list[str] | tuple[str, ...]) -> bool:
    """Whether a volume KMS key may be set for a job or an endpoint config on these types."""
    return not any(has_local_storage(t) for t in instance_types)


def version_attribute(version: int | str) -> str:
    return f"{VERSION_ATTRIBUTE}={version}"


def parse_version_attribute(custom_attributes: str | None) -> int | None:
    """The version a model server reported, from a CustomAttributes value such as
    `maas-version=3` or `trace=abc,maas-version=3`; None when it reported none."""
    for part in (custom_attributes or "").replace(";", ",").split(","):
        key, _, value = part.strip().partition("=")
        if key == VERSION_ATTRIBUTE and value.isdigit():
            return int(value)
    return None


# The model container's environment carries its version; the model server answers with
# `maas-version=<N>` in CustomAttributes, so predict can say which fleet really answered
# while a canary splits traffic under the one variant name.
MODEL_VERSION_ENV = "MAAS_MODEL_VERSION"
