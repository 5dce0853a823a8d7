"""The events function's entry point: EventBridge delivers SageMaker's state changes here
(no API route reaches it), and each detail-type goes to its service function."""

from __future__ import annotations

from typing import Any

from handlers.events import service
from handlers.events.schemas import EndpointChange, Outcome, SageMakerEvent, TrainingJobChange
from handlers.shared.observability import logger, tracer
from handlers.shared.resolver import warm_before_snapshot
from maas_contract.events import ENDPOINT_STATE_CHANGE, SOURCE, TRAINING_JOB_STATE_CHANGE

warm = warm_before_snapshot(["dynamodb", "sagemaker", "cloudwatch", "application-autoscaling"])


def route(event: SageMakerEvent) -> Outcome:
    if event.source != SOURCE:
        return Outcome(action="ignored", reason="not a SageMaker event")
    if event.detail_type == TRAINING_JOB_STATE_CHANGE:
        return service.on_training_job(TrainingJobChange.model_validate(event.detail or {}))
    if event.detail_type == ENDPOINT_STATE_CHANGE:
        return service.on_endpoint(EndpointChange.model_validate(event.detail or {}))
    return Outcome(action="ignored", reason=f"detail-type {event.detail_type}")


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = route(SageMakerEvent.model_validate(event)).model_dump(exclude_none=True)
    logger.info("event handled", extra=result)
    return result
