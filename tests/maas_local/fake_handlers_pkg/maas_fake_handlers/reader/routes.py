"""Reads an item from DynamoDB on a thread of its own, and says what came of it: the IAM guard's
AccessDeniedException, or (when the policy allows the call) a connection error, since nothing
listens at the endpoint. Route groups `reader` and `stranger` both run this code."""

import json
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

TABLE = "registry"
CLOSED_PORT_URL = "http://127.0.0.1:9"


def _get_item(outcome: dict) -> None:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=CLOSED_PORT_URL,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
    )
    try:
        client.get_item(TableName=TABLE, Key={"pk": {"S": "x"}})
        outcome["result"] = "answered"
    except ClientError as error:
        outcome["result"] = error.response["Error"]["Code"]
    except EndpointConnectionError:
        outcome["result"] = "allowed, and sent"


def handler(event, context):
    outcome: dict = {}
    worker = threading.Thread(target=_get_item, args=(outcome,))
    worker.start()
    worker.join()
    return {"statusCode": 200, "body": json.dumps(outcome)}
