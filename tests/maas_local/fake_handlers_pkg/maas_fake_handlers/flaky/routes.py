"""Answers 503 the first time it sees an Idempotency-Key, then 200 with what it saw. The count
lives in FAKE_HANDLER_STATE, a folder, so that every execution environment shares it."""

import json
import os
from pathlib import Path


def handler(event, context):
    key = (event["headers"] or {}).get("Idempotency-Key", "")
    seen = Path(os.environ["FAKE_HANDLER_STATE"]) / f"flaky-{key}"
    attempts = int(seen.read_text()) + 1 if seen.exists() else 1
    seen.write_text(str(attempts))
    if attempts == 1:
        return {"statusCode": 503, "body": json.dumps({"error": {"code": "Busy"}})}
    return {"statusCode": 200, "body": json.dumps({"key": key, "attempts": attempts})}
