"""Account- and region-wide settings that every stage shares, in one small stack per region.

API Gateway keeps one CloudWatch Logs role per account and region (AWS::ApiGateway::Account).
If each stage's RestApi declared it, two stages in one account would overwrite each other's
setting and deleting one stage would take the role from the other. The stage stacks depend
on this stack instead, so it is deployed first and outlives them.
https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigateway-account.html
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.nag import acknowledge

PUSH_TO_LOGS_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


def account_stack_name(region: str) -> str:
    return f"maas-account-{region}"


class AccountSettingsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.api_logs_role = iam.Role(
            self,
            "ApiGatewayLogsRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(PUSH_TO_LOGS_POLICY)],
            description="API Gateway writes execution and access logs of every maas stage",
        )
        acknowledge(
            self.api_logs_role,
            "AwsSolutions-IAM4",
            "API Gateway's account-level logging role needs this AWS service-role policy; it "
            "only lets API Gateway write its own CloudWatch logs.",
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs",
        )
        self.api_account = apigw.CfnAccount(
            self, "ApiGatewayAccount", cloud_watch_role_arn=self.api_logs_role.role_arn
        )
        self.api_account.node.add_dependency(self.api_logs_role)
