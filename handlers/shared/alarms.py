"""Each endpoint's own CloudWatch alarms (maas_contract.alarms): they page nobody, they roll a
canary back. An alarm that already exists is left as it is: PutMetricAlarm replaces an alarm
whole, which would drop whatever actions CloudFormation gave infra's alarms of a declared
model and leave its stack drifted.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
"""

from __future__ import annotations

from handlers.shared import aws
from maas_contract.alarms import RollbackAlarm, rollback_alarms
from maas_contract.settings import HandlerSettings


def definitions(endpoint: str) -> list[RollbackAlarm]:
    """The endpoint's two alarms, at the stage's thresholds."""
    settings = HandlerSettings.from_env()
    return rollback_alarms(
        endpoint,
        model_5xx_per_min=settings.model_5xx_per_min,
        model_p99_latency_ms=settings.model_p99_latency_ms,
    )


def ensure(endpoint: str) -> list[str]:
    """Creates whichever of the endpoint's two alarms is missing; returns both names."""
    wanted = definitions(endpoint)
    cloudwatch = aws.client("cloudwatch")
    found = cloudwatch.describe_alarms(
        AlarmNames=[alarm.name for alarm in wanted], AlarmTypes=["MetricAlarm"]
    )
    existing = {a["AlarmName"] for a in found.get("MetricAlarms", [])}
    for alarm in wanted:
        if alarm.name not in existing:
            cloudwatch.put_metric_alarm(**alarm.put_metric_alarm_request())
    return [alarm.name for alarm in wanted]
