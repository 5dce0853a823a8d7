"""The deploy rehearsal: what a first `cdk deploy` would trip over, checked on the synthesised
templates of both stages (each with a GPU model on local storage and a CPU model on EBS)."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

import handlers.shared.aws as handler_clients
from infra import policy_checks
from infra.api_functions import API_GATEWAY_TIMEOUT_S, SIZING
from infra.monitoring import endpoint_search_expression
from infra.powertools_layer import LAYER_RELEASES, MINIMUM_RELEASE, check_layer, release_tuple
from maas_contract.routes import handler_entry
from maas_contract.sagemaker import VARIANT_NAME, has_local_storage

from .conftest import REPO, TEST_MODELS
from .handler_calls import render


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {
        i: r.get("Properties", {}) for i, r in template["Resources"].items() if r["Type"] == kind
    }


def _statements(template: dict) -> list[dict]:
    return [s for _, s in policy_checks.iam_statements(template)]


def _execution_role_statements(template: dict) -> list[dict]:
    """The SageMaker execution role's identity statements."""
    roles = [
        i
        for i, p in _resources(template, "AWS::IAM::Role").items()
        if "sagemaker.amazonaws.com" in json.dumps(p["AssumeRolePolicyDocument"])
    ]
    assert len(roles) == 1
    return [
        s
        for p in _resources(template, "AWS::IAM::Policy").values()
        if {"Ref": roles[0]} in p["Roles"]
        for s in p["PolicyDocument"]["Statement"]
    ]


def _allowing(statements: list[dict], action: str) -> list[dict]:
    def actions(s: dict) -> list[str]:
        return s["Action"] if isinstance(s["Action"], list) else [s["Action"]]

    return [s for s in statements if s["Effect"] == "Allow" and action in actions(s)]


# --- item 1: the Powertools layer ------------------------------------------------------------


