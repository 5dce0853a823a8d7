"""Answers with the proxy event it received, so tests can check its shape."""

import json


def handler(event, context):
    payload = {"event": event, "remaining_ms": context.get_remaining_time_in_millis()}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"X-Echo": ["one", "two"]},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }
