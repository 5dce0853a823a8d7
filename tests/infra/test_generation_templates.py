"""Text generation in the synthesised templates: the streaming openai function under the Lambda
Web Adapter, its API Gateway integration with response streaming, the LMI image, and the token
usage table. Read from the session's one synthesis (conftest.assembly)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from aws_cdk.assertions import Match

from infra.images import GENERATION_VERSION
from infra.server_layer import SERVER_DISTRIBUTIONS, asgi_app, startup_handler
from infra.streaming_functions import (
    ADAPTER_ACCOUNT,
    ADAPTER_LAYER_VERSION,
    STREAM_MAX_S,
    STREAMING_SIZING,
)
from infra.token_usage import TTL_ATTRIBUTE
from maas_contract.generation import is_generation_container
from maas_contract.routes import INVOKE_SCOPE, STREAMING_GROUPS, handler_entry, load_routes

from .conftest import openapi_document

LMI_ACCOUNT = "763104351884"  # AWS Deep Learning Containers' ECR account in eu-west-1


def _resources(assembly, stage: str, kind: str) -> dict[str, dict]:
    return {
        i: r for i, r in assembly.template_json(stage)["Resources"].items() if r["Type"] == kind
    }


def _function(assembly, stage: str, handler: str) -> tuple[str, dict]:
    ((logical_id, resource),) = [
        (i, r)
        for i, r in _resources(assembly, stage, "AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == handler
    ]
    return logical_id, resource["Properties"]


def _statements(assembly, stage: str, role_id: str) -> list[dict]:
    found = []
    for policy in _resources(assembly, stage, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _actions(statement: dict) -> set[str]:
    return set(_as_list(statement["Action"]))


def _refers_to(value, logical_id: str) -> bool:
    return logical_id in json.dumps(value)


# --- API Gateway: response streaming ---------------------------------------------------------


def test_openai_routes_stream_from_the_function_through_invoke_with_response_stream(
    assembly, stage
):
    """responseTransferMode STREAM on a Lambda proxy integration; API Gateway then calls
    InvokeWithResponseStream, whose integration URI is
    `arn:aws:apigateway:{region}:lambda:path/2021-11-15/functions/{arn}/response-streaming-invocations`
    https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html
    A streamed integration may run up to 15 minutes:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html
    Cognito scopes and the API key apply as on every route."""
    openai_routes = [r for r in load_routes(openapi_document()) if r.group in STREAMING_GROUPS]
    assert {(r.method, r.path) for r in openai_routes} >= {
        ("POST", "/openai/v1/chat/completions"),
        ("POST", "/openai/v1/completions"),
        ("GET", "/openai/v1/models"),
    }
    function_id, _ = _function(assembly, stage, startup_handler("openai"))
    methods = _resources(assembly, stage, "AWS::ApiGateway::Method").values()
    streamed = [m["Properties"] for m in methods if _refers_to(m, function_id)]
    assert len(streamed) == len(openai_routes)
    for method in streamed:
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["ResponseTransferMode"] == "STREAM"
        assert integration["TimeoutInMillis"] == STREAM_MAX_S * 1000 == 900_000
        uri = json.dumps(integration["Uri"])
        assert ":lambda:path/2021-11-15/functions/" in uri
        assert uri.endswith('"/response-streaming-invocations"]]}')
        assert method["AuthorizationType"] == "COGNITO_USER_POOLS"
        assert INVOKE_SCOPE in method["AuthorizationScopes"]
        assert method["ApiKeyRequired"] is True
    # Every other route stays buffered, within the 29 s of a buffered integration.
    others = [m["Properties"] for m in methods if not _refers_to(m, function_id)]
    assert others
    assert all("ResponseTransferMode" not in m["Integration"] for m in others)


def test_api_gateway_may_invoke_the_streaming_function(assembly, stage):
    """InvokeWithResponseStream is authorised by lambda:InvokeFunction
    (https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html)."""
    function_id, _ = _function(assembly, stage, startup_handler("openai"))
    permissions = [
        p["Properties"]
        for p in _resources(assembly, stage, "AWS::Lambda::Permission").values()
        if _refers_to(p["Properties"]["FunctionName"], function_id)
    ]
    assert permissions
    assert all(p["Action"] == "lambda:InvokeFunction" for p in permissions)
    assert all(p["Principal"] == "apigateway.amazonaws.com" for p in permissions)


# --- the streaming function ------------------------------------------------------------------


def test_the_openai_function_runs_under_the_web_adapter_in_response_stream_mode(
    assembly, stage, template
):
    """Zip packages on a managed runtime: the adapter's layer, the exec wrapper
    (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) and the handler set to the startup script;
    AWS_LWA_INVOKE_MODE=response_stream streams.
    https://awslabs.github.io/aws-lambda-web-adapter/getting-started/zip-packages.html
    https://awslabs.github.io/aws-lambda-web-adapter/configuration/response-streaming.html"""
    region = assembly.stack(stage).region
    adapter = (
        f"arn:aws:lambda:{region}:{ADAPTER_ACCOUNT}:layer:LambdaAdapterLayerArm64:"
        f"{ADAPTER_LAYER_VERSION}"
    )
    sizing = STREAMING_SIZING["openai"]
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": startup_handler("openai"),
            "Runtime": Match.string_like_regexp(r"^python3\.\d+$"),
            "Architectures": ["arm64"],
            "Layers": Match.array_with([adapter]),
            "MemorySize": sizing.memory_mb,
            "Timeout": sizing.timeout_s,
            "TracingConfig": {"Mode": "Active"},
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                        "AWS_LWA_INVOKE_MODE": "response_stream",
                        "AWS_LWA_PORT": "8000",
                        "POWERTOOLS_SERVICE_NAME": "maas-openai",
                    }
                )
            },
        },
    )
    # The function stops before API Gateway's 15-minute cap on a stream.
    assert sizing.timeout_s < STREAM_MAX_S


