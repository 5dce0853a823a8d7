"""Fails the way a buggy Lambda does: it raises, or returns no statusCode."""


def handler(event, context):
    if (event["queryStringParameters"] or {}).get("mode") == "malformed":
        return {"body": "no status"}
    raise RuntimeError("boom")
