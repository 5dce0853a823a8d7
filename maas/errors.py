"""The error a call to the maas API raises when the API answers with an error status."""

from __future__ import annotations

import json
from typing import Any


class ApiError(RuntimeError):
    """An error answer (HTTP 4xx or 5xx) from the maas API.

    Every route answers an error with one body,
    ``{"error": "<message>", "code": "<Code>", "request_id": "<id>"}``, whether the handler or
    the gateway in front of it refused the call. The OpenAI-compatible routes answer with
    OpenAI's error object, ``{"error": {"message": ..., "type": ..., "code": ...}}``. A body
    that is neither (a proxy's HTML page, an empty answer) is kept as it came.

    Attributes:
        status: the HTTP status code.
        message: what went wrong, for a person.
        code: the machine-readable code (``NotFound``, ``ValidationError``, ``THROTTLED``, ...),
            or ``""`` when the body has none.
        request_id: the id to quote when asking about the call: the body's, else the
            ``x-amzn-RequestId`` header's, else None.
        body: the decoded JSON body, or the text of a body that is not JSON.
    """

    def __init__(self, status: int, body: Any, request_id: str | None = None) -> None:
        self.status = status
        self.body = body
        self.message, self.code, from_body = _fields(body)
        self.request_id = from_body or request_id
        text = f"HTTP {status}{f' {self.code}' if self.code else ''}: {self.message}"
        super().__init__(f"{text} (request id {self.request_id})" if self.request_id else text)


def _fields(body: Any) -> tuple[str, str, str | None]:
    """(message, code, request id) of an error body, whichever shape it has."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str):
            return error, str(body.get("code") or ""), _text_or_none(body.get("request_id"))
        if isinstance(error, dict):  # OpenAI's error object: `type` when there is no `code`
            code = error.get("code") or error.get("type") or ""
            return str(error.get("message", "")), str(code), None
    if isinstance(body, str):
        return body.strip() or "(empty body)", "", None
    return json.dumps(body), "", None


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


class UsageError(ValueError):
    """A command given something it cannot use (a malformed --json, a missing file): the CLI
    says so in one line and exits 2, as argparse does for a bad option."""
