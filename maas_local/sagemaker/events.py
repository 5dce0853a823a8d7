"""State-change events, built as the EventBridge documents SageMaker sends, and their delivery.

The documents follow AWS's published samples field for field (the samples are kept in
`tests/events/aws_*.json`; see `tests/events/SOURCES.md`): a detail carries only the fields its
sample shows, with the sample's value formats. What a sample does not carry (a training job's
model artifact and final metrics, for example) is read with the Describe* call, as in the cloud.
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html

`--event-sink` is either an http(s) URL (the document is POSTed as JSON) or `events:BUSNAME`
(the event is put on that EventBridge bus, on the endpoint the environment names). Delivery
runs on one background thread, in order, so a slow sink never blocks the control plane.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import Any

from maas_contract.events import (
    ENDPOINT_DEPLOYMENT_STATE_CHANGE,
    ENDPOINT_STATE_CHANGE,
    SOURCE,
    TRAINING_JOB_STATE_CHANGE,
)

log = logging.getLogger("maas_local.sagemaker.events")

# EventBridge spells endpoint states in upper snake case (IN_SERVICE), unlike the API.
_ENDPOINT_STATUS = {
    "OutOfService": "OUT_OF_SERVICE",
    "Creating": "CREATING",
    "Updating": "UPDATING",
    "SystemUpdating": "SYSTEM_UPDATING",
    "RollingBack": "ROLLING_BACK",
    "InService": "IN_SERVICE",
    "Deleting": "DELETING",
    "Failed": "FAILED",
    "UpdateRollbackFailed": "UPDATE_ROLLBACK_FAILED",
}

# -- the documented shapes ---------------------------------------------------------------------
# A shape names the keys a detail may carry: a dict maps each key to the shape of its value
# (None: a leaf, copied as is), a one-item list is the shape of every element, and FREE_MAP is a
# map whose keys are the caller's own (hyperparameters, tags).
FREE_MAP = "free-map"
_S3_DATA_SOURCE = {"S3DataType": None, "S3Uri": None, "S3DataDistributionType": None}
TRAINING_JOB_DETAIL: dict[str, Any] = {
    "TrainingJobName": None,
    "TrainingJobArn": None,
    "TrainingJobStatus": None,
    "SecondaryStatus": None,
    # The page: "If the value of TrainingJobStatus is Failed, the event contains the
    # FailureReason field".
    "FailureReason": None,
    "HyperParameters": FREE_MAP,
    "AlgorithmSpecification": {"TrainingImage": None, "TrainingInputMode": None},
    "RoleArn": None,
    "InputDataConfig": [
        {
            "ChannelName": None,
            "DataSource": {"S3DataSource": _S3_DATA_SOURCE},
            "ContentType": None,
            "CompressionType": None,
            "RecordWrapperType": None,
        }
    ],
    "OutputDataConfig": {"KmsKeyId": None, "S3OutputPath": None},
    "ResourceConfig": {
        "InstanceType": None,
        "InstanceCount": None,
        "VolumeSizeInGB": None,
        "VolumeKmsKeyId": None,
    },
    # Empty in the sample; the HyperParameter Tuning sample on the same page shows its members.
    "VpcConfig": {"SecurityGroupIds": None, "Subnets": None},
    "StoppingCondition": {"MaxRuntimeInSeconds": None},
    "CreationTime": None,
    "TrainingStartTime": None,
    "TrainingEndTime": None,
    "LastModifiedTime": None,
    # Empty in the sample, a Completed job's: the transitions are DescribeTrainingJob's.
    "SecondaryStatusTransitions": [{}],
    "Tags": FREE_MAP,
}
# Present in the sample even when the job has none of them.
_TRAINING_ALWAYS: dict[str, object] = {
    "VpcConfig": {},
    "SecondaryStatusTransitions": [],
    "HyperParameters": {},
}
_TRAINING_TIMES = ("CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime")

ENDPOINT_DETAIL: dict[str, Any] = {
    "EndpointName": None,
    "EndpointArn": None,
    "EndpointConfigName": None,
    "ProductionVariants": [{"DesiredWeight": None, "DesiredInstanceCount": None}],
    "EndpointStatus": None,
    "CreationTime": None,
    "LastModifiedTime": None,
    "Tags": FREE_MAP,
}

_VARIANT_STATUS = [{"Status": None, "StatusMessage": None, "StartTime": None}]
_DEPLOYMENT_VARIANT = {
    "VariantName": None,
    "CurrentWeight": None,
    "DesiredWeight": None,
    "CurrentInstanceCount": None,
    "DesiredInstanceCount": None,
    "VariantStatus": _VARIANT_STATUS,
}
ENDPOINT_DEPLOYMENT_DETAIL: dict[str, Any] = {
    "EndpointName": None,
    "EndpointArn": None,
    "EndpointConfigName": None,
    "ProductionVariants": [_DEPLOYMENT_VARIANT],
    "EndpointStatus": None,
    "CreationTime": None,
    "LastModifiedTime": None,
    "Tags": FREE_MAP,
    "PendingDeploymentSummary": {
        "EndpointConfigName": None,
        "StartTime": None,
        "ProductionVariants": [_DEPLOYMENT_VARIANT],
    },
}
# Secondary deployment statuses the page lists for VariantStatus.
DEPLOYMENT_STAGES = ("Creating", "Deleting", "Updating", "ActivatingTraffic", "Baking")


def project(value: Any, shape: Any) -> Any:
    """`value` cut down to `shape`: keys the shape does not name are dropped, at every depth."""
    if shape is None or shape == FREE_MAP:
        return value
    if isinstance(shape, list):
        return [project(item, shape[0]) for item in value or []]
    if not isinstance(value, dict):
        return value
    return {key: project(value[key], shape[key]) for key in shape if key in value}


def _millis(value: Any) -> int | Any:
    """Times as epoch milliseconds, the format every sample's `detail` uses."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return value


