"""CDK assertions on the synthesised stacks, for each stage: the security- and behaviour-
relevant properties of every construct. Never on logical-ID hashes."""

from __future__ import annotations

import json

from aws_cdk.assertions import Match

from infra.server_layer import startup_handler
from maas_contract.alarms import rollback_alarms
from maas_contract.errors import GATEWAY_RESPONSE_TEMPLATE
from maas_contract.registry import key_schema
from maas_contract.routes import STREAMING_GROUPS, handler_entry, load_routes
from maas_contract.sagemaker import MODEL_VERSION_ENV, VARIANT_NAME

from .conftest import CPU_MODEL, TEST_MODEL, openapi_document


def test_every_data_bucket_uses_the_platform_kms_key_and_logs_access(template):
    template.resource_count_is("AWS::S3::Bucket", 4)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "LoggingConfiguration": Match.object_like({"DestinationBucketName": Match.any_value()}),
            "VersioningConfiguration": {"Status": "Enabled"},
        },
    )


def test_every_bucket_blocks_public_access_and_has_lifecycle_rules(template):
    for props in template.find_resources("AWS::S3::Bucket").values():
        props = props["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["LifecycleConfiguration"]["Rules"]


def test_every_bucket_policy_denies_requests_without_tls(template):
    policies = template.find_resources("AWS::S3::BucketPolicy")
    assert len(policies) == 4
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_only_the_registry_writes_pinned_artifacts(template):
    """A pinned key must keep the bytes its name is the digest of: the artifact bucket's policy
    denies writes and deletes under pinned/ to every principal but the two pinning functions
    (`aws:PrincipalArn` is the role's ARN for a role session:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn)."""
    denials = [
        statement
        for policy in template.find_resources("AWS::S3::BucketPolicy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "OnlyTheRegistryWritesPinnedArtifacts"
    ]
    assert len(denials) == 1
    (deny,) = denials
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert sorted(deny["Action"]) == ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObject"]
    assert deny["Resource"]["Fn::Join"][1][-1] == "/pinned/*"
    allowed = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    roles = {ref["Fn::GetAtt"][0] for ref in allowed}
    functions = template.find_resources("AWS::Lambda::Function")
    pinning = {
        props["Properties"]["Role"]["Fn::GetAtt"][0]
        for props in functions.values()
        if props["Properties"].get("Handler", "").split(".")[1:2] in (["registry"], ["events"])
    }
    assert roles == pinning and len(roles) == 2


def test_kms_key_rotates(template):
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_registry_table_has_pitr_kms_and_the_contracts_key_schema(template, stage):
    schema = key_schema()
    request = schema.create_table_request("unused")
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": request["KeySchema"],
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {
                "SSEEnabled": True,
                "SSEType": "KMS",
                "KMSMasterKeyId": Match.any_value(),
            },
            "DeletionProtectionEnabled": stage == "prod",
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"]}
                )
                for index in request["GlobalSecondaryIndexes"]
            ],
            "TimeToLiveSpecification": {"AttributeName": schema.ttl_attribute, "Enabled": True},
        },
    )
    (table,) = template.find_resources(
        "AWS::DynamoDB::Table",
        {"Properties": {"TimeToLiveSpecification": {"AttributeName": schema.ttl_attribute}}},
    ).values()
    defined = table["Properties"]["AttributeDefinitions"]
    assert sorted(defined, key=lambda a: a["AttributeName"]) == request["AttributeDefinitions"]


def test_prod_retains_data_and_dev_can_be_torn_down(template, stage):
    policy = "Retain" if stage == "prod" else "Delete"
    kinds = (
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::Logs::LogGroup",
        "AWS::Cognito::UserPool",
    )
    for kind in kinds:
        for resource in template.find_resources(kind).values():
            assert resource["DeletionPolicy"] == policy, kind


