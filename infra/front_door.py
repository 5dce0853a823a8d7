"""The REST API. Every method comes from openapi.json: its path becomes resources, its first
tag picks the route group's function, and its scopes gate it behind the Cognito authorizer.
Each client gets an API key on its own usage plan for throttling and a daily quota.

The streaming route groups (maas_contract.routes.STREAMING_GROUPS) get a Lambda proxy
integration with responseTransferMode STREAM: API Gateway invokes the function with
InvokeWithResponseStream (URI `.../2021-11-15/functions/{arn}/response-streaming-invocations`)
and passes each chunk on as it comes, for up to 15 minutes, past the 29 s of a buffered one.
https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.client_auth import ClientAuth
from infra.config import ApiClient
from infra.nag import skip_checkov
from maas_contract.errors import GATEWAY_RESPONSE_TEMPLATE
from maas_contract.routes import BINARY_MEDIA_TYPES, STREAMING_GROUPS, Route


class FrontDoor(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        resource_prefix: str,
        stream_timeout: Duration,
        routes: list[Route],
        functions: dict[str, lambda_.IFunction],
        auth: ClientAuth,
        clients: tuple[ApiClient, ...],
        rate_limit: float,
        burst_limit: int,
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention,
            encryption_key=encryption_key,
            removal_policy=removal_policy,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            # The API alarms and metrics select by ApiName: one name per stage keeps them apart.
            rest_api_name=f"{resource_prefix}-api",
            description="maas: predict, registry, deployments and training jobs",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # The account's logging role lives in infra/account_settings.py, shared by stages.
            cloud_watch_role=False,
            binary_media_types=list(BINARY_MEDIA_TYPES),
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.INFO,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=rate_limit,
                throttling_burst_limit=burst_limit,
            ),
        )
        skip_checkov(
            self.api.deployment_stage,
            "CKV_AWS_120",
            "No response caching: predictions and registry reads are per caller and "
            "must be fresh; a cache could hand one client's result to another.",
        )
        for kind in (apigw.ResponseType.DEFAULT_4_XX, apigw.ResponseType.DEFAULT_5_XX):
            self.api.add_gateway_response(
                f"{kind.response_type}-json",
                type=kind,
                templates={"application/json": GATEWAY_RESPONSE_TEMPLATE},
            )
        self.authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "Authorizer", cognito_user_pools=[auth.user_pool]
        )
        self._add_routes(routes, functions, stream_timeout)
        self.api_keys = {c.name: self._usage_plan(c) for c in clients}

    def _add_routes(
        self,
        routes: list[Route],
        functions: dict[str, lambda_.IFunction],
        stream_timeout: Duration,
    ) -> None:
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )
        json_object = self.api.add_model(
            "JsonObject",
            content_type="application/json",
            schema=apigw.JsonSchema(
                schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT
            ),
        )
        integrations = {
            g: apigw.LambdaIntegration(
                f,
                allow_test_invoke=False,
                response_transfer_mode=apigw.ResponseTransferMode.STREAM,
                timeout=stream_timeout,
            )
            if g in STREAMING_GROUPS
            else apigw.LambdaIntegration(f, allow_test_invoke=False)
            for g, f in functions.items()
        }
        for route in routes:
            params = {f"method.request.querystring.{q}": True for q in route.required_query}
            params |= {f"method.request.header.{h}": True for h in route.required_headers}
            self.api.root.resource_for_path(route.path).add_method(
                route.method,
                integrations[route.group],
                authorizer=self.authorizer,
                authorization_type=apigw.AuthorizationType.COGNITO,
                authorization_scopes=list(route.scopes),
                api_key_required=True,
                request_validator=validator,
                operation_name=route.operation_id,
                request_parameters=params or None,
                # Only a JSON-only body gets a gateway model: a model would be applied to other
                # content types too, and predict also takes npy and text bodies.
                request_models={"application/json": json_object} if route.json_only_body else None,
            )

    def _usage_plan(self, client: ApiClient) -> apigw.IApiKey:
        plan = self.api.add_usage_plan(
            f"{client.name}-plan",
            name=client.name,
            throttle=apigw.ThrottleSettings(
                rate_limit=client.rate_limit, burst_limit=client.burst_limit
            ),
            quota=apigw.QuotaSettings(limit=client.quota_per_day, period=apigw.Period.DAY),
        )
        plan.add_api_stage(stage=self.api.deployment_stage)
        key = self.api.add_api_key(f"{client.name}-key", description=f"maas client {client.name}")
        plan.add_api_key(key)
        return key
