"""Each Lambda's role allows every AWS action its code can call: a static scan of the live
handlers/ source against the synthesised templates, plus tests that the scan itself works."""

from __future__ import annotations

import copy

import aws_cdk as cdk

from infra.api_functions import SIZING
from infra.streaming_functions import STREAMING_SIZING
from infra.token_usage import TTL_ATTRIBUTE
from maas_contract.registry import key_schema

from .conftest import REPO
from .handler_calls import (
    Probe,
    actions_from,
    entry_module,
    function_statements,
    missing_permissions,
    scan_package,
)


def _probe(assembly, stage: str) -> Probe:
    template = assembly.template_json(stage)
    tables = {
        r["Properties"]["TimeToLiveSpecification"]["AttributeName"]: i
        for i, r in template["Resources"].items()
        if r["Type"] == "AWS::DynamoDB::Table"
    }
    # Told apart by their TTL attributes: the registry's (maas_contract) and the usage table's.
    table, usage_table = tables[key_schema().ttl_attribute], tables[TTL_ATTRIBUTE]
    stack = assembly.stack(stage)
    account = "<AWS::AccountId>" if cdk.Token.is_unresolved(stack.account) else stack.account
    return Probe(
        prefix=assembly.context["maas:stages"][stage]["resource_prefix"],
        region=stack.region,
        table_id=table,
        usage_table_id=usage_table,
        account=account,
    )


GROUPS = [*SIZING, *STREAMING_SIZING]


def test_every_function_role_allows_what_its_handlers_call(assembly, stage):
    scans = scan_package(REPO)
    found = {group: actions_from(entry_module(group), scans) for group in GROUPS}
    assert "sagemaker:InvokeEndpoint" in found["predict"], "the scan must see the handlers"
    # The openai app streams from the endpoint and counts tokens in the usage table.
    assert "sagemaker:InvokeEndpointWithResponseStream" in found["openai"]
    assert "dynamodb:UpdateItem@usage" in found["openai"]
    missing = missing_permissions(
        assembly.template_json(stage), GROUPS, scans, _probe(assembly, stage)
    )
    assert missing == {}


def test_a_usage_table_write_granted_only_on_the_registry_does_not_count(assembly):
    """The openai role writes token counters in the usage table, not the registry: moving the
    grant to the registry table must make the check fail."""
    template = copy.deepcopy(assembly.template_json("dev"))
    scans = scan_package(REPO)
    probe = _probe(assembly, "dev")
    for statement in function_statements(template, "openai"):
        if "dynamodb:UpdateItem" in str(statement["Action"]):
            statement["Resource"] = [{"Fn::GetAtt": [probe.table_id, "Arn"]}]
    missing = missing_permissions(template, ["openai"], scans, probe)
    assert "dynamodb:UpdateItem@usage" in missing["openai"]


def _write(root, name: str, text: str) -> None:
    path = root / "handlers" / f"{name.replace('.', '/')}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_scan_follows_imports_and_local_client_names(tmp_path):
    _write(tmp_path, "__init__", "")
    _write(tmp_path, "shared.__init__", "")
    _write(tmp_path, "shared.aws", "def client(name): ...\n")
    _write(tmp_path, "entry", "from handlers import deploy\n\ndef route():\n    deploy.go()\n")
    _write(
        tmp_path,
        "deploy",
        "from handlers.shared import aws\n\n"
        "def go():\n"
        "    aws.sagemaker().create_model(ModelName='m')\n"
        "    scaling = aws.client('application-autoscaling')\n"
        "    scaling.register_scalable_target()\n"
        "    aws.dynamodb().transact_write_items(TransactItems=[])\n\n"
        "def unused():\n"
        "    aws.sagemaker().delete_model(ModelName='m')\n",
    )
    actions = actions_from("handlers.entry", scan_package(tmp_path))
    assert {
        "sagemaker:CreateModel",
        "iam:PassRole",
        "application-autoscaling:RegisterScalableTarget",
        "iam:CreateServiceLinkedRole",
        "dynamodb:PutItem",
        "dynamodb:ConditionCheckItem",
    } <= actions
    # Functions nobody calls do not count, and a transaction is authorised per item.
    assert "sagemaker:DeleteModel" not in actions
    assert "dynamodb:TransactWriteItems" not in actions


def test_removing_a_statement_makes_the_check_fail(assembly):
    template = copy.deepcopy(assembly.template_json("dev"))
    scans = scan_package(REPO)
    probe = _probe(assembly, "dev")
    assert missing_permissions(template, ["predict"], scans, probe) == {}
    statements = function_statements(template, "predict")
    (invoke,) = [s for s in statements if "sagemaker:InvokeEndpoint" in str(s["Action"])]
    invoke["Action"] = [a for a in invoke["Action"] if a != "sagemaker:InvokeEndpoint"]
    assert missing_permissions(template, ["predict"], scans, probe) == {
        "predict": ["sagemaker:InvokeEndpoint"]
    }


def test_a_grant_on_another_stages_resources_does_not_count(assembly):
    template = copy.deepcopy(assembly.template_json("dev"))
    scans = scan_package(REPO)
    other_stage = Probe(prefix="maas-prod", region="eu-west-1", table_id="T")
    missing = missing_permissions(template, ["predict"], scans, other_stage)
    assert "sagemaker:InvokeEndpoint" in missing["predict"]