def test_every_lambda_runs_latest_python_on_arm64_with_tracing_and_powertools(template):
    functions = template.find_resources("AWS::Lambda::Function")
    # One per route group and the event handler; a streaming group's runs its startup script
    # under the Lambda Web Adapter and may stream past 29 s (test_generation_templates.py).
    assert len(functions) == 7
    streaming = {startup_handler(group) for group in STREAMING_GROUPS}
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        if props["Handler"] in streaming:
            continue
        assert props["Handler"].startswith("handlers.") and props["Handler"].endswith(".handler")
        assert props["Timeout"] < 29 or props["Handler"] == handler_entry("events")
        layer = json.dumps(props["Layers"])
        assert "017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:" in layer


def test_lambdas_get_the_environment_the_handlers_read(template):
    names = (
        "REGISTRY_TABLE",
        "RESOURCE_PREFIX",
        "ARTIFACT_BUCKET",
        "DATA_BUCKET",
        "CAPTURE_BUCKET",
        "KMS_KEY_ARN",
        "SAGEMAKER_ROLE_ARN",
        "TRAINING_IMAGE_URI",
        "INFERENCE_IMAGE_URI",
        "SOURCE_DIR_S3_URI",
        "METRIC_DEFINITIONS",
        "INFERENCE_IMAGE_URI_CPU",
        "TRAINING_INSTANCE_TYPE",
        "MODEL_5XX_PER_MIN",
        "MODEL_P99_LATENCY_MS",
        "ALARM_TOPIC_ARN",
        "GENERATION_IMAGE_URI",
        "TOKEN_USAGE_TABLE",
        "TOKEN_QUOTAS",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": handler_entry("deployments"),
            "Environment": {"Variables": Match.object_like({n: Match.any_value() for n in names})},
        },
    )


def test_every_api_method_requires_cognito_scopes_and_an_api_key(template):
    methods = template.find_resources("AWS::ApiGateway::Method")
    routes = load_routes(openapi_document())
    assert len(methods) == len(routes)
    for method in methods.values():
        props = method["Properties"]
        assert props["AuthorizationType"] == "COGNITO_USER_POOLS", props["HttpMethod"]
        assert props["AuthorizerId"]
        assert set(props["AuthorizationScopes"]) <= {"maas/invoke", "maas/admin"}
        assert props["AuthorizationScopes"]
        assert props["ApiKeyRequired"] is True
        assert props["RequestValidatorId"]


def test_admin_only_routes_do_not_accept_the_invoke_scope(template):
    admin_routes = [r for r in load_routes(openapi_document()) if r.scopes == {"maas/admin"}]
    assert admin_routes
    template.has_resource_properties(
        "AWS::ApiGateway::Method",
        {"HttpMethod": admin_routes[0].method, "AuthorizationScopes": ["maas/admin"]},
    )


def test_each_client_has_an_api_key_on_its_own_usage_plan_with_quota(template, assembly, stage):
    clients = assembly.context["maas:stages"][stage]["clients"]
    template.resource_count_is("AWS::ApiGateway::ApiKey", len(clients))
    template.resource_count_is("AWS::ApiGateway::UsagePlanKey", len(clients))
    for client in clients:
        template.has_resource_properties(
            "AWS::ApiGateway::UsagePlan",
            {
                "UsagePlanName": client["name"],
                "Quota": {"Limit": client["quota_per_day"], "Period": "DAY"},
                "Throttle": {
                    "RateLimit": client["rate_limit"],
                    "BurstLimit": client["burst_limit"],
                },
            },
        )


def test_oauth_clients_use_client_credentials_with_resource_server_scopes(template):
    template.has_resource_properties(
        "AWS::Cognito::UserPoolResourceServer",
        {
            "Identifier": "maas",
            "Scopes": Match.array_with(
                [
                    Match.object_like({"ScopeName": "invoke"}),
                    Match.object_like({"ScopeName": "admin"}),
                ]
            ),
        },
    )
    template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "AllowedOAuthFlows": ["client_credentials"],
            "GenerateSecret": True,
            "AllowedOAuthScopes": Match.array_with(["maas/admin"]),
        },
    )


def test_api_stage_logs_json_access_logs_with_metrics_and_tracing(template, stage):
    template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": stage,
            "TracingEnabled": True,
            "AccessLogSetting": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp(r'"requestId":"\$context.requestId"'),
            },
            "MethodSettings": [
                Match.object_like(
                    {"LoggingLevel": "INFO", "MetricsEnabled": True, "DataTraceEnabled": False}
                )
            ],
        },
    )


