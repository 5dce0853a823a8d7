"""The local stack's IAM: policy evaluation, the botocore guard on the handlers' calls, and the
policies taken from the synthesised template.

AWS references:
- Policy evaluation logic:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
- Condition operators:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
- DynamoDB transactions authorise each item's action ("Using IAM with DynamoDB transactions"):
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis-iam.html
- iam:PassedToService: https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
"""

from __future__ import annotations

import json
import threading

import botocore.session
import pytest
import requests
from botocore.exceptions import ClientError
from moto import mock_aws

from maas_local.gateway import GatewaySettings
from maas_local.iam_guard import IamGuard, acting_as, bind_process
from maas_local.iam_policy import Policy, Request, UnsupportedCondition
from maas_local.iam_requests import Place, requests_for
from maas_local.tokens import mint_token

HERE = Place("us-east-1", "123456789012")
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/registry"
ROLE_ARN = "arn:aws:iam::123456789012:role/sagemaker-execution"


def _allow(action, resource, condition=None):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def test_actions_match_case_insensitively_and_resources_exactly():
    policy = Policy([_allow("dynamodb:Get*", TABLE_ARN)])

    assert policy.allows(Request("dynamodb:GetItem", TABLE_ARN))
    assert policy.allows(Request("DynamoDB:getitem", TABLE_ARN))
    assert not policy.allows(Request("dynamodb:PutItem", TABLE_ARN))
    assert not policy.allows(Request("dynamodb:GetItem", TABLE_ARN.replace("registry", "Registry")))
    assert not policy.allows(Request("dynamodb:GetItem", TABLE_ARN + "-other"))


