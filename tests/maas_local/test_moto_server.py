"""The local stack's moto applies DynamoDB operations one at a time, so a conditional write or a
transaction is atomic, as DynamoDB's are (moto's own threaded server takes no lock). The race it
closes shows end to end in tests/reliability/test_faults.py: without it, fifty simultaneous
registrations through four execution environments got duplicate version numbers."""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest
from moto.dynamodb.models import DynamoDBBackend

from maas_local import moto_server


@pytest.fixture
def dynamodb():
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    moto_server.serialise_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "dynamodb",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        table = f"t-{uuid.uuid4().hex[:8]}"  # moto's backends outlive one server in a process
        client.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        yield client, table
    finally:
        server.stop()


def test_every_table_operation_is_wrapped_once():
    moto_server.serialise_dynamodb()
    moto_server.serialise_dynamodb()  # idempotent: a second call wraps nothing again
    for name in moto_server._OPERATIONS:
        operation = getattr(DynamoDBBackend, name)
        assert getattr(operation, "maas_serialised", False), name
        assert not getattr(operation.__wrapped__, "maas_serialised", False), name


def test_a_write_waits_while_another_operation_holds_the_table(dynamodb):
    dynamodb, table = dynamodb
    done = threading.Event()

    def put() -> None:
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
        done.set()

    with moto_server._LOCK:  # another operation is running
        writer = threading.Thread(target=put)
        writer.start()
        assert not done.wait(1.0)
    assert done.wait(10.0)
    writer.join()