def test_waf_with_managed_rules_and_rate_limit_is_associated_with_the_stage(template):
    template.has_resource_properties(
        "AWS::WAFv2::WebACL",
        {
            "Scope": "REGIONAL",
            "Rules": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Statement": {
                                "ManagedRuleGroupStatement": Match.object_like(
                                    {"Name": "AWSManagedRulesCommonRuleSet", "VendorName": "AWS"}
                                )
                            }
                        }
                    ),
                    Match.object_like(
                        {
                            "Statement": {
                                "RateBasedStatement": Match.object_like({"AggregateKeyType": "IP"})
                            }
                        }
                    ),
                ]
            ),
        },
    )
    template.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)
    template.resource_count_is("AWS::WAFv2::LoggingConfiguration", 1)


def test_each_model_runs_network_isolated_on_the_image_for_its_instance_type(template):
    """GPU instances get the CUDA image, CPU instances the CPU one (a CUDA image does not
    start without a GPU); the container reports its version from MAAS_MODEL_VERSION, and
    TorchServe hands the model's own batch entry point whole batches unless the declared model
    turns batching off (CPU_MODEL does)."""
    batched = {
        # TorchServe hands inference.py's `handle` batches of up to 8 requests, waiting at
        # most 5 ms (maas_contract.sagemaker).
        "TS_DEFAULT_SERVICE_HANDLER": "/opt/ml/model/code/inference.py:handle",
        "SAGEMAKER_TS_BATCH_SIZE": "8",
        "SAGEMAKER_TS_MAX_BATCH_DELAY": "5",
        "SAGEMAKER_TS_MIN_WORKERS": "1",
        "SAGEMAKER_TS_MAX_WORKERS": "1",
        "SAGEMAKER_TS_RESPONSE_TIMEOUT": "60",
    }
    for model, flavour in ((TEST_MODEL, "gpu"), (CPU_MODEL, "cpu")):
        template.has_resource_properties(
            "AWS::SageMaker::Model",
            {
                "EnableNetworkIsolation": True,
                "ModelName": Match.string_like_regexp(f"-{model['name']}-v{model['version']}-"),
                "PrimaryContainer": Match.object_like(
                    {
                        "Image": Match.string_like_regexp(
                            rf"\.dkr\.ecr\..*/pytorch-inference:.*-{flavour}-py3"
                        ),
                        "Environment": {
                            "SAGEMAKER_PROGRAM": "inference.py",
                            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                            MODEL_VERSION_ENV: str(model["version"]),
                            **(batched if model.get("batching", True) else {}),
                        },
                    }
                ),
            },
        )


def test_endpoint_configs_capture_data_encrypted_under_the_fixed_variant_name(template):
    for model in (TEST_MODEL, CPU_MODEL):
        template.has_resource_properties(
            "AWS::SageMaker::EndpointConfig",
            {
                "DataCaptureConfig": Match.object_like(
                    {"EnableCapture": True, "KmsKeyId": Match.any_value()}
                ),
                "ProductionVariants": [
                    Match.object_like(
                        {"VariantName": VARIANT_NAME, "InstanceType": model["instance_type"]}
                    )
                ],
                "Tags": Match.array_with([{"Key": "maas:version", "Value": str(model["version"])}]),
            },
        )