def test_an_explicit_deny_wins_over_any_allow():
    policy = Policy(
        [
            _allow("s3:*", "arn:aws:s3:::data/*"),
            {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
        ]
    )

    assert policy.decide(Request("s3:GetObject", "arn:aws:s3:::data/x")) == "Allow"
    assert policy.decide(Request("s3:DeleteObject", "arn:aws:s3:::data/x")) == "ExplicitDeny"
    assert policy.decide(Request("s3:GetObject", "arn:aws:s3:::logs/x")) == "ImplicitDeny"


def test_pass_role_needs_the_passed_to_service_condition_to_hold():
    policy = Policy(
        [
            _allow(
                "iam:PassRole",
                ROLE_ARN,
                {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
        ]
    )
    to_sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}

    assert policy.allows(Request("iam:PassRole", ROLE_ARN, to_sagemaker))
    assert not policy.allows(
        Request("iam:PassRole", ROLE_ARN, {"iam:PassedToService": "ec2.amazonaws.com"})
    )
    # A key the request does not carry never satisfies a plain operator.
    assert not policy.allows(Request("iam:PassRole", ROLE_ARN))


@pytest.mark.parametrize(
    ("operator", "wanted", "context", "holds"),
    [
        ("StringLike", "/aws/sagemaker/*", {"cloudwatch:namespace": "/aws/sagemaker/Jobs"}, True),
        ("StringLike", "/aws/sagemaker/*", {"cloudwatch:namespace": "maas"}, False),
        ("Bool", "true", {"kms:GrantIsForAWSResource": "true"}, True),
        ("Bool", "true", {"kms:GrantIsForAWSResource": "false"}, False),
        ("StringEquals", "code.gz", {"s3:prefix": "code.gz"}, True),
        ("StringEquals", "code.gz", {"s3:prefix": ""}, False),
        ("StringEqualsIfExists", "code.gz", {}, True),
        ("StringNotEquals", "x", {"k": "y"}, True),
        ("ArnLike", "arn:aws:iam::*:role/maas-*", {"k": "arn:aws:iam::1:role/maas-a"}, True),
        ("ArnLike", "arn:aws:iam::*:role/maas-*", {"k": "arn:aws:iam::1:user/maas-a"}, False),
    ],
)
def test_condition_operators(operator, wanted, context, holds):
    key = next(iter(context), "k") if context else "s3:prefix"
    policy = Policy([_allow("svc:Act", "*", {operator: {key: wanted}})])

    assert policy.allows(Request("svc:Act", "*", context)) is holds


def test_an_operator_the_evaluator_does_not_know_fails_closed():
    policy = Policy([_allow("svc:Act", "*", {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})])

    with pytest.raises(UnsupportedCondition):
        policy.allows(Request("svc:Act", "*", {"aws:SourceIp": "10.0.0.1"}))


def test_a_transaction_is_authorised_item_by_item():
    params = {
        "TransactItems": [
            {"Put": {"TableName": "registry", "Item": {}}},
            {"ConditionCheck": {"TableName": "registry", "Key": {}}},
        ]
    }

    requests = requests_for("dynamodb", "TransactWriteItems", params, HERE)

    assert [r.action for r in requests] == ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    assert {r.resource for r in requests} == {TABLE_ARN}


@pytest.mark.parametrize(
    "source", [{"Bucket": "src", "Key": "a/model.tar.gz"}, "src/a/model.tar.gz"]
)
def test_a_copy_reads_the_source_and_writes_the_destination_with_each_buckets_key(source):
    """CopyObject: s3:GetObject on the source, s3:PutObject on the destination, and SSE-KMS's
    Decrypt and GenerateDataKey (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html)."""
    params = {"Bucket": "dst", "Key": "pinned/x.tar.gz", "CopySource": source}
    keys = {"src": "arn:aws:kms:us-east-1:123456789012:key/src", "dst": "arn:aws:kms:::key/dst"}

    requests = requests_for("s3", "CopyObject", params, HERE, keys)

    assert requests == [
        Request("s3:GetObject", "arn:aws:s3:::src/a/model.tar.gz"),
        Request("s3:PutObject", "arn:aws:s3:::dst/pinned/x.tar.gz"),
        Request("kms:Decrypt", keys["src"]),
        Request("kms:GenerateDataKey", keys["dst"]),
    ]


def test_create_training_job_also_passes_the_role_to_sagemaker():
    params = {"TrainingJobName": "maas-local-Digits-1", "RoleArn": ROLE_ARN}

    job, passed = requests_for("sagemaker", "CreateTrainingJob", params, HERE)

    assert job == Request(
        "sagemaker:CreateTrainingJob",
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/maas-local-digits-1",
    )
    assert passed.action == "iam:PassRole" and passed.resource == ROLE_ARN
    assert passed.context == {"iam:PassedToService": "sagemaker.amazonaws.com"}


def _reader_policies(path):
    """Function `reader` may only read the registry table; no other function may do anything."""
    document = {
        "region": "us-east-1",
        "account": "123456789012",
        "functions": {"reader": [_allow("dynamodb:GetItem", TABLE_ARN)]},
    }
    path.write_text(json.dumps(document))
    return path


@pytest.fixture
def guarded(tmp_path):
    """A guard that lets function `reader` only read the registry table, installed for the test."""
    policies = _reader_policies(tmp_path / "policies.json")
    guard = IamGuard.from_file(policies, audit_log=tmp_path / "decisions.jsonl")
    guard.install()
    try:
        with mock_aws():
            session = botocore.session.get_session()  # made after install: it carries the guard
            client = session.create_client(
                "dynamodb",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106
            )
            client.create_table(
                TableName="registry",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            yield guard, client, tmp_path / "decisions.jsonl"
    finally:
        guard.uninstall()


def test_a_function_may_make_the_calls_its_policy_allows(guarded):
    guard, client, _ = guarded

    with acting_as("reader"):
        answer = client.get_item(TableName="registry", Key={"pk": {"S": "x"}})

    assert "Item" not in answer
    assert [(d.function, d.request.action, d.decision) for d in guard.calls] == [
        ("reader", "dynamodb:GetItem", "Allow")
    ]


def test_a_call_the_policy_does_not_allow_answers_access_denied_as_aws_does(guarded):
    guard, client, audit = guarded

    with acting_as("reader"), pytest.raises(ClientError) as denied:
        client.put_item(TableName="registry", Item={"pk": {"S": "x"}})

    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/reader/reader is not authorized to "
        f"perform: dynamodb:PutItem on resource: {TABLE_ARN} because no identity-based "
        "policy allows the dynamodb:PutItem action"
    )
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    logged = [json.loads(line) for line in audit.read_text().splitlines()]
    assert logged[-1]["action"] == "dynamodb:PutItem" and logged[-1]["decision"] == "ImplicitDeny"
    # Nothing was written: the denial happened before the request left the process.
    assert "Item" not in client.get_item(TableName="registry", Key={"pk": {"S": "x"}})


def test_a_function_without_a_policy_may_do_nothing(guarded):
    _, client, _ = guarded

    with acting_as("stranger"), pytest.raises(ClientError) as denied:
        client.get_item(TableName="registry", Key={"pk": {"S": "x"}})

    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_calls_outside_any_function_are_the_stacks_own_and_not_checked(guarded):
    guard, client, _ = guarded

    client.put_item(TableName="registry", Item={"pk": {"S": "set-up"}})

    assert list(guard.calls) == []


def test_a_process_bound_to_a_function_checks_the_calls_of_all_its_threads(guarded):
    guard, client, _ = guarded
    outcome: dict[str, str] = {}

    def write() -> None:
        try:
            client.put_item(TableName="registry", Item={"pk": {"S": "x"}})
        except ClientError as error:
            outcome["code"] = error.response["Error"]["Code"]

    bind_process("reader")
    try:
        worker = threading.Thread(target=write)  # a context variable would not reach it
        worker.start()
        worker.join()
    finally:
        bind_process(None)

    assert outcome == {"code": "AccessDeniedException"}
    assert [(d.function, d.request.action) for d in guard.calls] == [("reader", "dynamodb:PutItem")]


def test_each_execution_environment_calls_aws_as_its_own_function(start_gateway, tmp_path):
    audit = tmp_path / "decisions.jsonl"
    gw = start_gateway(
        GatewaySettings(integration_timeout_s=20),
        iam_policies=_reader_policies(tmp_path / "policies.json"),
        iam_audit_log=audit,
    )
    token = mint_token(gw.keys_dir, ["maas/invoke"])
    headers = {"Authorization": f"Bearer {token}", "x-api-key": gw.key.value}

    # The same code (a DynamoDB read, made on a thread of the handler's own) runs as two
    # functions; only `reader`'s policy allows it.
    reader = requests.get(f"{gw.url}/v1/reader", headers=headers, timeout=30)
    stranger = requests.get(f"{gw.url}/v1/stranger", headers=headers, timeout=30)

    assert reader.json() == {"result": "allowed, and sent"}
    assert stranger.json() == {"result": "AccessDeniedException"}
    decisions = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(d["function"], d["action"], d["decision"]) for d in decisions] == [
        ("reader", "dynamodb:GetItem", "Allow"),
        ("stranger", "dynamodb:GetItem", "ImplicitDeny"),
    ]
