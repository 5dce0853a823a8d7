"""The security gates: cdk-nag (AwsSolutions + Serverless), our own template checks, checkov
and cfn-lint, over both stages. Each gate also gets a bad input, to prove it can fail."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra import policy_checks

from .conftest import STAGES

# --- cdk-nag -------------------------------------------------------------------------------


def test_cdk_nag_reports_no_unacknowledged_errors_or_warnings(assembly):
    report = json.loads((assembly.outdir / "validation-report.json").read_text())
    packs = {r["pluginName"]: r for r in report["pluginReports"]}
    assert set(packs) == {"AwsSolutions", "Serverless"}
    for pack in packs.values():
        assert pack["conclusion"] == "success", [v["ruleName"] for v in pack["violations"]]
        assert pack["violations"] == []


def _acknowledgements(assembly, stage: str) -> dict[str, tuple[str, str]]:
    found = {}
    for path, entries in assembly.metadata(stage).items():
        for entry in entries:
            if entry["type"] == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                for rule, reason in entry["data"].items():
                    found[f"{path} {rule}"] = (rule, reason)
    return found


def test_every_acknowledgement_has_a_real_reason_and_iam5_names_its_finding(assembly, stage):
    acknowledgements = _acknowledgements(assembly, stage)
    assert acknowledgements
    for where, (rule, reason) in acknowledgements.items():
        assert len(reason) >= 40 and reason.endswith("."), where
        if "IAM5" in rule or "IAM4" in rule:
            assert rule.endswith("]") and "[" in rule, f"{where}: acknowledge the exact finding"


def test_iam5_is_never_acknowledged_on_the_whole_stack(assembly, stage):
    for where, (rule, _) in _acknowledgements(assembly, stage).items():
        path = where.split(" ")[0]
        assert path != f"/maas-{stage}" or "IAM5" not in rule


def _nag_synth(build) -> None:
    app = cdk.App()
    stack = cdk.Stack(app, "probe")
    build(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(), ServerlessChecks())
    app.synth()


def test_cdk_nag_fails_a_bucket_without_tls_enforcement():
    with pytest.raises(Exception, match="AwsSolutions-S10"):
        _nag_synth(lambda stack: s3.Bucket(stack, "Open"))


def test_cdk_nag_fails_an_unacknowledged_wildcard_resource():
    def build(stack):
        role = iam.Role(stack, "R", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))

    with pytest.raises(Exception, match=r"AwsSolutions-IAM5\[Resource::\*\]"):
        _nag_synth(build)


# --- our own checks -----------------------------------------------------------------------


def _template(*resources: tuple[str, dict]) -> dict:
    return {
        "Resources": {f"R{i}": {"Type": t, "Properties": p} for i, (t, p) in enumerate(resources)}
    }


def _policy(*statements: dict) -> tuple[str, dict]:
    return ("AWS::IAM::Policy", {"PolicyDocument": {"Statement": list(statements)}})


def test_endpoint_configs_have_a_volume_key_exactly_where_sagemaker_allows_one(assembly, stage):
    template = assembly.template_json(stage)
    assert template_has(template, "AWS::SageMaker::EndpointConfig")
    assert policy_checks.endpoint_config_kms_violations(template) == []


def _config(instance_type: str, *, key: bool) -> tuple[str, dict]:
    props = {"ProductionVariants": [{"InstanceType": instance_type, "VariantName": "AllTraffic"}]}
    return ("AWS::SageMaker::EndpointConfig", {**props, **({"KmsKeyId": "k"} if key else {})})


def test_kms_check_catches_a_key_on_local_storage_and_a_missing_key_on_ebs():
    """CreateEndpointConfig fails with KmsKeyId on nitro instances with local storage
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html);
    on EBS-backed types the volume must be encrypted with the stage key."""
    bad = _template(_config("ml.g5.xlarge", key=True), _config("ml.m5.large", key=False))
    assert policy_checks.endpoint_config_kms_violations(bad) == ["R0", "R1"]
    good = _template(_config("ml.g5.xlarge", key=False), _config("ml.m5.large", key=True))
    assert policy_checks.endpoint_config_kms_violations(good) == []


def test_pass_role_check_catches_a_grant_without_passed_to_service():
    bad = _template(_policy({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "r"}))
    assert policy_checks.pass_role_without_service(bad) == ["R0"]
    good = _template(
        _policy(
            {
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": "r",
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            }
        )
    )
    assert policy_checks.pass_role_without_service(good) == []


def test_every_model_has_network_isolation(assembly, stage):
    template = assembly.template_json(stage)
    assert template_has(template, "AWS::SageMaker::Model")
    assert policy_checks.models_without_network_isolation(template) == []


def test_isolation_check_catches_a_model_without_it():
    bad = _template(
        ("AWS::SageMaker::Model", {"EnableNetworkIsolation": False}), ("AWS::SageMaker::Model", {})
    )
    assert policy_checks.models_without_network_isolation(bad) == ["R0", "R1"]


def test_create_training_job_is_allowed_only_on_our_prefix(assembly, stage):
    template = assembly.template_json(stage)
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    creators = [
        s
        for _, s in policy_checks.iam_statements(template)
        if "sagemaker:CreateTrainingJob" in json.dumps(s.get("Action"))
    ]
    assert creators, "the training_jobs function must be able to start jobs"
    assert policy_checks.training_job_scope_violations(template, prefix) == []


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        "arn:aws:sagemaker:eu-west-1:123456789012:training-job/*",
        "arn:aws:sagemaker:eu-west-1:123456789012:training-job/other-*",
    ],
)
def test_training_job_check_catches_a_grant_beyond_our_prefix(resource):
    bad = _template(
        _policy(
            {"Effect": "Allow", "Action": ["sagemaker:CreateTrainingJob"], "Resource": resource}
        )
    )
    assert policy_checks.training_job_scope_violations(bad, "maas-dev") != []
    good = _template(
        _policy(
            {
                "Effect": "Allow",
                "Action": "sagemaker:CreateTrainingJob",
                "Resource": "arn:aws:sagemaker:eu-west-1:123456789012:training-job/maas-dev-*",
            }
        )
    )
    assert policy_checks.training_job_scope_violations(good, "maas-dev") == []


def test_no_iam_statement_allows_every_action_or_a_whole_service(assembly, stage):
    assert policy_checks.wildcard_actions(assembly.template_json(stage)) == []


def test_action_check_catches_star_and_service_star():
    bad = _template(
        _policy({"Effect": "Allow", "Action": "*", "Resource": "x"}),
        (
            "AWS::IAM::Role",
            {
                "Policies": [
                    {
                        "PolicyDocument": {
                            "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "x"}]
                        }
                    }
                ]
            },
        ),
    )
    assert policy_checks.wildcard_actions(bad) == ["R0: *", "R1: s3:*"]


def test_resource_star_only_for_allow_listed_actions_each_with_a_reason(assembly, stage):
    allow_list = json.loads(policy_checks.WILDCARD_ALLOW_LIST.read_text())
    assert all(len(why) >= 40 for why in allow_list.values())
    assert policy_checks.unlisted_wildcard_resources(assembly.template_json(stage)) == []


def test_resource_star_check_catches_an_unlisted_action():
    bad = _template(
        _policy(
            {
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "s3:GetObject"],
                "Resource": "*",
            }
        )
    )
    assert policy_checks.unlisted_wildcard_resources(
        bad, {"xray:PutTraceSegments": "no resource-level permissions"}
    ) == ["R0: s3:GetObject"]


def template_has(template: dict, kind: str) -> bool:
    return any(r["Type"] == kind for r in template["Resources"].values())


# --- checkov and cfn-lint -------------------------------------------------------------------


def test_checkov_finds_no_failed_checks(checkov_report):
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 100, "checkov must have scanned both templates"
    failed = [(f["check_id"], f["resource"]) for f in checkov_report["results"]["failed_checks"]]
    assert failed == []


def test_every_checkov_skip_in_the_templates_carries_a_reason(assembly):
    skips = []
    for stage in STAGES:
        for resource in assembly.template_json(stage)["Resources"].values():
            skips += resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    assert skips
    assert all(s["id"].startswith("CKV") and len(s["comment"]) >= 40 for s in skips)


def test_cfn_lint_finds_no_errors(cfn_lint_findings):
    errors = [f for f in cfn_lint_findings if f["Level"] == "Error"]
    assert errors == []
