"""The meta route group: `GET /v1/openapi.json`, generated from the real routes, and
`GET /v1/usage`, every client's token usage (admin)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from handlers.meta import service
from handlers.openai import quotas
from handlers.shared.resolver import ADMIN, INVOKE, api_entry, resolver, warm_before_snapshot

router = Router()


@router.get(
    "/v1/openapi.json", tags=["meta"], security=INVOKE, summary="This API's OpenAPI document"
)
def openapi() -> dict[str, Any]:
    return service.served_document()


@router.get(
    "/v1/usage",
    tags=["meta"],
    security=ADMIN,
    summary="Each client's tokens this UTC minute and today (prompt, completion, total), with"
    " its limits, from the OpenAI-compatible routes' token accounting",
)
def usage() -> quotas.UsageReport:
    return quotas.report()


app = resolver(router)
warm = warm_before_snapshot([], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
