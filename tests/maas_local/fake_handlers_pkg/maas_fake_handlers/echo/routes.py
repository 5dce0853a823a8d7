"""Answers with the proxy event it received, so tests can check its shape, and with the process
that served it, so tests can tell execution environments apart."""

import json
import os


def handler(event, context):
    payload = {
        "event": event,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "pid": os.getpid(),
    }
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"X-Echo": ["one", "two"]},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }
