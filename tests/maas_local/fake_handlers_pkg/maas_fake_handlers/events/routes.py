"""Records the EventBridge events delivered to it, one JSON line each, in FAKE_EVENTS_LOG: it runs
in an execution environment of its own, so the test reads what it received from that file."""

import json
import os


def handler(event, context):
    with open(os.environ["FAKE_EVENTS_LOG"], "a") as log:
        log.write(json.dumps(event) + "\n")
    return {"ok": True}
