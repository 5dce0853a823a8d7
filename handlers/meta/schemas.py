"""What the API's description says about errors: which statuses each operation may answer,
every one of them in maas_contract.errors' one body (components/schemas/Error)."""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_STATUSES = {
    "400": "Invalid request (pydantic's message)",
    "401": "Missing, expired or untrusted bearer token (API Gateway)",
    "403": "Missing scope, or missing API key (API Gateway)",
    "404": "Unknown model, version, deployment or job",
    "409": "Conflict",
    "413": "Body over 6,291,456 bytes (API Gateway: over 10 MB)",
    "415": "Unsupported content type",
    "429": "Usage plan's rate or quota exceeded (API Gateway)",
    "500": "Internal error",
    "502": "The model or SageMaker failed, or the integration failed (API Gateway)",
    "503": "Throttled or model not ready (see Retry-After)",
    "504": "The model timed out, or the 29 s integration timeout passed (API Gateway)",
}
# Groups whose routes call SageMaker, which throttles and has models that are not ready.
SAGEMAKER_GROUPS = {"predict", "deployments", "training_jobs"}


def error_statuses(method: str, operation: dict[str, Any]) -> list[str]:
    """The error statuses an operation declares."""
    # Every route sits behind the authorizer, the usage plan and the Lambda integration.
    statuses = ["400", "401", "403", "404", "429", "500", "502", "504"]
    if method in ("post", "delete"):
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    if operation["tags"][0] in SAGEMAKER_GROUPS:
        statuses.append("503")
    return sorted(statuses)


def error_response(status: str) -> dict[str, Any]:
    return {
        "description": ERROR_STATUSES[status],
        "content": {"application/json": {"schema": ERROR_REF}},
    }
