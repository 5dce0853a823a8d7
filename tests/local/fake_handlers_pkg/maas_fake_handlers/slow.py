"""Sleeps longer than the test gateway's integration timeout."""

import time


def handler(event, context):
    time.sleep(float((event["queryStringParameters"] or {}).get("seconds", "2")))
    return {"statusCode": 200, "body": "late"}
