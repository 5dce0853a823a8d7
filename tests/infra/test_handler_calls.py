"""Each Lambda's role allows every AWS action its code can call: a static scan of the live
handlers/ source against the synthesised templates, plus tests that the scan itself works."""

from __future__ import annotations

import copy

import aws_cdk as cdk

from infra.api_functions import SIZING
from maas_contract.routes import handler_module

from .conftest import REPO
from .handler_calls import (
    Probe,
    actions_from,
    function_statements,
    missing_permissions,
    scan_package,
)


def _probe(assembly, stage: str) -> Probe:
    template = assembly.template_json(stage)
    (table,) = [i for i, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::Table"]
    stack = assembly.stack(stage)
    account = "<AWS::AccountId>" if cdk.Token.is_unresolved(stack.account) else stack.account
    return Probe(
        prefix=assembly.context["maas:stages"][stage]["resource_prefix"],
        region=stack.region,
        table_id=table,
        account=account,
    )


def test_every_function_role_allows_what_its_handlers_call(assembly, stage):
    scans = scan_package(REPO)
    found = {group: actions_from(handler_module(group), scans) for group in SIZING}
    assert "sagemaker:InvokeEndpoint" in found["predict"], "the scan must see the handlers"
    missing = missing_permissions(
        assembly.template_json(stage), list(SIZING), scans, _probe(assembly, stage)
    )
    assert missing == {}


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
