"""The gateway's internal paths, beside the API: the events path where the SageMaker emulator's
state changes arrive for the events function, and the published JWKS."""

from __future__ import annotations

import json
import time

import requests

TIMEOUT = 30


def test_events_path_delivers_events_with_the_token_and_refuses_without(running_gateway, caplog):
    caplog.set_level("INFO", logger="maas_local.gateway")
    gw = running_gateway
    event = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Training Job State Change",
        "detail": {"TrainingJobName": "j", "TrainingJobStatus": "Completed"},
    }
    refused = requests.post(f"{gw.url}/_local/events/wrong", json=event, timeout=TIMEOUT)
    assert refused.status_code == 403
    accepted = requests.post(
        f"{gw.url}/_local/events/test-event-token", json=event, timeout=TIMEOUT
    )
    assert accepted.status_code == 202
    deadline = time.monotonic() + 10
    while not gw.received_events() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.received_events() == [event]
    not_json = requests.post(
        f"{gw.url}/_local/events/test-event-token",
        data=json.dumps(event),
        headers={"Content-Type": "text/plain"},
        timeout=TIMEOUT,
    )
    assert not_json.status_code == 415
    assert gw.received_events() == [event]
    assert "/_local/events/" in caplog.text and "test-event-token" not in caplog.text


def test_jwks_is_published_without_the_private_key(running_gateway):
    gw = running_gateway
    jwks = requests.get(f"{gw.url}/.well-known/jwks.json", timeout=TIMEOUT).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256"
    assert "d" not in key and "p" not in key
    assert json.loads((gw.keys_dir / "issuer.json").read_text())["jwks"] == jwks