def _pyproject_floor() -> str:
    """The lower bound of aws-lambda-powertools in pyproject's dependencies."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (spec,) = [d for d in project["dependencies"] if d.startswith("aws-lambda-powertools")]
    return re.search(r">=\s*([0-9.]+)", spec).group(1)


def test_pinned_layer_carries_a_powertools_release_the_handlers_run_on():
    """The handlers import event_handler.request and pass status_code= to route decorators:
    3.26 fails with ModuleNotFoundError, 3.27 with TypeError. The layer's release must also be
    no older than what local tests install (pyproject's floor)."""
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    release = LAYER_RELEASES[context["maas:powertools_layer_version"]]
    assert release_tuple(release) >= release_tuple("3.28.0")
    assert release_tuple(release) >= release_tuple(_pyproject_floor())
    assert release_tuple(_pyproject_floor()) >= release_tuple(MINIMUM_RELEASE)


def test_a_layer_too_old_or_unknown_is_refused():
    with pytest.raises(ValueError, match="3.23.0"):
        check_layer(27)
    with pytest.raises(ValueError, match="not in infra/powertools_layer.py"):
        check_layer(999)


def test_every_function_uses_the_pinned_layer(template):
    context = json.loads((REPO / "cdk.json").read_text())["context"]
    for function in template.find_resources("AWS::Lambda::Function").values():
        layers = json.dumps(function["Properties"]["Layers"])
        assert f"python314-arm64:{context['maas:powertools_layer_version']}" in layers


# --- items 2-5: SageMaker ----------------------------------------------------------------------


def test_volume_key_only_on_the_ebs_config_and_one_variant_name(assembly, stage):
    """KmsKeyId on a local-storage type makes CreateEndpointConfig fail; blue/green needs the
    variant name kept across versions (deployment guardrails, Exclusions).
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html"""
    configs = _resources(assembly.template_json(stage), "AWS::SageMaker::EndpointConfig")
    by_type = {p["ProductionVariants"][0]["InstanceType"]: p for p in configs.values()}
    assert set(by_type) == {m["instance_type"] for m in TEST_MODELS}
    for instance_type, props in by_type.items():
        assert ("KmsKeyId" in props) is not has_local_storage(instance_type), instance_type
        assert props["DataCaptureConfig"]["KmsKeyId"]
    variants = {v["VariantName"] for p in configs.values() for v in p["ProductionVariants"]}
    assert variants == {VARIANT_NAME}


def test_alarms_and_scaling_name_the_fixed_variant(assembly, stage):
    template = assembly.template_json(stage)
    for alarm in _resources(template, "AWS::CloudWatch::Alarm").values():
        for dimension in alarm.get("Dimensions", []):
            if dimension["Name"] == "VariantName":
                assert dimension["Value"] == VARIANT_NAME
    targets = _resources(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    assert len(targets) == len(TEST_MODELS)
    for target in targets:
        assert render(target["ResourceId"]).endswith(f"/variant/{VARIANT_NAME}")


def test_execution_role_may_create_grants_on_the_stage_key_for_aws_resources(assembly, stage):
    """SageMaker encrypts EBS volumes and outputs through grants it makes as this role.
    https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html"""
    statements = _execution_role_statements(assembly.template_json(stage))
    (grant,) = _allowing(statements, "kms:CreateGrant")
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert "Key" in render(grant["Resource"])


def test_code_channel_may_list_only_its_own_key(assembly, stage):
    """An S3Prefix channel is listed before it is read: s3:ListBucket on the asset bucket,
    held by s3:prefix to the one archive that s3:GetObject may read.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html"""
    statements = _execution_role_statements(assembly.template_json(stage))
    listing = [s for s in _allowing(statements, "s3:ListBucket") if "s3:prefix" in json.dumps(s)]
    assert len(listing) == 1
    key = listing[0]["Condition"]["StringEquals"]["s3:prefix"]
    assert key.endswith(".gz")
    assert "assets" in render(listing[0]["Resource"])
    reads = [render(s["Resource"]) for s in _allowing(statements, "s3:GetObject")]
    assert any(r.endswith(f"/{key}") for r in reads)


def test_execution_role_reads_the_rollback_alarms(assembly, stage):
    """ "Ensure that your IAM execution role has permission to perform the
    cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify."
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html"""
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    template = assembly.template_json(stage)
    (describe,) = _allowing(_execution_role_statements(template), "cloudwatch:DescribeAlarms")
    pattern = render(describe["Resource"])
    assert pattern.endswith(f":alarm:{prefix}-*")
    for endpoint in _resources(template, "AWS::SageMaker::Endpoint").values():
        for alarm in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]:
            name = alarm["AlarmName"]  # a Ref to the alarm answers its name
            name = template["Resources"][name["Ref"]]["Properties"]["AlarmName"]
            assert name.startswith(f"{prefix}-")


def test_no_pass_role_without_passed_to_service(assembly, stage):
    template = assembly.template_json(stage)
    assert _allowing(_statements(template), "iam:PassRole")
    assert policy_checks.pass_role_without_service(template) == []


# --- items 7-9: the API, the functions and the alarms ---------------------------------------


def test_alarm_topic_accepts_cloudwatch_alarms_of_this_account(assembly, stage):
    """Without a statement for cloudwatch.amazonaws.com the topic refuses alarm notifications.
    https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html"""
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    (policy,) = _resources(assembly.template_json(stage), "AWS::SNS::TopicPolicy").values()
    (publish,) = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert publish["Effect"] == "Allow" and publish["Action"] == "sns:Publish"
    assert publish["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert render(publish["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(f":alarm:{prefix}-*")


def test_predict_timeout_sits_between_its_worst_call_and_api_gateway():
    """handlers/aws.py: InvokeEndpoint worst case < Lambda timeout < API Gateway's 29 s."""
    c = handler_clients
    backoff_s = sum(range(1, c.MAX_ATTEMPTS))  # standard mode: up to 1 s, then up to 2 s
    worst = c.MAX_ATTEMPTS * (c.RUNTIME_CONNECT_TIMEOUT_S + c.RUNTIME_READ_TIMEOUT_S) + backoff_s
    assert worst < SIZING["predict"].timeout_s < API_GATEWAY_TIMEOUT_S


def test_each_stage_names_its_api_and_the_api_alarms_use_that_name(assembly, stage):
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    template = assembly.template_json(stage)
    (api,) = _resources(template, "AWS::ApiGateway::RestApi").values()
    assert api["Name"] == f"{prefix}-api"
    api_alarms = [
        a
        for a in _resources(template, "AWS::CloudWatch::Alarm").values()
        if a.get("Namespace") == "AWS/ApiGateway"
    ]
    assert len(api_alarms) == 2
    for alarm in api_alarms:
        assert {"Name": "ApiName", "Value": f"{prefix}-api"} in alarm["Dimensions"]


def test_the_api_gateway_account_setting_lives_once_in_the_account_stack(assembly, stage):
    assert not _resources(assembly.template_json(stage), "AWS::ApiGateway::Account")
    account = assembly.account_template_json("eu-west-1")
    (setting,) = _resources(account, "AWS::ApiGateway::Account").values()
    assert setting["CloudWatchRoleArn"]["Fn::GetAtt"][0] in account["Resources"]


def test_dashboard_search_matches_endpoint_names_partially():
    """A quoted term is an exact match: `EndpointName="maas-dev-"` matched nothing.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html"""
    expression = endpoint_search_expression("maas-dev", "Invocations", "Sum")
    assert "EndpointName=maas-dev'" in expression
    assert 'EndpointName="' not in expression
    assert 'MetricName="Invocations"' in expression


def test_dashboard_uses_the_search_expression(assembly, stage):
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    (dashboard,) = _resources(assembly.template_json(stage), "AWS::CloudWatch::Dashboard").values()
    body = render(dashboard["DashboardBody"])
    assert f"EndpointName={prefix}'" in body
    assert f'EndpointName=\\"{prefix}-\\"' not in body


def test_inference_images_of_both_flavours_are_pullable(assembly, stage):
    template = assembly.template_json(stage)
    (function,) = [
        f
        for f in _resources(template, "AWS::Lambda::Function").values()
        if f["Handler"] == handler_entry("deployments")
    ]
    env = function["Environment"]["Variables"]
    assert "-gpu-" in env["INFERENCE_IMAGE_URI"] and "-cpu-" in env["INFERENCE_IMAGE_URI_CPU"]
    (pull,) = _allowing(_execution_role_statements(template), "ecr:BatchGetImage")
    repositories = {r.rsplit("/", 1)[-1] for r in pull["Resource"]}
    assert {"pytorch-inference", "pytorch-training"} <= repositories


def _function_statements(template: dict, group: str) -> list[dict]:
    """The identity statements of one handler function's role."""
    functions = _resources(template, "AWS::Lambda::Function").values()
    (role,) = [
        f["Role"]["Fn::GetAtt"][0] for f in functions if f["Handler"] == handler_entry(group)
    ]
    return [
        s
        for p in _resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Roles"]
        for s in p["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("group", ["deployments", "events"])
def test_functions_that_scale_endpoints_hold_what_auto_scaling_checks_on_the_caller(
    assembly, stage, group
):
    """Registering a target and a target-tracking policy needs the target service's and
    CloudWatch's actions on the caller too ("Permissions required for API actions on target
    services and CloudWatch",
    https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_id-based-policy-examples.html):
    for SageMaker variants UpdateEndpointWeightsAndCapacities, and the alarms it names
    TargetTracking-endpoint/<endpoint>/variant/<variant>-AlarmHigh-<id>; all held to this
    stage's endpoints."""
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    statements = _function_statements(assembly.template_json(stage), group)

    (weights,) = _allowing(statements, "sagemaker:UpdateEndpointWeightsAndCapacities")
    resources = (
        weights["Resource"] if isinstance(weights["Resource"], list) else [weights["Resource"]]
    )
    assert [render(r).rsplit(":", 1)[-1] for r in resources] == [f"endpoint/{prefix}-*"]
    tracking = [
        s
        for action in ("PutMetricAlarm", "DescribeAlarms", "DeleteAlarms")
        for s in _allowing(statements, f"cloudwatch:{action}")
        if render(s["Resource"]).endswith(f":alarm:TargetTracking-endpoint/{prefix}-*")
    ]
    assert len(tracking) == 3 and all("Condition" not in s for s in tracking)
