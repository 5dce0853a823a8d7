"""Fails the way a buggy Lambda does: it raises, returns no statusCode, or returns what JSON
cannot carry."""


def handler(event, context):
    mode = (event["queryStringParameters"] or {}).get("mode")
    if mode == "malformed":
        return {"body": "no status"}
    if mode == "unserialisable":
        return {"statusCode": 200, "body": object()}
    raise RuntimeError("boom")
