"""`maas usage`: each client's tokens of the OpenAI-compatible API (GET /v1/usage, admin scope),
this minute and today, against its limits; a table, or the API's JSON with `-o json`."""

from __future__ import annotations

import json

from tests.client.stub_api import Reply, Request, stub_api
from tests.client.test_cli_commands import maas, remote

USAGE = {
    "clients": [
        {
            "client_id": "abc123",
            "name": "demo-app",
            "limits": {"tokens_per_minute": 1000, "tokens_per_day": 50000},
            "minute": {
                "prompt_tokens": 30,
                "completion_tokens": 12,
                "total_tokens": 42,
                "requests": 1,
            },
            "day": {
                "prompt_tokens": 300,
                "completion_tokens": 120,
                "total_tokens": 420,
                "requests": 9,
            },
        },
        {
            "client_id": "zzz999",
            "name": "ml-admin",
            "limits": {"tokens_per_minute": 10, "tokens_per_day": 100},
            "minute": {
                "prompt_tokens": 9,
                "completion_tokens": 5,
                "total_tokens": 14,
                "requests": 1,
            },
            "day": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14, "requests": 1},
        },
    ],
    "day": "2025-06-01",
    "minute": "2025-06-01T09:41",
}


def _answer(request: Request) -> Reply:
    if request.path != "/v1/usage" or request.method != "GET":
        return Reply(404, {"error": "no route", "code": "NotFound", "request_id": "r"})
    if (
        request.headers.get("Authorization") != "Bearer t"
        or request.headers.get("x-api-key") != "k"
    ):
        return Reply(403, {"error": "Forbidden", "code": "ACCESS_DENIED", "request_id": "r"})
    return Reply(200, USAGE)


def test_usage_prints_each_clients_minute_and_day_against_its_limits():
    with stub_api(_answer) as api:
        code, out, err = maas("usage", *remote(api.url))
        json_code, as_json, _ = maas("usage", "-o", "json", *remote(api.url))

    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == [
        "client",
        "name",
        "window",
        "prompt",
        "completion",
        "total",
        "limit",
        "left",
    ]
    assert lines[1:] == [
        ["abc123", "demo-app", "minute", "30", "12", "42", "1000", "958"],
        ["abc123", "demo-app", "day", "300", "120", "420", "50000", "49580"],
        ["zzz999", "ml-admin", "minute", "9", "5", "14", "10", "0"],  # over: nothing left
        ["zzz999", "ml-admin", "day", "9", "5", "14", "100", "86"],
    ]
    assert json_code == 0 and json.loads(as_json) == USAGE


def test_usage_refused_prints_the_apis_error_and_exits_1():
    with stub_api(_answer) as api:
        code, out, err = maas("usage", "--api-url", api.url, "--api-key", "k", "--token", "x")

    assert code == 1 and out == ""
    assert "403" in err and '"ACCESS_DENIED"' in err
