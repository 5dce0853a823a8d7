"""A streaming function's web app (plain ASGI), run as the Lambda Web Adapter runs one.

`?mode=` picks what it does; it hands tests what they must see in its answers, and waits on
files in FAKE_HANDLER_STATE, which the test writes once it has seen a chunk arrive.
"""

import asyncio
import json
import os
from pathlib import Path
from urllib.parse import parse_qs


async def _body(receive):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
    mode = query.get("mode", "echo")
    body = await _body(receive)
    start = {"type": "http.response.start", "status": 200, "headers": [(b"x-mode", mode.encode())]}

    async def chunk(data: bytes, more: bool = True) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": more})

    if mode == "echo":
        headers = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode(), []).append(value.decode())
        answer = {
            "method": scope["method"],
            "path": scope["path"],
            "query": scope["query_string"].decode(),
            "headers": headers,
            "body": body.decode(),
            "pid": os.getpid(),
            "lwa_port": os.environ.get("AWS_LWA_PORT"),
            "state_dir": os.environ.get("FAKE_HANDLER_STATE"),
        }
        start["headers"].append((b"content-type", b"application/json"))
        await send(start)
        await chunk(json.dumps(answer).encode(), more=False)
    elif mode == "gated":  # the second chunk waits until the test has seen the first
        gate = Path(os.environ["FAKE_HANDLER_STATE"]) / query["gate"]
        await send(start)
        await chunk(b"first\n")
        for _ in range(200):  # 10 s at most, so a buffering gateway fails the test, not hangs
            if gate.exists():
                await chunk(b"after-gate\n", more=False)
                return
            await asyncio.sleep(0.05)
        await chunk(b"gate-timeout\n", more=False)
    elif mode == "stall":  # one chunk, then silence
        await send(start)
        await chunk(b"first\n")
        await asyncio.sleep(float(query.get("seconds", "3")))
        await chunk(b"late\n", more=False)
    elif mode == "drip":  # a chunk every 50 ms, never idle for long
        await send(start)
        for index in range(int(query.get("count", "200"))):
            await chunk(b"%d\n" % index)
            await asyncio.sleep(0.05)
        await chunk(b"end\n", more=False)
    elif mode == "slow_headers":
        await asyncio.sleep(float(query.get("seconds", "3")))
        await send(start)
        await chunk(b"late\n", more=False)
    elif mode == "crash":  # fails mid-stream
        await send(start)
        await chunk(b"first\n")
        raise RuntimeError("the function failed mid-stream")
    elif mode == "status":
        await send({"type": "http.response.start", "status": int(query["code"]), "headers": []})
        await chunk(b"from the app", more=False)
