"""Answers 503 the first time it sees an Idempotency-Key, then 200 with what it saw."""

import json
import threading

SEEN: dict[str, int] = {}
_lock = threading.Lock()


def handler(event, context):
    key = (event["headers"] or {}).get("Idempotency-Key", "")
    with _lock:
        SEEN[key] = SEEN.get(key, 0) + 1
        attempts = SEEN[key]
    if attempts == 1:
        return {"statusCode": 503, "body": json.dumps({"error": {"code": "Busy"}})}
    return {"statusCode": 200, "body": json.dumps({"key": key, "attempts": attempts})}
