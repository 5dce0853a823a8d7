"""moto's server, with DynamoDB's consistency: every table operation runs alone.

DynamoDB applies a conditional write, and a whole TransactWriteItems, atomically: two callers
that race for the same version number cannot both succeed, and no reader sees a transaction
half-applied ("TransactWriteItems is a synchronous and idempotent write operation that groups
up to 100 write actions in a single all-or-nothing operation",
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
moto's server is threaded and its backend takes no lock: it checks a transaction's conditions,
then writes, and on a failure restores a copy of the whole table, so concurrent handlers (one
per Lambda execution environment) could both win a race that DynamoDB lets only one win, and a
failed transaction could undo another's write. Serialising the backend's table operations
closes both, at the cost of some parallelism inside one table, which a laptop does not need.

It also lets only the stack's owner in. moto's server answers anyone by default, and serves its
whole state (and a reset) under `/moto-api/`. Here, in front of moto's WSGI application:
- every request passes `maas_local.loopback` (a loopback Host, no cross-origin request);
- `/moto-api/` is not served; `/_maas/health` answers the supervisor;
- with the owner's credentials in OWNER_KEY_ENV and OWNER_SECRET_ENV (the ones the stack
  issued at `up`, never on a command line), moto's own access control is switched on
  (`INITIAL_NO_AUTH_ACTION_COUNT=0`): every call must carry a SigV4 signature that moto
  recomputes with that secret, from an IAM user that holds exactly that key. A request with no
  signature at all is refused here, as AWS refuses it ("MissingAuthenticationToken", 403, in
  the common errors of AWS's APIs, https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html;
  S3 answers an anonymous request for a private bucket with "AccessDenied", 403,
  https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html);
- a presigned S3 URL (query-string auth) signed with that key passes once its signature and
  expiry are checked (`maas_local.presigned`), as S3 lets anyone holding one in.

And it keeps large uploads out of memory. A PutObject or UploadPart body past moto's key buffer
size is read from the socket in 1 MiB chunks into a spool file (`maas_local.moto_state.spill`),
before the state lock is taken; moto gets it as a read-only memoryview of that file, and the key
it makes takes the file over. moto's Flask app runs in debug mode, where Flask ties each request
to an ad-hoc class (a better KeyError for `request.files`): a reference cycle that kept every
request, its body with it, until a full garbage collection, which an idle server never runs; that
helper is switched off (`drop_debug_request_cycle`).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from moto.dynamodb.models import DynamoDBBackend

from maas_local import loopback, moto_state
from maas_local import presigned as presigned_urls
from maas_local.moto_state import MotoState, changed_services

_state_log = logging.getLogger("maas_local.moto_state")

# The stack passes the credentials it issued at `up` through these variables.
OWNER_KEY_ENV = "MAAS_MOTO_ACCESS_KEY_ID"
OWNER_SECRET_ENV = "MAAS_MOTO_SECRET_ACCESS_KEY"  # noqa: S105 - a variable's name
OWNER_USER = "maas-local-owner"
STATE_ENV = "MAAS_MOTO_STATE_DIR"  # where moto's state is written through, if anywhere
HEALTH_PATH = "/_maas/health"
SPILLED_BODY = "maas.spilled_body"  # environ key: the request's body, spooled to disk
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")  # moto parses these
_PART_QUERY = {"uploadid", "partnumber", "x-id"}  # PutObject, UploadPart: nothing else
_ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}

_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "batch_write_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
)
_LOCK = threading.RLock()


def _serialised(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    locked.__dict__["maas_serialised"] = True
    return locked


def serialise_dynamodb() -> None:
    """Makes moto's DynamoDB table operations run one at a time, in this process."""
    for name in _OPERATIONS:
        operation = getattr(DynamoDBBackend, name)
        if not getattr(operation, "maas_serialised", False):
            setattr(DynamoDBBackend, name, _serialised(operation))


def drop_debug_request_cycle() -> None:
    """moto sets `debug = True` on its Flask apps, and in debug mode Flask gives each request's
    `files` an ad-hoc class whose method refers back to the request (only to word a KeyError
    better): a cycle that holds the request and its body until a full collection. Without it a
    request, and a 200 MB body, goes as soon as it is answered."""
    import flask.debughelpers

    def attach_nothing(request: Any) -> None:
        return None

    flask.debughelpers.attach_enctype_error_multidict = attach_nothing


def _get_data(
    self: Any, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
) -> Any:
    """moto's Request.get_data: a spilled body is handed over as it is, a memoryview of its
    file (werkzeug's would read it whole into bytes)."""
    body = self.environ.get(SPILLED_BODY)
    if body is None:
        return _werkzeug_get_data[0](self, cache, as_text, parse_form_data)
    if parse_form_data:
        self._load_form_data()  # not a form (see _spillable): reads nothing
    return bytes(body).decode(errors="replace") if as_text else body


_werkzeug_get_data: list[Callable[..., Any]] = []


def stream_large_uploads() -> None:
    """Large PUT bodies go to disk, not memory (see the module's text); idempotent."""
    from moto.core.request import Request

    drop_debug_request_cycle()
    moto_state.stream_large_objects()
    if Request.__dict__.get("get_data") is not _get_data:
        _werkzeug_get_data[:] = [Request.get_data]
        Request.get_data = _get_data  # type: ignore[method-assign]


def _spillable(environ: dict[str, Any], headers: dict[str, str]) -> int:
    """The Content-Length of an S3 PutObject or UploadPart body worth spooling to disk, or 0.
    Anything moto would read otherwise (a form, an aws-chunked or chunked body, a copy, a
    subresource such as ?tagging) keeps moto's own path."""
    from moto.settings import get_s3_default_key_buffer_size

    if environ.get("REQUEST_METHOD") != "PUT" or "transfer-encoding" in headers:
        return 0
    scope = headers.get("authorization", "").split("Credential=", 1)[-1].split("/")
    if len(scope) < 4 or scope[3] != "s3":
        return 0
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
    if length <= get_s3_default_key_buffer_size():
        return 0
    if headers.get("x-amz-content-sha256", "").startswith("STREAMING-"):
        return 0
    if "x-amz-copy-source" in headers or headers.get("content-type", "").lower().startswith(
        _FORM_TYPES
    ):
        return 0
    if "/" not in environ.get("PATH_INFO", "").strip("/"):  # no object key in the path
        return 0
    query = {p.split("=", 1)[0].lower() for p in environ.get("QUERY_STRING", "").split("&") if p}
    return length if query <= _PART_QUERY else 0


def enable_access_control(access_key: str, secret_key: str) -> None:
    """From now on moto answers only calls signed with this key: an IAM user of moto's default
    account holds it, with a policy that allows everything (the local IAM checks of each
    function and role are maas's own, in maas_local.iam_guard)."""
    from moto import settings
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    if OWNER_USER not in iam.users:
        iam.create_user(region_name="us-east-1", user_name=OWNER_USER)
        iam.put_user_policy(OWNER_USER, "owner", json.dumps(_ALLOW_ALL))
    user = iam.users[OWNER_USER]
    key = user.access_keys[0] if user.access_keys else user.create_access_key(prefix="AKIA")
    key.access_key_id, key.secret_access_key = access_key, secret_key
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    found = {
        k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        found["content-type"] = environ["CONTENT_TYPE"]
    return found


def _refuse(
    start_response: Callable[..., Any], status: int, code: str, message: str, json_protocol: bool
) -> Iterable[bytes]:
    if json_protocol:  # JSON protocols (X-Amz-Target) read __type; the rest read XML
        body = json.dumps({"__type": code, "message": message}).encode()
        content_type = "application/x-amz-json-1.1"
    else:
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
        ).encode()
        content_type = "application/xml"
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 500: "Internal Server Error"}[status]
    start_response(
        f"{status} {reason}", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    )
    return [body]


