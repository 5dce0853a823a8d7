"""The local stack takes its IAM policies from the synthesised template, and a handler whose
function policy lacks a statement is denied, as it would be in the cloud.

The synthesis is cached under .cache/synth/ (maas_local.cloud_template), so only the first
run after an infra change pays for it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas_contract.packaging import sourcedir_bytes
from maas_local import aws_resources, cloud_template
from maas_local.iam_guard import IamGuard, Place, acting_as
from maas_local.iam_policy import Policy, Request
from maas_local.lambda_context import LambdaContext

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "tests" / "events"


@pytest.fixture(scope="module")
def assembly() -> Path:
    return cloud_template.synthesise()


@pytest.fixture(scope="module")
def platform(assembly):
    """moto as a server, with the resources `maas local up` makes in it."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        resources = aws_resources.create_platform(url, progress=lambda _: None)
        yield url, resources
    finally:
        server.stop()


def _names(resources) -> cloud_template.LocalNames:
    return cloud_template.local_names(resources)


def test_every_handler_function_and_the_execution_role_get_their_template_policy(
    assembly, platform
):
    _, resources = platform
    policies = cloud_template.stack_policies(assembly, _names(resources))

    assert set(policies.functions) == {
        "predict",
        "registry",
        "deployments",
        "training_jobs",
        "meta",
        "events",
        "openai",  # the streaming function: its Handler is the web adapter's, its path names it
    }
    table = f"arn:aws:dynamodb:us-east-1:123456789012:table/{resources.registry_table}"
    # Resolved against what the local stack made: the table's real ARN, not a template token.
    assert policies.functions["registry"].allows(Request("dynamodb:PutItem", table))
    assert not policies.functions["predict"].allows(Request("dynamodb:PutItem", table))
    assert not policies.functions["meta"].allows(Request("dynamodb:GetItem", table))
    artifact = f"arn:aws:s3:::{resources.artifact_bucket}/models/x/model.tar.gz"
    assert policies.execution_role.allows(Request("s3:GetObject", artifact))
    assert not policies.execution_role.allows(Request("s3:GetObject", "arn:aws:s3:::other/x"))


def test_the_training_code_is_published_where_the_execution_role_may_read_it(assembly, platform):
    _, resources = platform
    names = _names(resources)
    asset = cloud_template.sourcedir_asset(assembly, names)
    role = cloud_template.stack_policies(assembly, names).execution_role

    assert asset.path.is_file() and asset.bucket == "cdk-hnb659fds-assets-123456789012-us-east-1"
    assert role.allows(Request("s3:GetObject", f"arn:aws:s3:::{asset.bucket}/{asset.key}"))
    # SageMaker lists an S3Prefix channel before it downloads it.
    listing = Request("s3:ListBucket", f"arn:aws:s3:::{asset.bucket}", {"s3:prefix": asset.key})
    assert role.allows(listing)
    assert not role.allows(Request("s3:GetObject", f"arn:aws:s3:::{asset.bucket}/other.zip"))


def test_the_local_stack_ships_the_cdk_assets_very_bytes(assembly, platform):
    """The CDK asset and the contract's packer give the same sourcedir.tar.gz, byte for byte,
    so a laptop (which publishes the asset, or packs the bundled code outside a checkout) runs
    the very tree a cloud training job runs."""
    _, resources = platform
    asset = cloud_template.sourcedir_asset(assembly, _names(resources))
    assert asset.path.read_bytes() == sourcedir_bytes(REPO / "training")


def _list_models_event() -> dict:
    event = json.loads((EVENTS / "apigw_rest_request.json").read_text())
    event.update(
        resource="/v1/models",
        path="/v1/models",
        httpMethod="GET",
        pathParameters=None,
        body=None,
    )
    event["requestContext"].update(resourcePath="/v1/models", httpMethod="GET")
    event["requestContext"]["authorizer"]["claims"]["scope"] = "maas/invoke maas/admin"
    return event


def test_removing_one_statement_from_the_template_denies_the_handler(
    assembly, platform, monkeypatch
):
    url, resources = platform
    for name, value in aws_resources.handler_env(resources, url, "http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    policies = cloud_template.stack_policies(assembly, _names(resources))

    def dynamodb_statement(statement: dict) -> bool:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        return any(a.startswith("dynamodb:") for a in actions)

    def call_list_models(registry_policy: Policy) -> tuple[dict, IamGuard]:
        from handlers.predict import service
        from handlers.shared import aws

        guard = IamGuard({"registry": registry_policy}, Place("us-east-1", "123456789012"))
        guard.install()
        # The handlers' session is made once per process; start a fresh one under the guard.
        monkeypatch.setattr(aws, "_session", None)
        aws.reset()
        service.clear_cache()
        try:
            from handlers.registry import routes as registry

            with acting_as("registry"):
                return (
                    registry.handler(_list_models_event(), LambdaContext("maas-local-registry")),
                    guard,
                )
        finally:
            guard.uninstall()
            monkeypatch.setattr(aws, "_session", None)
            aws.reset()

    allowed, guard = call_list_models(policies.functions["registry"])
    assert allowed["statusCode"] == 200, allowed
    assert {d.decision for d in guard.calls} == {"Allow"}
    assert any(d.request.action.startswith("dynamodb:") for d in guard.calls)

    denied, guard = call_list_models(policies.functions["registry"].without(dynamodb_statement))
    assert denied["statusCode"] >= 500, denied
    refused = [d for d in guard.calls if d.decision != "Allow"]
    assert refused and refused[0].request.action.startswith("dynamodb:")
    assert refused[0].request.resource.startswith(
        f"arn:aws:dynamodb:us-east-1:123456789012:table/{resources.registry_table}"
    )


def test_only_what_the_lambda_service_writes_stays_unresolved(assembly, platform):
    """A template reference the local stack cannot resolve would silently deny (or, in a
    condition, silently change) a call. Only what the Lambda service itself writes for a
    function, and no handler calls, has no local counterpart: its log group and its
    dead-letter queue."""
    _, resources = platform
    policies = cloud_template.stack_policies(assembly, _names(resources))

    for function, policy in policies.functions.items():
        for statement in policy.statements:
            if "unresolved:" not in json.dumps(statement):
                continue
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            service_side = [a.startswith("logs:") or a == "sqs:SendMessage" for a in actions]
            assert all(service_side), (function, statement)
    assert "unresolved:" not in json.dumps(policies.execution_role.statements)