def test_the_openai_function_shares_the_handlers_asset_and_the_other_functions_settings(
    assembly, stage
):
    _, openai = _function(assembly, stage, startup_handler("openai"))
    _, predict = _function(assembly, stage, handler_entry("predict"))
    assert openai["Code"] == predict["Code"]
    assert openai["Runtime"] == predict["Runtime"]
    assert predict["Layers"][0] in openai["Layers"]  # the Powertools layer
    shared = {
        k: v
        for k, v in predict["Environment"]["Variables"].items()
        if k != "POWERTOOLS_SERVICE_NAME"
    }
    assert shared.items() <= openai["Environment"]["Variables"].items()
    assert openai["KmsKeyArn"] == predict["KmsKeyArn"]


def _asset_dir(assembly, code: dict) -> Path:
    key = code["S3Key"]
    return assembly.outdir / f"asset.{key.removesuffix('.zip')}"


def _server_layer_dir(assembly, stage: str) -> Path:
    ((layer,),) = [
        [r["Properties"]] for r in _resources(assembly, stage, "AWS::Lambda::LayerVersion").values()
    ]
    return _asset_dir(assembly, layer["Content"])


def test_the_server_layer_carries_uvicorn_and_its_dependencies_as_pure_python(assembly, stage):
    """A layer's python/ folder is on the function's path as /opt/python
    (https://docs.aws.amazon.com/lambda/latest/dg/packaging-layers.html); the function runs on
    arm64, so nothing compiled for this machine may ship."""
    site = _server_layer_dir(assembly, stage) / "python"
    for name in SERVER_DISTRIBUTIONS:
        assert (site / name / "__init__.py").is_file(), name
    assert not [p for p in site.rglob("*") if p.suffix in (".so", ".pyd", ".pyc")]


