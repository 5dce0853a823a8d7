"""SageMaker state changes through a real EventBridge rule: drain its SQS queue into the handler.

With the LocalStack backend, the emulator puts each state-change event on EventBridge, a rule on
`aws.sagemaker` sends it to a queue, and this drainer hands it to `handlers.events`, as the
rule's Lambda target does in the cloud. A message is deleted only after the handler took it, so
an event whose handling failed comes back after the visibility timeout: nothing is lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from maas_local.aws_resources import local_client

log = logging.getLogger("maas_local.event_queue")

QUEUE_NAME = "maas-local-sagemaker-events"
RULE_NAME = "maas-local-sagemaker-state-changes"
DETAIL_TYPES = ["SageMaker Training Job State Change", "SageMaker Endpoint State Change"]
QUEUE_ENV = "MAAS_EVENT_QUEUE_URL"
VISIBILITY_TIMEOUT_S = 30


def create_route(endpoint_url: str) -> str:
    """The queue, the rule that feeds it, and the queue policy that lets the rule send."""
    sqs = local_client("sqs", endpoint_url)
    events = local_client("events", endpoint_url)
    queue_url = sqs.create_queue(
        QueueName=QUEUE_NAME,
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    pattern = {"source": ["aws.sagemaker"], "detail-type": DETAIL_TYPES}
    rule_arn = events.put_rule(Name=RULE_NAME, EventPattern=json.dumps(pattern))["RuleArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    events.put_targets(Rule=RULE_NAME, Targets=[{"Id": "state-changes", "Arn": queue_arn}])
    return queue_url


class QueueDrainer:
    """Long-polls the queue on one thread and delivers each event, in order, to `deliver`."""

    def __init__(self, queue_url: str, deliver: Callable[[dict[str, Any]], None]) -> None:
        self.queue_url = queue_url
        self._deliver = deliver
        self._sqs = boto3.client("sqs", config=Config(retries={"mode": "standard"}))
        self._stopping = threading.Event()
        self.delivered = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="event-queue", daemon=True)

    def start(self) -> QueueDrainer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:  # the queue being briefly unreachable must not end the drainer
                log.exception("receiving from %s failed", self.queue_url)
                self._stopping.wait(1.0)
                continue
            for message in messages:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            event = json.loads(message["Body"])
            self._deliver(event)
        except Exception:  # left on the queue: it comes back after the visibility timeout
            self.failed += 1
            log.exception("event from the queue was not handled; it will be redelivered")
            return
        self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.delivered += 1
        log.info("event %s handled from the queue", event.get("detail-type"))
