"""Registry routes through handlers.registry.routes.handler, against moto."""

from __future__ import annotations

import pytest

from handlers.registry import routes as registry
from maas_contract.names import MODEL_NAME_MAX, VERSION_MAX
from tests.handlers.support import (
    ADMIN,
    REQUEST_ID,
    api_event,
    call,
    error_of,
    parallel_calls,
    register,
    registration_event,
)


def test_registering_a_version_creates_the_model_and_numbers_from_one(aws_backend, lambda_context):
    reply = register("demo", lambda_context)

    assert reply.status == 201
    assert reply.body["version"] == 1
    model = call(
        registry,
        api_event("GET", "/v1/models/{model}", path_params={"model": "demo"}),
        lambda_context,
    )
    assert model.status == 200
    assert model.body["latest_version"] == 1
    assert model.body["endpoint_name"] == "maas-test-demo"


def test_versions_are_monotonic_and_listed_newest_first(aws_backend, lambda_context):
    for key in ("a", "b", "c"):
        assert register("demo", lambda_context, key=key).status == 201

    older = register("demo", lambda_context, version=2, key="older")
    listing = call(
        registry,
        api_event("GET", "/v1/models/{model}/versions", path_params={"model": "demo"}),
        lambda_context,
    )

    assert older.status == 409
    assert [v["version"] for v in listing.body["items"]] == [3, 2, 1]


def test_numbering_stops_at_the_last_version_and_the_largest_numbers_list_in_order(
    aws_backend, lambda_context
):
    assert register("demo", lambda_context, version=2, key="small").status == 201
    assert register("demo", lambda_context, version=VERSION_MAX - 1, key="big").status == 201
    assert register("demo", lambda_context, key="next").body["version"] == VERSION_MAX

    past = register("demo", lambda_context, key="past")
    over = register("demo", lambda_context, version=VERSION_MAX + 1, key="over")
    listing = call(
        registry,
        api_event("GET", "/v1/models/{model}/versions", path_params={"model": "demo"}),
        lambda_context,
    )

    assert past.status == 409
    assert error_of(past).code == "VersionsExhausted"
    assert over.status == 400
    assert [v["version"] for v in listing.body["items"]] == [VERSION_MAX, VERSION_MAX - 1, 2]


def test_replaying_an_idempotency_key_returns_the_first_result_and_registers_nothing_new(
    aws_backend, lambda_context
):
    first = register("demo", lambda_context, key="same")
    replay = register("demo", lambda_context, key="same")

    assert first.status == replay.status == 201
    assert replay.body == first.body
    model = call(
        registry,
        api_event("GET", "/v1/models/{model}", path_params={"model": "demo"}),
        lambda_context,
    )
    assert model.body["latest_version"] == 1


def test_twenty_parallel_registrations_of_one_version_give_one_201_and_nineteen_409(
    moto_server, lambda_context
):
    events = [registration_event("demo", version=1, key=f"racer-{i}") for i in range(20)]

    replies = parallel_calls(registry, events, lambda_context)

    statuses = sorted(r.status for r in replies)
    assert statuses == [201] + [409] * 19
    assert all(error_of(r).code == "Conflict" for r in replies if r.status == 409)


def test_models_are_paginated_with_an_opaque_token(aws_backend, lambda_context):
    for name in ("alpha", "beta", "gamma"):
        register(name, lambda_context)

    first = call(registry, api_event("GET", "/v1/models", query={"limit": "2"}), lambda_context)
    second = call(
        registry,
        api_event(
            "GET", "/v1/models", query={"limit": "2", "next_token": first.body["next_token"]}
        ),
        lambda_context,
    )

    assert [m["name"] for m in first.body["items"]] == ["alpha", "beta"]
    assert [m["name"] for m in second.body["items"]] == ["gamma"]


