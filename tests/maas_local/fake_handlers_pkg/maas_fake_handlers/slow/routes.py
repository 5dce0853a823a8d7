"""Sleeps as long as it is told (by default, longer than the test gateway's integration timeout)."""

import os
import time


def handler(event, context):
    time.sleep(float((event["queryStringParameters"] or {}).get("seconds", "2")))
    return {"statusCode": 200, "body": str(os.getpid())}