def test_the_startup_script_is_executable_and_serves_the_asgi_app(assembly, stage):
    _, openai = _function(assembly, stage, startup_handler("openai"))
    script = _asset_dir(assembly, openai["Code"]) / startup_handler("openai")
    assert script.is_file()
    assert script.stat().st_mode & 0o111 == 0o111, "the adapter execs the handler file"
    assert asgi_app("openai") in script.read_text()
    assert script.read_text().startswith("#!/bin/sh\n")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_startup_script_starts_uvicorn_from_the_layer_alone(assembly, tmp_path):
    """Runs the synthesised run.sh as the adapter would (LAMBDA_TASK_ROOT, AWS_LWA_PORT), with
    an interpreter that has no site-packages of ours: uvicorn, h11 and click come from the layer
    folder only (given as PYTHONPATH, as /opt/python is in the function). The app is a stand-in
    at handlers.openai.app: the real one needs the Powertools layer too."""
    _, openai = _function(assembly, "dev", startup_handler("openai"))
    task_root = tmp_path / "task"
    app_dir = task_root / "handlers" / "openai"
    app_dir.mkdir(parents=True)
    (task_root / "handlers" / "__init__.py").write_text("")
    (app_dir / "__init__.py").write_text("")
    (app_dir / "app.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'ready'})\n"
    )
    script = app_dir / "run.sh"
    shutil.copy2(_asset_dir(assembly, openai["Code"]) / startup_handler("openai"), script)
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python").symlink_to(getattr(sys, "_base_executable", sys.executable))
    port = _free_port()
    env = {
        "PATH": f"{bare}:/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": str(task_root),
        "PYTHONPATH": str(_server_layer_dir(assembly, "dev") / "python"),
        "AWS_LWA_PORT": str(port),
        "PYTHONNOUSERSITE": "1",
        "HOME": str(tmp_path),
    }
    check = subprocess.run(
        [str(bare / "python"), "-c", "import uvicorn"],
        env={**env, "PYTHONPATH": ""},
        capture_output=True,
    )
    assert check.returncode != 0, "the bare interpreter must not have uvicorn of its own"
    server = subprocess.Popen(
        ["/bin/sh", str(script)],
        cwd=task_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        for _ in range(100):  # at most ~20 s
            if server.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as reply:
                    body = reply.read()
                break
            except OSError:
                time.sleep(0.2)
        assert body == b"ready", server.stdout.read() if server.poll() is not None else b""
    finally:
        server.terminate()
        server.wait(timeout=10)


# --- the LMI image ---------------------------------------------------------------------------


def test_the_lmi_image_reaches_the_deployments_function_and_the_execution_roles_pull_policy(
    assembly, stage
):
    """djl-inference images in AWS's DLC account, from sagemaker-core's djl-lmi table; the
    execution role pulls exactly the repositories of the stage's images.
    https://docs.aws.amazon.com/sagemaker/latest/dg/large-model-inference-container-docs.html"""
    region = assembly.stack(stage).region
    _, deployments = _function(assembly, stage, handler_entry("deployments"))
    image = deployments["Environment"]["Variables"]["GENERATION_IMAGE_URI"]
    assert image.startswith(f"{LMI_ACCOUNT}.dkr.ecr.{region}.amazonaws.com/djl-inference:")
    assert image.split(":")[-1].startswith(f"{GENERATION_VERSION}-lmi")
    assert is_generation_container(image)
    _, events = _function(assembly, stage, handler_entry("events"))
    assert events["Environment"]["Variables"]["GENERATION_IMAGE_URI"] == image
    pulls = [
        s
        for policy in _resources(assembly, stage, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "ecr:BatchGetImage" in _actions(s)
    ]
    assert len(pulls) == 1
    repository = f"arn:aws:ecr:{region}:{LMI_ACCOUNT}:repository/djl-inference"
    assert repository in _as_list(pulls[0]["Resource"])
    assert all(":repository/" in r and "*" not in r for r in _as_list(pulls[0]["Resource"]))


# --- token usage -----------------------------------------------------------------------------


def _usage_table(assembly, stage: str) -> tuple[str, dict]:
    ((logical_id, table),) = [
        (i, r)
        for i, r in _resources(assembly, stage, "AWS::DynamoDB::Table").items()
        if r["Properties"]["TimeToLiveSpecification"]["AttributeName"] == TTL_ATTRIBUTE
    ]
    return logical_id, table


def test_the_usage_table_is_keyed_expiring_encrypted_and_recoverable(assembly, stage):
    """TTL on expires_at (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html),
    SSE with the stage key, point-in-time recovery, and the registry's removal policy."""
    _, table = _usage_table(assembly, stage)
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["SSESpecification"]["SSEType"] == "KMS"
    assert "KMSMasterKeyId" in props["SSESpecification"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    registries = [
        r
        for r in _resources(assembly, stage, "AWS::DynamoDB::Table").values()
        if r["Properties"]["TimeToLiveSpecification"]["AttributeName"] != TTL_ATTRIBUTE
    ]
    assert table["DeletionPolicy"] == registries[0]["DeletionPolicy"]
    retain = assembly.context["maas:stages"][stage]["retain_data"]
    assert props.get("DeletionProtectionEnabled", False) is retain


def _grants_on(assembly, stage: str, handler: str, table_id: str) -> set[str]:
    _, function = _function(assembly, stage, handler)
    role_id = function["Role"]["Fn::GetAtt"][0]
    return {
        action
        for s in _statements(assembly, stage, role_id)
        if any(_refers_to(r, table_id) for r in _as_list(s["Resource"]))
        for action in _actions(s)
    }


def test_only_the_openai_function_writes_the_usage_table_and_meta_reads_it(assembly, stage):
    usage_id, _ = _usage_table(assembly, stage)
    openai = _grants_on(assembly, stage, startup_handler("openai"), usage_id)
    assert {"dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= openai
    meta = _grants_on(assembly, stage, handler_entry("meta"), usage_id)
    assert {"dynamodb:GetItem", "dynamodb:Query"} <= meta
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & meta
    for group in ("predict", "registry", "deployments", "training_jobs", "events"):
        assert _grants_on(assembly, stage, handler_entry(group), usage_id) == set(), group


def test_the_openai_function_invokes_only_this_stages_endpoints(assembly, stage):
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    _, function = _function(assembly, stage, startup_handler("openai"))
    statements = _statements(assembly, stage, function["Role"]["Fn::GetAtt"][0])
    sagemaker = [s for s in statements if any(a.startswith("sagemaker:") for a in _actions(s))]
    assert len(sagemaker) == 1
    assert _actions(sagemaker[0]) == {
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointWithResponseStream",
    }
    (resource,) = _as_list(sagemaker[0]["Resource"])
    assert json.dumps(resource).endswith(f':endpoint/{prefix}-*"]]}}')
    # The registry read-only: it may look up models but not change them.
    registry_id = [
        i
        for i, r in _resources(assembly, stage, "AWS::DynamoDB::Table").items()
        if r["Properties"]["TimeToLiveSpecification"]["AttributeName"] != TTL_ATTRIBUTE
    ][0]
    on_registry = _grants_on(assembly, stage, startup_handler("openai"), registry_id)
    assert {"dynamodb:GetItem", "dynamodb:Query"} <= on_registry
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & on_registry
    actions = {a for s in statements for a in _actions(s)}
    assert not [a for a in actions if a.startswith(("s3:", "iam:"))]


def _resolve_join(value, names: dict[str, str]) -> str:
    parts = value["Fn::Join"][1]
    return "".join(names[p["Ref"]] if isinstance(p, dict) else p for p in parts)


def test_token_quotas_name_each_client_by_its_app_client_id(assembly, stage):
    """TOKEN_QUOTAS keys are the Cognito app client ids (the access token's client_id claim),
    which CloudFormation fills in; the values are cdk.json's clients."""
    _, function = _function(assembly, stage, startup_handler("openai"))
    clients = _resources(assembly, stage, "AWS::Cognito::UserPoolClient")
    names = {i: f"id-of-{r['Properties']['ClientName']}" for i, r in clients.items()}
    quotas = json.loads(_resolve_join(function["Environment"]["Variables"]["TOKEN_QUOTAS"], names))
    declared = assembly.context["maas:stages"][stage]["clients"]
    assert len(quotas) == len(declared) == len(clients)
    by_name = {q["name"]: q for q in quotas.values()}
    for client in declared:
        assert by_name[client["name"]] == {
            "name": client["name"],
            "tokens_per_minute": client["tokens_per_minute"],
            "tokens_per_day": client["tokens_per_day"],
        }
    assert set(quotas) == set(names.values())
    usage_id, _ = _usage_table(assembly, stage)
    assert function["Environment"]["Variables"]["TOKEN_USAGE_TABLE"] == {"Ref": usage_id}


# --- monitoring ------------------------------------------------------------------------------


def test_the_openai_functions_errors_page_the_alarm_topic_and_show_on_the_dashboard(
    assembly, stage, template
):
    """A streamed response has sent its 200 before a late failure, so the function's own
    Errors metric watches it (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html)."""
    prefix = assembly.context["maas:stages"][stage]["resource_prefix"]
    function_id, _ = _function(assembly, stage, startup_handler("openai"))
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": f"{prefix}-openai-errors",
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function_id}}],
            "AlarmActions": Match.any_value(),
        },
    )
    (dashboard,) = _resources(assembly, stage, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "openai function" in body and function_id in body


@pytest.mark.parametrize("name", SERVER_DISTRIBUTIONS)
def test_the_server_distributions_are_pinned(name):
    pins = (Path(__file__).resolve().parents[2] / "constraints.txt").read_text().splitlines()
    assert any(line.startswith(f"{name}==") for line in pins), name
