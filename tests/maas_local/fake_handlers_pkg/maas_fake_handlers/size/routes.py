"""Answers with the size of the body it received, decoded."""

import base64
import json


def handler(event, context):
    body = event["body"] or ""
    raw = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
    return {"statusCode": 200, "body": json.dumps({"bytes": len(raw)})}
