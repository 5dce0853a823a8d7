"""maas_contract.registry: the registry table's key schema, which infra, the local stack, the
tests and the handlers all take from registry_schema.json."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
from moto import mock_aws

from maas_contract import registry

ROOT = registry.SCHEMA_FILE.parents[1]


def test_the_schema_names_the_table_its_listing_index_and_expiry():
    schema = registry.key_schema()

    assert (schema.partition_key.name, schema.sort_key.name) == ("pk", "sk")
    assert schema.index("gsi1").partition_key.name == "gsi1pk"
    assert schema.key_attributes == {"pk", "sk", "gsi1pk", "gsi1sk"}
    assert schema.ttl_attribute == "expiration"


def test_the_create_table_request_builds_that_table(monkeypatch):
    """CreateTable and UpdateTimeToLive accept the requests, and the table described has the
    schema's keys and index."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    schema = registry.key_schema()
    with mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**schema.create_table_request("registry"))
        client.update_time_to_live(**schema.time_to_live_request("registry"))

        table = client.describe_table(TableName="registry")["Table"]
        ttl = client.describe_time_to_live(TableName="registry")["TimeToLiveDescription"]

    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "pk": "HASH",
        "sk": "RANGE",
    }
    [index] = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "gsi1"
    assert {k["AttributeName"] for k in index["KeySchema"]} == {"gsi1pk", "gsi1sk"}
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("expiration", "ENABLED")


def test_the_schema_file_is_read_once_and_matches_the_json():
    raw = json.loads(registry.SCHEMA_FILE.read_text())

    assert registry.key_schema() is registry.key_schema()
    assert registry.key_schema().partition_key.name == raw["partition_key"]["name"]


def test_importing_the_module_reads_nothing():
    code = (
        "import maas_contract.registry as registry\n"
        "print(registry.key_schema.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "0"
