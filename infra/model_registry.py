"""The registry table that handlers/ reads and writes, built from handlers/registry_schema.json
so that the cloud table, the moto tables in tests and the local stack share one key schema."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER}


def _attribute(spec: dict) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=spec["name"], type=_TYPES[spec["type"]])


class ModelRegistry(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        schema_file: Path,
        encryption_key: kms.IKey,
        deletion_protection: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        schema = json.loads(schema_file.read_text())
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_attribute(schema["partition_key"]),
            sort_key=_attribute(schema["sort_key"]) if schema.get("sort_key") else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=encryption_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=deletion_protection,
            time_to_live_attribute=schema.get("ttl_attribute"),
            removal_policy=removal_policy,
        )
        for index in schema.get("global_secondary_indexes", []):
            self.table.add_global_secondary_index(
                index_name=index["name"],
                partition_key=_attribute(index["partition_key"]),
                sort_key=_attribute(index["sort_key"]) if index.get("sort_key") else None,
                projection_type=dynamodb.ProjectionType.ALL,
            )