def test_a_forged_page_token_is_a_404_and_a_malformed_one_a_400(aws_backend, lambda_context):
    """A token of the declared form names a page that may not exist (state: 404); one that
    breaks the declared pattern is a bad request."""
    forged = call(
        registry,
        api_event("GET", "/v1/models", query={"next_token": "bm90LWpzb24"}),
        lambda_context,
    )
    malformed = call(
        registry,
        api_event("GET", "/v1/models", query={"next_token": "not a token!"}),
        lambda_context,
    )

    assert forged.status == 404
    assert forged.body == {
        "error": "next_token names no page of this listing; list again without it",
        "code": "NotFound",
        "request_id": REQUEST_ID,
    }
    assert malformed.status == 400


def test_an_unknown_model_is_a_404(aws_backend, lambda_context):
    reply = call(
        registry,
        api_event("GET", "/v1/models/{model}", path_params={"model": "nope"}),
        lambda_context,
    )

    assert reply.status == 404
    assert error_of(reply) == ("NotFound", "model nope is not registered")


def test_registering_without_the_admin_scope_is_a_403_even_with_an_invalid_body(
    aws_backend, lambda_context
):
    event = api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": "demo"},
        body={"nonsense": True},
        headers={"Idempotency-Key": "k"},
        scopes="maas/invoke",
    )

    reply = call(registry, event, lambda_context)

    assert reply.status == 403
    assert error_of(reply).code == "Forbidden"


def test_an_invalid_body_is_a_400_with_pydantics_message(aws_backend, lambda_context):
    event = api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": "demo"},
        body={"artifact_uri": "http://elsewhere/model.tar.gz", "recipe": "image-cnn"},
        headers={"Idempotency-Key": "k"},
        scopes=ADMIN,
    )

    reply = call(registry, event, lambda_context)

    assert reply.status == 400
    assert "artifact_uri" in error_of(reply).message
    assert "pattern" in error_of(reply).message


def test_an_artifact_outside_the_artifact_bucket_is_a_400(aws_backend, lambda_context):
    event = api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": "demo"},
        body={"artifact_uri": "s3://someone-else/model.tar.gz", "recipe": "image-cnn"},
        headers={"Idempotency-Key": "k"},
        scopes=ADMIN,
    )

    assert call(registry, event, lambda_context).status == 400


def test_registering_without_an_idempotency_key_is_a_400(aws_backend, lambda_context):
    event = api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": "demo"},
        body={"artifact_uri": "s3://maas-test-artifacts/m.tar.gz", "recipe": "image-cnn"},
        scopes=ADMIN,
    )

    reply = call(registry, event, lambda_context)

    assert reply.status == 400
    assert error_of(reply).code == "IdempotencyKeyMissing"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        # Powertools parses a form before the guard runs; without its boundary it raised
        # ValueError, which answered 500 (found by schemathesis's coverage phase).
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
    ],
)
def test_a_form_body_is_a_415(aws_backend, lambda_context, content_type):
    event = api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": "demo"},
        body='{"artifact_uri": "x"}',
        scopes=ADMIN,
        headers={"Idempotency-Key": "k", "Content-Type": content_type},
    )

    reply = call(registry, event, lambda_context)

    assert reply.status == 415, reply.body
    assert error_of(reply).code == "UnsupportedMediaType"


def test_a_bad_model_name_is_a_400(aws_backend, lambda_context):
    reply = call(
        registry,
        api_event("GET", "/v1/models/{model}", path_params={"model": "Bad_Name"}),
        lambda_context,
    )

    assert reply.status == 400


def test_the_longest_model_name_the_contract_allows_registers_and_one_more_is_a_400(
    aws_backend, lambda_context
):
    longest = "m" * MODEL_NAME_MAX

    registered = register(longest, lambda_context)
    too_long = call(
        registry,
        api_event("GET", "/v1/models/{model}", path_params={"model": longest + "m"}),
        lambda_context,
    )

    assert registered.status == 201
    read = api_event("GET", "/v1/models/{model}", path_params={"model": longest})
    model = call(registry, read, lambda_context)
    assert model.body["endpoint_name"] == f"maas-test-{longest}"
    assert too_long.status == 400
    assert error_of(too_long).code == "ValidationError"
