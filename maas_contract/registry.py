"""The registry table's key schema: the one DynamoDB table of models, versions, deployments and
training jobs (and Powertools' idempotency records).

`registry_schema.json` beside this module is the definition; infra builds the cloud table from
it, the local stack and the tests build theirs with `create_table_request`, and the handlers
name their key attributes from it. What the keys hold (the item layout) is the handlers' own
business: handlers/shared/registry_table.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("registry_schema.json")


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str  # DynamoDB's scalar types: "S", "N" or "B"


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute


@dataclass(frozen=True)
class KeySchema:
    partition_key: KeyAttribute
    sort_key: KeyAttribute
    indexes: tuple[Index, ...]
    ttl_attribute: str

    @property
    def key_attributes(self) -> frozenset[str]:
        """Every attribute the table or an index keys on."""
        keys = {self.partition_key.name, self.sort_key.name}
        for index in self.indexes:
            keys |= {index.partition_key.name, index.sort_key.name}
        return frozenset(keys)

    def index(self, name: str) -> Index:
        for index in self.indexes:
            if index.name == name:
                return index
        raise KeyError(f"the registry table has no index {name!r}")

    def create_table_request(self, table_name: str) -> dict[str, Any]:
        """CreateTable's parameters for an on-demand table with this key schema (every index
        projects all attributes, as infra's does)."""
        attributes = {self.partition_key, self.sort_key}
        for index in self.indexes:
            attributes |= {index.partition_key, index.sort_key}
        return {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
            "AttributeDefinitions": [
                {"AttributeName": a.name, "AttributeType": a.type}
                for a in sorted(attributes, key=lambda a: a.name)
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.partition_key, index.sort_key),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ],
        }

    def time_to_live_request(self, table_name: str) -> dict[str, Any]:
        """UpdateTimeToLive's parameters: expired idempotency records are deleted."""
        return {
            "TableName": table_name,
            "TimeToLiveSpecification": {"Enabled": True, "AttributeName": self.ttl_attribute},
        }


@cache
def key_schema(path: Path = SCHEMA_FILE) -> KeySchema:
    """The schema in `path` (registry_schema.json by default), read once."""
    raw = json.loads(path.read_text())
    return KeySchema(
        partition_key=_attribute(raw["partition_key"]),
        sort_key=_attribute(raw["sort_key"]),
        indexes=tuple(
            Index(
                name=index["name"],
                partition_key=_attribute(index["partition_key"]),
                sort_key=_attribute(index["sort_key"]),
            )
            for index in raw.get("global_secondary_indexes", [])
        ),
        ttl_attribute=raw["ttl_attribute"],
    )


def _attribute(raw: dict[str, str]) -> KeyAttribute:
    return KeyAttribute(name=raw["name"], type=raw["type"])


def _key_schema(partition: KeyAttribute, sort: KeyAttribute) -> list[dict[str, str]]:
    return [
        {"AttributeName": partition.name, "KeyType": "HASH"},
        {"AttributeName": sort.name, "KeyType": "RANGE"},
    ]
