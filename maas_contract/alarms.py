"""Each endpoint's two rollback alarms, defined once: infra declares them for the endpoints in
cdk.json, and the handlers create them for endpoints deployed at run time, so an endpoint is
guarded the same whichever side made it.

- SageMaker's endpoint metrics (Invocation5XXErrors; ModelLatency in microseconds; both per
  EndpointName and VariantName in AWS/SageMaker):
  https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
- PutMetricAlarm's fields: https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from maas_contract.sagemaker import VARIANT_NAME

NAMESPACE = "AWS/SageMaker"
PERIOD_S = 60
COMPARISON = "GreaterThanOrEqualToThreshold"
# No traffic is no evidence of a bad canary.
TREAT_MISSING_DATA = "notBreaching"


@dataclass(frozen=True)
class RollbackAlarm:
    name: str
    description: str
    metric: str
    statistic: str  # "Sum", or a percentile such as "p99" (an extended statistic)
    threshold: float
    evaluation_periods: int
    dimensions: dict[str, str]

    @property
    def is_percentile(self) -> bool:
        return self.statistic.startswith("p")

    def put_metric_alarm_request(self) -> dict[str, Any]:
        """The alarm as PutMetricAlarm's parameters."""
        statistic = "ExtendedStatistic" if self.is_percentile else "Statistic"
        return {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Namespace": NAMESPACE,
            "MetricName": self.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            statistic: self.statistic,
            "Period": PERIOD_S,
            "EvaluationPeriods": self.evaluation_periods,
            "Threshold": self.threshold,
            "ComparisonOperator": COMPARISON,
            "TreatMissingData": TREAT_MISSING_DATA,
        }


def errors_alarm_name(endpoint: str) -> str:
    return f"{endpoint}-5xx"


def latency_alarm_name(endpoint: str) -> str:
    return f"{endpoint}-p99-latency"


def rollback_alarms(
    endpoint: str, *, model_5xx_per_min: float, model_p99_latency_ms: float
) -> list[RollbackAlarm]:
    # Under blue/green both fleets serve the one variant name, so the canary's errors and
    # latency land on these dimensions too.
    dimensions = {"EndpointName": endpoint, "VariantName": VARIANT_NAME}
    return [
        RollbackAlarm(
            name=errors_alarm_name(endpoint),
            description=f"{endpoint}: model 5xx responses; rolls a canary back",
            metric="Invocation5XXErrors",
            statistic="Sum",
            threshold=model_5xx_per_min,
            evaluation_periods=1,
            dimensions=dimensions,
        ),
        RollbackAlarm(
            name=latency_alarm_name(endpoint),
            description=f"{endpoint}: p99 model latency; rolls a canary back",
            metric="ModelLatency",
            statistic="p99",
            threshold=model_p99_latency_ms * 1000,  # ModelLatency is in microseconds
            evaluation_periods=2,
            dimensions=dimensions,
        ),
    ]
