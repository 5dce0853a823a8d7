"""A dashboard for the API, the endpoints (generation endpoints among them: they carry the same
prefix and the same AWS/SageMaker metrics), the streaming functions and training, and alarms on
an encrypted SNS topic."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import Alarms
from infra.training_platform import alarm_arns
from maas_contract.events import SOURCE, TRAINING_JOB_STATE_CHANGE

FIVE_MIN = Duration.minutes(5)


def endpoint_search_expression(prefix: str, metric: str, stat: str) -> str:
    """SEARCH covers endpoints the API deploys at run time, not only those declared in config.
    A quoted value is an exact match, so `EndpointName="maas-dev-"` matched no endpoint; an
    unquoted value matches partially, on the name's tokens. The metric name stays exact.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-examples.html"""
    return (
        f'SEARCH(\'{{AWS/SageMaker,EndpointName,VariantName}} MetricName="{metric}" '
        f"EndpointName={prefix}', '{stat}', 300)"
    )


def _endpoint_search(prefix: str, metric: str, stat: str) -> cw.MathExpression:
    return cw.MathExpression(
        expression=endpoint_search_expression(prefix, metric, stat), label=metric, period=FIVE_MIN
    )


def alarm_topic(
    scope: Construct,
    construct_id: str,
    *,
    resource_prefix: str,
    encryption_key: kms.IKey,
    alarm_email: str | None,
) -> sns.Topic:
    """The encrypted topic every alarm of the stage notifies. Built before the functions, so
    that the handlers can point the alarms they create at it (ALARM_TOPIC_ARN)."""
    topic = sns.Topic(scope, construct_id, master_key=encryption_key, enforce_ssl=True)
    encryption_key.grant_encrypt_decrypt(iam.ServicePrincipal("cloudwatch.amazonaws.com"))
    stack = Stack.of(scope)
    # CloudWatch publishes alarm notifications as its service principal; without this
    # statement the topic refuses them. Held to this account's alarms of this stage against
    # the confused deputy.
    # https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={
                "StringEquals": {"aws:SourceAccount": stack.account},
                "ArnLike": {"aws:SourceArn": alarm_arns(stack, resource_prefix)},
            },
        )
    )
    if alarm_email:
        topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
    return topic


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        api: apigw.RestApi,
        topic: sns.ITopic,
        thresholds: Alarms,
        dead_letters: sqs.IQueue,
        streaming_functions: dict[str, lambda_.Function],
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = topic
        self.training_failures = events.Rule(
            self,
            "TrainingFailed",
            event_pattern=events.EventPattern(
                source=[SOURCE],
                detail_type=[TRAINING_JOB_STATE_CHANGE],
                detail={
                    "TrainingJobName": [{"prefix": f"{resource_prefix}-"}],
                    "TrainingJobStatus": ["Failed"],
                },
            ),
        )
        self.training_failures.add_target(
            targets.SnsTopic(self.topic, dead_letter_queue=dead_letters)
        )
        failed = cw.Metric(
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            statistic="Sum",
            dimensions_map={"RuleName": self.training_failures.rule_name},
            period=Duration.hours(1),
            label="training jobs failed",
        )
        self.alarms = [
            api.metric_server_error(period=FIVE_MIN, statistic="Sum").create_alarm(
                self,
                "Api5xx",
                alarm_name=f"{resource_prefix}-api-5xx",
                threshold=thresholds.api_5xx_per_5min,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            api.metric_latency(period=FIVE_MIN, statistic="p99").create_alarm(
                self,
                "ApiLatency",
                alarm_name=f"{resource_prefix}-api-p99-latency",
                threshold=thresholds.api_p99_latency_ms,
                evaluation_periods=3,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
            failed.create_alarm(
                self,
                "TrainingFailures",
                alarm_name=f"{resource_prefix}-training-failures",
                threshold=thresholds.training_failures_per_hour,
                evaluation_periods=1,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            ),
        ]
        # A streaming function reports a failure as an invocation error even after the stream
        # has begun with 200, so the API's 5xx alarm cannot see it: its own errors alarm does.
        # https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html
        for group, function in streaming_functions.items():
            self.alarms.append(
                function.metric_errors(period=FIVE_MIN, statistic="Sum").create_alarm(
                    self,
                    f"{group}-errors",
                    alarm_name=f"{resource_prefix}-{group}-errors",
                    threshold=thresholds.api_5xx_per_5min,
                    evaluation_periods=1,
                    treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
                )
            )
        for alarm in self.alarms:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=resource_prefix)
        graph = cw.GraphWidget
        self.dashboard.add_widgets(
            graph(
                title="API errors",
                left=[
                    api.metric_client_error(period=FIVE_MIN),
                    api.metric_server_error(period=FIVE_MIN),
                ],
            ),
            graph(title="API latency p99 (ms)", left=[api.metric_latency(statistic="p99")]),
            graph(
                title="Endpoint invocations",
                left=[_endpoint_search(resource_prefix, "Invocations", "Sum")],
            ),
            graph(
                title="Model latency p99 (us)",
                left=[_endpoint_search(resource_prefix, "ModelLatency", "p99")],
            ),
            graph(
                title="Model errors",
                left=[
                    _endpoint_search(resource_prefix, "Invocation5XXErrors", "Sum"),
                    _endpoint_search(resource_prefix, "Invocation4XXErrors", "Sum"),
                ],
            ),
            graph(title="Training failures", left=[failed]),
        )
        for group, function in streaming_functions.items():
            self.dashboard.add_widgets(
                graph(
                    title=f"{group} function: invocations, errors, throttles",
                    left=[
                        function.metric_invocations(period=FIVE_MIN),
                        function.metric_errors(period=FIVE_MIN),
                        function.metric_throttles(period=FIVE_MIN),
                    ],
                ),
                graph(
                    title=f"{group} function: duration p99 (ms)",
                    left=[function.metric_duration(period=FIVE_MIN, statistic="p99")],
                ),
            )