def test_endpoint_update_is_a_blue_green_canary_with_rollback_alarms(template, assembly, stage):
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    endpoint = f"{prefix}-{TEST_MODEL['name']}"
    template.has_resource_properties(
        "AWS::SageMaker::Endpoint",
        {
            "EndpointName": endpoint,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": Match.object_like(
                    {
                        "TrafficRoutingConfiguration": {
                            "Type": "CANARY",
                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                            "WaitIntervalInSeconds": Match.any_value(),
                        }
                    }
                ),
                "AutoRollbackConfiguration": {"Alarms": [Match.any_value(), Match.any_value()]},
            },
        },
    )
    thresholds = assembly.context["maas:stages"][stage]["alarms"]
    for alarm in rollback_alarms(
        endpoint,
        model_5xx_per_min=thresholds["model_5xx_per_min"],
        model_p99_latency_ms=thresholds["model_p99_latency_ms"],
    ):
        # The alarm the handlers would put for an API-made endpoint, field for field.
        wanted = alarm.put_metric_alarm_request()
        statistic = "ExtendedStatistic" if alarm.is_percentile else "Statistic"
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": wanted["AlarmName"],
                "Namespace": wanted["Namespace"],
                "MetricName": wanted["MetricName"],
                statistic: wanted[statistic],
                "Period": wanted["Period"],
                "EvaluationPeriods": wanted["EvaluationPeriods"],
                "Threshold": wanted["Threshold"],
                "ComparisonOperator": wanted["ComparisonOperator"],
                "TreatMissingData": wanted["TreatMissingData"],
                "Dimensions": Match.array_with(wanted["Dimensions"]),
            },
        )


def test_every_gateway_response_carries_the_one_error_body(template):
    responses = template.find_resources("AWS::ApiGateway::GatewayResponse")
    assert {r["Properties"]["ResponseType"] for r in responses.values()} == {
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    for response in responses.values():
        templates = response["Properties"]["ResponseTemplates"]
        assert templates == {"application/json": GATEWAY_RESPONSE_TEMPLATE}


def test_endpoint_scales_on_invocations_per_instance_within_configured_bounds(template):
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {
            "MinCapacity": TEST_MODEL["min_instances"],
            "MaxCapacity": TEST_MODEL["max_instances"],
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ServiceNamespace": "sagemaker",
        },
    )
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": TEST_MODEL["target_invocations_per_instance"],
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                    "ScaleInCooldown": Match.any_value(),
                    "ScaleOutCooldown": Match.any_value(),
                }
            ),
        },
    )


def test_sagemaker_state_changes_reach_the_event_handler_with_a_dead_letter_queue(template):
    for detail_type in ("SageMaker Training Job State Change", "SageMaker Endpoint State Change"):
        template.has_resource_properties(
            "AWS::Events::Rule",
            {
                "EventPattern": Match.object_like(
                    {"source": ["aws.sagemaker"], "detail-type": [detail_type]}
                ),
                "Targets": [
                    Match.object_like(
                        {
                            "DeadLetterConfig": {"Arn": Match.any_value()},
                            "RetryPolicy": Match.any_value(),
                        }
                    )
                ],
            },
        )
    template.has_resource_properties("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value()})


def test_training_code_and_images_reach_the_handlers(template):
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": handler_entry("training_jobs"),
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "TRAINING_IMAGE_URI": Match.string_like_regexp(
                            r"/pytorch-training:.*-gpu-py3"
                        ),
                        # CDK names the archive <hash>.gz; the handler reads the name from the URI.
                        "SOURCE_DIR_S3_URI": {
                            "Fn::Sub": Match.string_like_regexp(r"^s3://.+\.gz$")
                        },
                    }
                )
            },
        },
    )


def test_alarms_notify_an_encrypted_topic_and_the_dashboard_exists(template):
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    notifying = [a for a in alarms.values() if a["Properties"].get("AlarmActions")]
    assert len(notifying) >= 3


def test_outputs_give_clients_what_they_need(template, assembly, stage):
    outputs = template.to_json()["Outputs"]
    assert {"ApiUrl", "TokenUrl"} <= set(outputs)
    assert sum(k.startswith("ClientId") for k in outputs) == len(
        assembly.context["maas:stages"][stage]["clients"]
    )
    assert any(k.startswith("ApiKeyId") for k in outputs)


