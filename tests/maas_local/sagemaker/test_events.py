"""State-change events: AWS's document shape, and their publishing to an HTTP sink or an EventBridge
bus."""

from __future__ import annotations

import datetime as dt
import json
import threading

import boto3
import pytest

from maas_local.http_server import LocalHTTPServer, LocalRequestHandler
from maas_local.sagemaker import events
from maas_local.sagemaker.event_publisher import EventPublisher, validate_target
from tests.maas_local.sagemaker.emulator_helpers import free_port, wait_for

DESCRIBE = {
    "EndpointName": "maas-local-digits",
    "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/maas-local-digits",
    "EndpointConfigName": "maas-local-digits-v2",
    "EndpointStatus": "InService",
    "CreationTime": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    "LastModifiedTime": dt.datetime(2026, 1, 2, 3, 4, 6, tzinfo=dt.UTC),
}


def test_endpoint_event_has_eventbridges_shape():
    event = events.endpoint_event(
        DESCRIBE,
        [{"Key": "maas:model", "Value": "digits"}],
        account="123456789012",
        region="us-east-1",
    )

    assert event["detail-type"] == "SageMaker Endpoint State Change"
    assert event["source"] == "aws.sagemaker" and event["version"] == "0"
    assert event["resources"] == [DESCRIBE["EndpointArn"]]
    assert event["detail"]["EndpointStatus"] == "IN_SERVICE"
    assert event["detail"]["CreationTime"] == 1767323045000
    assert event["detail"]["Tags"] == {"maas:model": "digits"}
    dt.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    json.dumps(event)


class FlakySink:
    """Answers 500 to the first `failures` POSTs, then records documents."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[dict] = []
        sink = self

        class Handler(LocalRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.read_body())
                if sink.failures > 0:
                    sink.failures -= 1
                    self.send_bytes(500, b"")
                else:
                    sink.received.append(body)
                    self.send_bytes(204, b"")

        self.httpd = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_http_sink_retries_until_the_event_is_delivered():
    server = FlakySink(failures=2)
    sink = EventPublisher(server.url, attempts=4, backoff_s=0.01)
    try:
        sink.emit(events.build("X", "arn:x", {"a": 1}, account="1", region="r"))
        sink.close()
        assert [e["detail"] for e in server.received] == [{"a": 1}]
        assert sink.delivered == 1 and sink.failed == 0
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_unreachable_sink_drops_the_event_after_bounded_retries():
    sink = EventPublisher(f"http://127.0.0.1:{free_port()}/", attempts=2, backoff_s=0.01)
    sink.emit(events.build("X", "arn:x", {}, account="1", region="r"))
    sink.close()
    assert sink.delivered == 0 and sink.failed == 1


def test_events_bus_sink_puts_the_event_on_eventbridge(moto_url):
    bus = "maas-local-bus"
    eventbridge, sqs = boto3.client("events"), boto3.client("sqs")
    eventbridge.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName="sagemaker-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    eventbridge.put_rule(
        Name="sagemaker-state",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["aws.sagemaker"]}),
    )
    eventbridge.put_targets(
        Rule="sagemaker-state", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}]
    )
    sink = EventPublisher(f"events:{bus}", backoff_s=0.01)

    sink.emit(events.endpoint_event(DESCRIBE, [], account="123456789012", region="us-east-1"))
    sink.close()

    messages = wait_for(
        lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"), 20
    )
    delivered = json.loads(messages[0]["Body"])
    assert delivered["detail-type"] == "SageMaker Endpoint State Change"
    assert delivered["detail"]["EndpointConfigName"] == "maas-local-digits-v2"
    assert sink.delivered == 1


def test_sink_target_must_be_a_url_or_a_bus():
    with pytest.raises(ValueError, match="events:BUSNAME"):
        validate_target("file:///tmp/x")
