"""The document's OpenAPI links: which answer gives the identifiers a next call needs.

A link says, for one answer of one operation, how to fill another operation's parameters from
that answer (OpenAPI 3.1, Link Object). Clients follow them to chain calls; schemathesis's
stateful phase follows them to reach resources that exist (a job it started, a version it
registered), where random identifiers would only ever meet a 404.

Targets are named by (path, method) and take the operation id the document gives them, so the
ids stay defined in one place (service.OPERATION_IDS). A link whose source or target route is
not in the document is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JOB = "/v1/training-jobs/{job_id}"
MODEL = "/v1/models/{model}"
VERSIONS = "/v1/models/{model}/versions"
VERSION = "/v1/models/{model}/versions/{version}"
DEPLOYMENTS = "/v1/models/{model}/deployments"
DEPLOYMENT = "/v1/models/{model}/deployments/{deployment_id}"
ROLLBACK = "/v1/models/{model}/rollback"
ENDPOINT = "/v1/models/{model}/endpoint"
PREDICT = "/v1/models/{model}/predict"
OIP_MODEL = "/v2/models/{model}"
OIP_READY = "/v2/models/{model}/ready"
OIP_VERSION = "/v2/models/{model}/versions/{version}"
OIP_VERSION_READY = "/v2/models/{model}/versions/{version}/ready"


@dataclass(frozen=True)
class Link:
    name: str
    source: tuple[str, str, str]  # (path, method, status) of the answer that carries the values
    target: tuple[str, str]  # (path, method) of the operation they fill
    parameters: dict[str, str]  # parameter -> runtime expression
    description: str


def _from(body: str, **fields: str) -> dict[str, str]:
    """Parameters read from the answer's JSON body, under `body` (a JSON pointer prefix)."""
    return {name: f"$response.body#{body}/{field}" for name, field in fields.items()}


_JOB = _from("", job_id="id")
_MODEL_AND_VERSION = _from("", model="model", version="version")
_DEPLOYMENT = _from("", model="model", deployment_id="id")
_STARTED = ("/v1/training-jobs", "post", "201")
_STOPPED = (JOB, "delete", "202")
_REGISTERED = (VERSIONS, "post", "201")
_DEPLOYING = (DEPLOYMENTS, "post", "202")
_ROLLING_BACK = (ROLLBACK, "post", "202")

LINKS = (
    Link("GetTrainingJob", _STARTED, (JOB, "get"), _JOB, "Read the job just started"),
    Link("StopTrainingJob", _STARTED, (JOB, "delete"), _JOB, "Stop the job just started"),
    Link(
        "GetTrainingJob",
        _STOPPED,
        (JOB, "get"),
        _JOB,
        "Read the job being stopped: it keeps its record (Stopping, then Stopped)",
    ),
    Link(
        "GetTrainingJob",
        ("/v1/training-jobs", "get", "200"),
        (JOB, "get"),
        _from("/items/0", job_id="id"),
        "Read the newest job of the page",
    ),
    Link(
        "GetModel",
        ("/v1/models", "get", "200"),
        (MODEL, "get"),
        _from("/items/0", model="name"),
        "Read the first model of the page",
    ),
    Link(
        "ListModelVersions",
        (MODEL, "get", "200"),
        (VERSIONS, "get"),
        _from("", model="name"),
        "List the model's versions",
    ),
    Link(
        "GetModel",
        _REGISTERED,
        (MODEL, "get"),
        _from("", model="model"),
        "Read the model the version was registered under",
    ),
    Link(
        "DeleteModelVersion",
        _REGISTERED,
        (VERSION, "delete"),
        _MODEL_AND_VERSION,
        "Delete the version just registered",
    ),
    Link(
        "CreateDeployment",
        _REGISTERED,
        (DEPLOYMENTS, "post"),
        _from("", model="model"),
        "Deploy a version of the model (the body names which)",
    ),
    Link(
        "ModelVersionMetadata",
        _REGISTERED,
        (OIP_VERSION, "get"),
        _MODEL_AND_VERSION,
        "The version's Open Inference Protocol metadata",
    ),
    Link(
        "ModelVersionReady",
        _REGISTERED,
        (OIP_VERSION_READY, "get"),
        _MODEL_AND_VERSION,
        "Whether the version is ready (live, and no deployment in progress)",
    ),
    Link(
        "GetDeployment",
        _DEPLOYING,
        (DEPLOYMENT, "get"),
        _DEPLOYMENT,
        "Follow the deployment just started",
    ),
    Link(
        "Rollback",
        _DEPLOYING,
        (ROLLBACK, "post"),
        _from("", model="model"),
        "Roll the model back to its previous version",
    ),
    Link(
        "DeleteEndpoint",
        _DEPLOYING,
        (ENDPOINT, "delete"),
        _from("", model="model"),
        "Remove the model's endpoint",
    ),
    Link(
        "ModelReady",
        _DEPLOYING,
        (OIP_READY, "get"),
        _from("", model="model"),
        "Whether the model's endpoint serves (503 while it is being created)",
    ),
    Link(
        "Predict",
        _DEPLOYING,
        (PREDICT, "post"),
        _from("", model="model"),
        "Predict with the model being deployed (503 while its endpoint loads)",
    ),
    Link(
        "ModelMetadata",
        _DEPLOYING,
        (OIP_MODEL, "get"),
        _from("", model="model"),
        "The model's Open Inference Protocol metadata",
    ),
    Link(
        "GetDeployment",
        _ROLLING_BACK,
        (DEPLOYMENT, "get"),
        _DEPLOYMENT,
        "Follow the rollback just started",
    ),
    Link(
        "GetModel",
        (ENDPOINT, "delete", "202"),
        (MODEL, "get"),
        _from("", model="model"),
        "Read the model whose endpoint is being removed",
    ),
)


def add(document: dict[str, Any]) -> None:
    """Writes LINKS into the document's answers, in place (after the operation ids are set)."""
    paths = document["paths"]
    for link in LINKS:
        (path, method, status), (target_path, target_method) = link.source, link.target
        source = paths.get(path, {}).get(method)
        target = paths.get(target_path, {}).get(target_method)
        if source is None or target is None or status not in source["responses"]:
            continue
        source["responses"][status].setdefault("links", {})[link.name] = {
            "operationId": target["operationId"],
            "parameters": dict(link.parameters),
            "description": link.description,
        }
