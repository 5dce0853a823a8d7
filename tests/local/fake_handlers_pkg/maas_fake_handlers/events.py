"""Records the EventBridge events the sink delivers."""

RECEIVED = []


def handler(event, context):
    RECEIVED.append(event)
    return {"ok": True}
