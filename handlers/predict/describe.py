"""The Open Inference Protocol's model metadata and readiness, from the registry and the
endpoint's status."""

from __future__ import annotations

from botocore.exceptions import ClientError

from handlers.predict.schemas import MetadataTensor, ModelMetadata, ModelReadiness
from handlers.predict.service import SERVING, _pinnable
from handlers.registry import service as registry
from handlers.registry.schemas import TensorSpec
from handlers.shared import aws, registry_table
from handlers.shared.errors import aws_error_code, from_control_plane, unavailable


def metadata(model: str, version: int | None = None) -> ModelMetadata:
    """OIP metadata: the version's registered schema; without one, the live version's (else
    the latest's)."""
    item = registry.get_model(model)
    shown = registry.get_version(model, version or int(item.live_version or item.latest_version))
    return ModelMetadata(
        name=model,
        versions=[str(item.live_version)] if item.live_version else [],
        inputs=[_tensor(spec) for spec in shown.input_schema.inputs],
        outputs=[_tensor(spec) for spec in shown.input_schema.outputs],
    )


def _tensor(spec: TensorSpec) -> MetadataTensor:
    return MetadataTensor(name=spec.name, datatype=spec.datatype, shape=spec.shape)


def readiness(model: str, version: int | None = None) -> ModelReadiness:
    """Ready while a fleet of the model's endpoint serves; 503 otherwise. A version is ready
    only while it can be pinned: it is live and no deployment is in progress."""
    item = registry.get_model(model)
    if version is not None:
        registry.get_version(model, version)  # 404 for a version never registered
        table_item = registry_table.get_model(model) or {}
        refusal = _pinnable(table_item, version)
        if refusal is not None:
            raise unavailable(refusal.message, "ModelNotReady", retry_after=30)
    try:
        status = aws.sagemaker().describe_endpoint(EndpointName=item.endpoint_name)
    except ClientError as exc:
        if aws_error_code(exc) != "ValidationException":
            raise from_control_plane(exc) from exc
        status = {"EndpointStatus": "NotCreated"}
    if status.get("EndpointStatus") not in SERVING:
        raise unavailable(f"model {model} is not ready", "ModelNotReady", retry_after=30)
    return ModelReadiness(name=model, ready=True)
