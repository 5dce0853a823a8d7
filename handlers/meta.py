"""The meta route group: `GET /v1/openapi.json`, generated from the real routes."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router

from handlers.web import INVOKE, entry

router = Router()


@router.get(
    "/v1/openapi.json", tags=["meta"], security=INVOKE, summary="This API's OpenAPI document"
)
def openapi() -> dict[str, Any]:
    from handlers import api  # imports every route group; only this route needs them

    return api.openapi_document()


app, handler = entry(router)