class OwnerOnly:
    """moto's WSGI application behind the local stack's front checks (see the module's text),
    and, with a state folder, every write saved before its answer leaves."""

    def __init__(
        self,
        app: Callable[..., Any],
        signed: bool,
        state: MotoState | None = None,
        presigned: presigned_urls.Verifier | None = None,
    ) -> None:
        self.app, self.signed, self.state = app, signed, state
        self.presigned = presigned

    def _presigned(
        self, environ: dict[str, Any], headers: dict[str, str]
    ) -> presigned_urls.Refusal | None:
        """A presigned S3 URL, checked as S3 checks it, then signed for moto the usual way."""
        assert self.presigned is not None
        method = environ.get("REQUEST_METHOD", "GET")
        raw_path = environ.get("RAW_URI", environ.get("PATH_INFO", "")).split("?", 1)[0]
        url = f"http://{headers.get('host', '')}{raw_path}?{environ.get('QUERY_STRING', '')}"
        try:
            checked = self.presigned.verify(method, url, headers)
        except presigned_urls.Refusal as refusal:
            return refusal
        environ["QUERY_STRING"] = checked.query
        environ["RAW_URI"] = raw_path + (f"?{checked.query}" if checked.query else "")
        environ["REQUEST_URI"] = environ["RAW_URI"]
        for name, value in self.presigned.as_header_signed(method, url, headers, checked).items():
            if name not in ("host", "content-type"):
                environ[f"HTTP_{name.upper().replace('-', '_')}"] = value
        return None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        headers = _headers(environ)
        json_protocol = "x-amz-target" in headers
        path = environ.get("PATH_INFO", "")
        why = loopback.refusal(headers)
        if why:
            return _refuse(start_response, 403, "AccessDenied", why, json_protocol)
        if path == HEALTH_PATH:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"status": "ok", "service": "moto"}']
        if path.startswith("/moto-api"):
            return _refuse(
                start_response,
                403,
                "AccessDenied",
                "moto's internals are not served",
                json_protocol,
            )
        query = environ.get("QUERY_STRING", "")
        if (
            self.presigned is not None
            and "authorization" not in headers
            and presigned_urls.is_presigned(query)
        ):
            refused = self._presigned(environ, headers)
            if refused is not None:
                return _refuse(start_response, refused.status, refused.code, refused.message, False)
            headers = _headers(environ)
        if self.signed and "authorization" not in headers:
            if json_protocol or "action=" in environ.get("QUERY_STRING", "").lower():
                code = "MissingAuthenticationToken" + ("Exception" if json_protocol else "")
                return _refuse(
                    start_response, 403, code, "Missing Authentication Token", json_protocol
                )
            return _refuse(start_response, 403, "AccessDenied", "Access Denied", json_protocol)
        if self.signed and not headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential="):
            return _refuse(
                start_response,
                400,
                "IncompleteSignature",
                "The request signature does not conform to AWS standards.",
                json_protocol,
            )
        changed = (
            changed_services(
                environ.get("REQUEST_METHOD", "GET"), headers, environ.get("QUERY_STRING", "")
            )
            if self.state
            else []
        )
        length = _spillable(environ, headers)
        if not length:
            if not changed:
                return self.app(environ, start_response)
            return self._write_through(environ, start_response, changed)
        try:
            body = moto_state.spill(environ["wsgi.input"], length)
        except (moto_state.IncompleteBody, OSError) as error:
            _state_log.warning("a %d-byte upload was not spooled: %s", length, error)
            incomplete = isinstance(error, moto_state.IncompleteBody)
            return _refuse(
                start_response,
                400 if incomplete else 500,
                "IncompleteBody" if incomplete else "InternalError",
                "You did not provide the number of bytes specified by the Content-Length HTTP "
                "header."
                if incomplete
                else "the upload could not be spooled to disk; retry",
                json_protocol,
            )
        file = getattr(getattr(body, "obj", None), "file", None)
        if file is not None:
            file.seek(0)  # anything that reads the stream rather than get_data reads the file
        environ = {**environ, SPILLED_BODY: body, "wsgi.input": file or environ["wsgi.input"]}
        try:
            if not changed:
                # moto has answered in full (Flask does not stream): the body is read.
                return self.app(environ, start_response)
            return self._write_through(environ, start_response, changed)
        finally:
            moto_state.release(body)

    def _write_through(
        self, environ: dict[str, Any], start_response: Callable[..., Any], changed: list[str]
    ) -> Iterable[bytes]:
        """moto answers in full, the changed backends are saved, then the answer goes out:
        nothing is acknowledged before it is on disk."""
        assert self.state is not None
        answer: list[Any] = []

        def hold(status: str, response_headers: list, exc_info: Any = None) -> Callable:
            answer[:] = [status, response_headers, exc_info]
            return lambda _data: None

        with self.state.lock:
            result = self.app(environ, hold)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
            try:
                self.state.save(changed)
            except Exception:  # the write is not durable: do not acknowledge it
                _state_log.exception("saving %s failed", changed)
                return _refuse(
                    start_response,
                    500,
                    "InternalError",
                    "the write could not be saved; retry",
                    "x-amz-target" in _headers(environ),
                )
        start_response(*answer[:2])
        return [body]


def main(argv: list[str] | None = None) -> None:
    """`python -m maas_local.moto_server --host 127.0.0.1 --port N`: moto's server with
    DynamoDB's consistency, loopback-only, and signed calls only when the owner's credentials
    are in the environment."""
    parser = argparse.ArgumentParser(description="moto's server for the maas local stack")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own main sets it
    serialise_dynamodb()
    stream_large_uploads()
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    state = MotoState(Path(os.environ[STATE_ENV])) if os.environ.get(STATE_ENV) else None
    moto_state.set_spool_folder(state.folder / "spool" if state is not None else None)
    if state is not None:
        loaded = state.load()  # before anything answers, the owner's key included
        print(f"moto state from {state.folder}: {', '.join(loaded) or 'none yet'}", flush=True)
    key, secret = os.environ.get(OWNER_KEY_ENV), os.environ.get(OWNER_SECRET_ENV)
    if key and secret:
        enable_access_control(key, secret)
        if state is not None:
            state.save(["iam"])  # the new key is the only one that opens the saved state
    app = OwnerOnly(
        DomainDispatcherApplication(create_backend_app),
        signed=bool(key and secret),
        state=state,
        presigned=presigned_urls.Verifier(key, secret) if key and secret else None,
    )
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
