"""maas_local.loopback: which Host and Origin values reach a local server."""

from __future__ import annotations

import pytest

from maas_local.loopback import is_loopback_host, refusal


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:8080",
        "127.0.0.1",
        "localhost:3000",
        "LOCALHOST",
        "api.localhost:9",
        "[::1]:80",
        "127.1.2.3:5000",
    ],
)
def test_loopback_hosts_pass(host):
    assert is_loopback_host(host)
    assert refusal({"Host": host}) is None


@pytest.mark.parametrize(
    "host",
    [
        "",
        "attacker.example",
        "attacker.example:8080",
        "127.0.0.1.nip.io:80",
        "localhost.attacker.example",
        "10.0.0.5:80",
        "[2001:db8::1]:80",
        "0.0.0.0:80",
    ],
)
def test_other_hosts_are_refused_as_dns_rebinding_would_send_them(host):
    assert not is_loopback_host(host)
    assert "not a loopback name" in (refusal({"Host": host}) or "")


def test_a_web_pages_request_is_refused_by_its_origin_or_fetch_metadata():
    host = "127.0.0.1:4566"
    assert "cross-origin" in (refusal({"Host": host, "Origin": "http://attacker.example"}) or "")
    assert "cross-origin" in (refusal({"Host": host, "Origin": "null"}) or "")
    # another local server's page is another origin too
    assert "cross-origin" in (refusal({"Host": host, "Origin": "http://127.0.0.1:9999"}) or "")
    assert "cross-site" in (refusal({"host": host, "sec-fetch-site": "cross-site"}) or "")


def test_programs_and_the_servers_own_pages_pass():
    host = "127.0.0.1:4566"
    assert refusal({"Host": host, "User-Agent": "Boto3/1.40"}) is None
    assert refusal({"Host": host, "Origin": "http://127.0.0.1:4566"}) is None
    assert refusal({"Host": host, "Sec-Fetch-Site": "same-origin"}) is None
