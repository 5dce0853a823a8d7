"""Each endpoint's own CloudWatch alarms: they page nobody, they roll a canary back.

The two match the ones infra gives a declared model's endpoint (same names, metrics and
thresholds), so an endpoint is guarded the same whichever side created it. An alarm that
already exists is left as it is: PutMetricAlarm replaces an alarm whole, which would drop
whatever actions CloudFormation gave infra's alarms and leave its stack drifted.

- SageMaker's endpoint metrics (Invocation5XXErrors, ModelLatency in microseconds, both
  per EndpointName and VariantName in AWS/SageMaker):
  https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
- PutMetricAlarm: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
"""

from __future__ import annotations

from typing import Any

from handlers import aws
from handlers.config import AlarmThresholds
from maas_contract.sagemaker import VARIANT_NAME

NAMESPACE = "AWS/SageMaker"


def errors_alarm(endpoint: str) -> str:
    return f"{endpoint}-5xx"


def latency_alarm(endpoint: str) -> str:
    return f"{endpoint}-p99-latency"


def _dimensions(endpoint: str) -> list[dict[str, str]]:
    # Under blue/green both fleets serve the one variant name, so the canary's errors and
    # latency land on these dimensions too.
    return [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": VARIANT_NAME},
    ]


def _common(endpoint: str) -> dict[str, Any]:
    return {
        "Namespace": NAMESPACE,
        "Dimensions": _dimensions(endpoint),
        "Period": 60,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        # No traffic is no evidence of a bad canary.
        "TreatMissingData": "notBreaching",
    }


def definitions(endpoint: str) -> list[dict[str, Any]]:
    """PutMetricAlarm requests for the endpoint's two alarms."""
    thresholds = AlarmThresholds.from_env()
    return [
        {
            "AlarmName": errors_alarm(endpoint),
            "AlarmDescription": f"{endpoint}: model 5xx responses; rolls a canary back",
            "MetricName": "Invocation5XXErrors",
            "Statistic": "Sum",
            "EvaluationPeriods": 1,
            "Threshold": thresholds.model_5xx_per_min,
            **_common(endpoint),
        },
        {
            "AlarmName": latency_alarm(endpoint),
            "AlarmDescription": f"{endpoint}: p99 model latency; rolls a canary back",
            "MetricName": "ModelLatency",
            "ExtendedStatistic": "p99",
            "EvaluationPeriods": 2,
            # ModelLatency is reported in microseconds.
            "Threshold": thresholds.model_p99_latency_ms * 1000,
            **_common(endpoint),
        },
    ]


def ensure(endpoint: str) -> list[str]:
    """Creates whichever of the endpoint's two alarms is missing; returns both names."""
    wanted = definitions(endpoint)
    cloudwatch = aws.client("cloudwatch")
    found = cloudwatch.describe_alarms(
        AlarmNames=[a["AlarmName"] for a in wanted], AlarmTypes=["MetricAlarm"]
    )
    existing = {a["AlarmName"] for a in found.get("MetricAlarms", [])}
    for alarm in wanted:
        if alarm["AlarmName"] not in existing:
            cloudwatch.put_metric_alarm(**alarm)
    return [a["AlarmName"] for a in wanted]
