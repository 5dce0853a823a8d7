"""The table where the openai function counts each client's generated and prompt tokens, per
minute and per day, against the client's `tokens_per_minute` and `tokens_per_day` (cdk.json
`clients`). Counters expire on their own through the table's TTL attribute, so the table only
ever holds the current windows."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from maas_contract.token_usage import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

# One item per client and window: pk names the client, sk the window (minute or day). TTL
# deletes an item some time after the epoch second in `expires_at` (not at once: readers
# compare the window themselves).
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html


class TokenUsage(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey,
        deletion_protection: bool,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=PARTITION_KEY, type=dynamodb.AttributeType.STRING
            ),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=encryption_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=deletion_protection,
            time_to_live_attribute=TTL_ATTRIBUTE,
            removal_policy=removal_policy,
        )