def test_every_body_passes_as_binary_and_only_json_only_bodies_get_a_gateway_model(template):
    """*/* includes all content types, and a request without a Content-Type (Triton's client
    sends binary tensors so) is read as application/json.
    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html
    https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html"""
    template.has_resource_properties("AWS::ApiGateway::RestApi", {"BinaryMediaTypes": ["*/*"]})
    methods = template.find_resources("AWS::ApiGateway::Method")
    with_model = {
        m["Properties"]["HttpMethod"]
        for m in methods.values()
        if m["Properties"].get("RequestModels")
    }
    assert with_model == {"POST"}
    routes = load_routes(openapi_document())
    predict = next(r for r in routes if r.path == "/v1/models/{model}/predict")
    register = next(
        r for r in routes if r.path == "/v1/models/{model}/versions" and r.method == "POST"
    )
    by_operation = {m["Properties"].get("OperationName"): m["Properties"] for m in methods.values()}
    assert not by_operation[predict.operation_id].get("RequestModels")
    assert by_operation[register.operation_id]["RequestModels"]


def test_predict_restores_from_a_snapshot_and_the_api_calls_its_live_alias(template):
    functions = template.find_resources("AWS::Lambda::Function")
    snap = {
        logical: f["Properties"]["Handler"]
        for logical, f in functions.items()
        if f["Properties"].get("SnapStart") == {"ApplyOn": "PublishedVersions"}
    }
    assert list(snap.values()) == [handler_entry("predict")]
    (predict,) = snap
    aliases = template.find_resources("AWS::Lambda::Alias")
    assert len(aliases) == 1
    ((alias_id, alias),) = aliases.items()
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionName"] == {"Ref": predict}
    version_ref = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert template.find_resources("AWS::Lambda::Version")[version_ref]["Properties"] == {
        "FunctionName": {"Ref": predict}
    }
    routes = {(r.method, r.path): r.group for r in load_routes(openapi_document())}
    uris = {}
    for method in template.find_resources("AWS::ApiGateway::Method").values():
        uris.setdefault(json.dumps(method["Properties"]["Integration"]["Uri"]), []).append(method)
    predict_uris = [u for u in uris if alias_id in u]
    assert len(predict_uris) == 1
    assert predict not in predict_uris[0]
    assert len(uris[predict_uris[0]]) == sum(g == "predict" for g in routes.values())
    permissions = template.find_resources("AWS::Lambda::Permission")
    assert any(
        alias_id in json.dumps(p["Properties"]["FunctionName"]) for p in permissions.values()
    )


def _object_grants(template, group: str) -> dict[str, set[str]]:
    """S3 object-level actions of one function's role, by the key pattern they name."""
    functions = template.find_resources("AWS::Lambda::Function")
    (role,) = {
        f["Properties"]["Role"]["Fn::GetAtt"][0]
        for f in functions.values()
        if f["Properties"].get("Handler", "").split(".")[1:2] == [group]
    }
    grants: dict[str, set[str]] = {}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = [actions] if isinstance(actions, str) else actions
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                joined = (
                    resource.get("Fn::Join", [None, []])[1] if isinstance(resource, dict) else []
                )
                tail = joined[-1] if joined and isinstance(joined[-1], str) else None
                if tail and tail.startswith("/") and any(a.startswith("s3:") for a in actions):
                    grants.setdefault(tail[1:], set()).update(
                        a for a in actions if a.startswith("s3:")
                    )
    return grants


def test_the_pinning_functions_read_only_archives_and_signatures_and_sign_uploads(template):
    """Registration reads a model's signature.json and copies its model.tar.gz (CopyObject is
    s3:GetObject on the source, https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html),
    and never reads anything else of the bucket. The registry also signs the presigned upload
    URLs, which carry its role's authority: "the credentials that you use to create a
    presigned URL" decide what it may do
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html)."""
    for group, uploads in (("registry", True), ("events", False)):
        grants = _object_grants(template, group)
        readable = {k for k, actions in grants.items() if "s3:GetObject*" in actions}
        writable = {k for k, actions in grants.items() if "s3:PutObject" in actions}
        assert readable == {"*.tar.gz", "*/signature.json"}, (group, grants)
        assert writable == ({"pinned/*", "uploads/*"} if uploads else {"pinned/*"}), group


def test_uploads_never_registered_expire(template):
    rules = [
        rule
        for bucket in template.find_resources("AWS::S3::Bucket").values()
        for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]
        if rule.get("Prefix") == "uploads/"
    ]
    assert [(r["ExpirationInDays"], r["Status"]) for r in rules] == [(7, "Enabled")]