def _map_times(value: Any, convert: Callable[[Any], Any]) -> Any:
    if isinstance(value, dt.datetime):
        return convert(value)
    if isinstance(value, dict):
        return {k: _map_times(v, convert) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_times(v, convert) for v in value]
    return value


def _tags_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags}


def build(detail_type: str, arn: str, detail: dict[str, Any], *, account: str, region: str) -> dict:
    """The EventBridge envelope. `time` is ISO 8601 as EventBridge's event structure has it
    (the endpoint sample's `"time": "1583831889050"` is the one sample that differs)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": SOURCE,
        "account": account,
        "time": dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": detail,
    }


def training_job_event(describe: dict, tags: list, *, account: str, region: str) -> dict:
    """As the sample: times are epoch milliseconds as strings; SecondaryStatusTransitions is
    empty; no ModelArtifacts and no FinalMetricDataList (DescribeTrainingJob has them)."""
    detail = project({**_TRAINING_ALWAYS, **describe}, TRAINING_JOB_DETAIL)
    if describe.get("TrainingJobStatus") != "Failed":
        detail.pop("FailureReason", None)
    detail["SecondaryStatusTransitions"] = []
    for key in _TRAINING_TIMES:
        if key in detail:
            detail[key] = str(_millis(detail[key]))
    detail["Tags"] = _tags_map(tags)
    return build(
        TRAINING_JOB_STATE_CHANGE,
        describe["TrainingJobArn"],
        detail,
        account=account,
        region=region,
    )


def endpoint_event(describe: dict, tags: list, *, account: str, region: str) -> dict:
    """As the sample: variants carry only their desired weight and count; times are epoch
    milliseconds as numbers with a fraction (`1592411992203.0`)."""
    detail = project(describe, ENDPOINT_DETAIL)
    detail = _map_times(detail, lambda t: float(_millis(t)))
    detail.setdefault("ProductionVariants", [])
    for variant in detail["ProductionVariants"]:
        variant.setdefault("DesiredWeight", 1.0)
        variant["DesiredInstanceCount"] = float(variant.get("DesiredInstanceCount", 1))
    detail["EndpointStatus"] = _ENDPOINT_STATUS.get(describe["EndpointStatus"], "UNKNOWN")
    detail["Tags"] = _tags_map(tags)
    return build(
        ENDPOINT_STATE_CHANGE, describe["EndpointArn"], detail, account=account, region=region
    )


def variant_status(stage: str, message: str, started: dt.datetime) -> list[dict[str, Any]]:
    """A VariantStatus list of one entry, for `endpoint_deployment_event`."""
    if stage not in DEPLOYMENT_STAGES:
        raise ValueError(f"{stage!r} is not a deployment status: {', '.join(DEPLOYMENT_STAGES)}")
    return [{"Status": stage, "StatusMessage": message, "StartTime": started}]


def endpoint_deployment_event(
    describe: dict,
    tags: list,
    *,
    stage: str,
    message: str,
    account: str,
    region: str,
    started: dt.datetime | None = None,
) -> dict:
    """An endpoint deployment's progress, from DescribeEndpoint as it stands.

    During a blue/green update (`PendingDeploymentSummary` present) the stage is the new
    fleet's VariantStatus, as in the page's canary sample; otherwise it is the live variants'
    (the page's capacity-update sample). Times are epoch milliseconds as integers.
    """
    detail = project(describe, ENDPOINT_DEPLOYMENT_DETAIL)
    status = variant_status(stage, message, started or dt.datetime.now(tz=dt.UTC))
    pending = detail.get("PendingDeploymentSummary")
    carriers = pending["ProductionVariants"] if pending else detail.get("ProductionVariants", [])
    for variant in carriers:
        variant["VariantStatus"] = status
    detail = _map_times(detail, _millis)
    detail["EndpointStatus"] = _ENDPOINT_STATUS.get(describe["EndpointStatus"], "UNKNOWN")
    detail["Tags"] = _tags_map(tags)
    arn = describe["EndpointArn"]
    return build(ENDPOINT_DEPLOYMENT_STATE_CHANGE, arn, detail, account=account, region=region)
