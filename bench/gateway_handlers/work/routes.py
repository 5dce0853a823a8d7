"""What a predict handler does with its time, roughly: a little CPU (parsing, validation,
metrics), then a wait on the model endpoint. The bench sets both through the environment."""

import base64
import json
import os
import time

CPU_MS = float(os.environ.get("BENCH_HANDLER_CPU_MS", "2"))
WAIT_MS = float(os.environ.get("BENCH_HANDLER_WAIT_MS", "20"))


def handler(event, context):
    started = time.perf_counter()
    body = event["body"] or "{}"
    if event.get("isBase64Encoded"):  # every body is, with the API's binary media type */*
        body = base64.b64decode(body)
    payload = json.loads(body)
    while (time.perf_counter() - started) * 1000 < CPU_MS:
        pass
    time.sleep(WAIT_MS / 1000)
    body = {"predictions": payload.get("instances", []), "pid": os.getpid()}
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }
