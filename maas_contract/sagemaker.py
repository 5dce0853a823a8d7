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


# Batched serving in the AWS PyTorch inference container: TorchServe under the SageMaker
# PyTorch inference toolkit. The toolkit runs input_fn/predict_fn/output_fn once per request
# even inside a TorchServe batch, so the model's code/inference.py ships its own TorchServe
# entry point, `handle`, which takes the whole batch; TorchServe calls it instead of the
# toolkit's when TS_DEFAULT_SERVICE_HANDLER names it (the toolkit's TorchServe config sets
# enable_envvars_config=true, and TorchServe then reads any property from a TS_<NAME>
# variable). TorchServe imports the module by its file's stem from sys.path, where the
# toolkit puts /opt/ml/model/code. Batch size and delay go through the toolkit's own
# variables, which it writes into TorchServe's model config.
# - https://pytorch.org/serve/configuration.html (environment variables, enable_envvars_config)
# - https://github.com/aws/sagemaker-pytorch-inference-toolkit, ts_parameters.py and
#   ts_environment.py (the SAGEMAKER_TS_* names; defaults batch 1, delay 100 ms, 1 worker,
#   60 s, the moment any of them is set)
BATCH_HANDLER_ENV = "TS_DEFAULT_SERVICE_HANDLER"
BATCH_SIZE_ENV = "SAGEMAKER_TS_BATCH_SIZE"
MAX_BATCH_DELAY_ENV = "SAGEMAKER_TS_MAX_BATCH_DELAY"  # milliseconds
MIN_WORKERS_ENV = "SAGEMAKER_TS_MIN_WORKERS"
MAX_WORKERS_ENV = "SAGEMAKER_TS_MAX_WORKERS"
RESPONSE_TIMEOUT_ENV = "SAGEMAKER_TS_RESPONSE_TIMEOUT"  # seconds
BATCH_HANDLER = "/opt/ml/model/code/inference.py:handle"
# 8 requests: the concurrent requests on one instance share the per-request work (decoding,
# the forward pass's fixed cost); a larger batch makes each of them wait for a longer forward
# pass for less and less gain per input (bench/RESULTS.md: the image model alone runs only
# 1.63x faster per input at batch 16 than at 1, on 2 CPU threads).
SERVING_BATCH_SIZE = 8
# 5 ms: what a lone request may wait for company. TorchServe's default (100 ms) would add up to
# that much to every request under light traffic, more than the model itself takes.
SERVING_MAX_BATCH_DELAY_MS = 5
# One worker per instance, stated rather than left to the toolkit's default of one: a second
# worker would split the queue and halve the batches, and PyTorch already spreads one forward
# pass over the instance's cores. On an instance type with several GPUs it uses one GPU.
SERVING_WORKERS = 1
# InvokeEndpoint: "A customer's model containers must respond to requests within 60 seconds."
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
SERVING_RESPONSE_TIMEOUT_S = 60


def batched_serving_environment(
    *,
    batch_size: int = SERVING_BATCH_SIZE,
    max_batch_delay_ms: int = SERVING_MAX_BATCH_DELAY_MS,
    workers: int = SERVING_WORKERS,
    response_timeout_s: int = SERVING_RESPONSE_TIMEOUT_S,
) -> dict[str, str]:
    """The model container's environment for batched serving: TorchServe hands
    code/inference.py's `handle` up to `batch_size` requests at once, waiting at most
    `max_batch_delay_ms` for them. The local emulator's model servers read the same names."""
    if batch_size < 1 or max_batch_delay_ms < 0 or workers < 1 or response_timeout_s < 1:
        raise ValueError("batch size, workers and timeout must be positive, the delay >= 0")
    return {
        BATCH_HANDLER_ENV: BATCH_HANDLER,
        BATCH_SIZE_ENV: str(batch_size),
        MAX_BATCH_DELAY_ENV: str(max_batch_delay_ms),
        MIN_WORKERS_ENV: str(workers),
        MAX_WORKERS_ENV: str(workers),
        RESPONSE_TIMEOUT_ENV: str(response_timeout_s),
    }
