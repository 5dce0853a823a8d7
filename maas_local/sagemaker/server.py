"""One HTTP server for both `sagemaker` (JSON 1.1) and `sagemaker-runtime` (REST-JSON)."""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from maas_local.http_server import BodyRefused, LocalHTTPServer, LocalRequestHandler
from maas_local.sagemaker import event_publisher, eventstream, protocol, rules, runtime, s3io
from maas_local.sagemaker.capture import Observed
from maas_local.sagemaker.control_plane import Context, ControlPlane
from maas_local.sagemaker.fleet import ModelReply, WorkerDown
from maas_local.sagemaker.protocol import AwsError
from maas_local.sagemaker.sigv4 import ACCESS_KEY_ENV, SECRET_KEY_ENV, Refusal, Verifier

log = logging.getLogger("maas_local.sagemaker")

REPO_ROOT = Path(__file__).resolve().parents[2]
# The policies file the local stack writes from the synthesised template (maas_local.stack).
POLICIES_ENV = "MAAS_IAM_POLICIES"
INVOCATION_PATH = re.compile(r"^/endpoints/([^/?]+)/invocations/?(\?.*)?$")
STREAM_PATH = re.compile(r"^/endpoints/([^/?]+)/invocations-response-stream/?(\?.*)?$")
MAX_PAYLOAD = 6 * 1024 * 1024  # SageMaker's real-time invocation limit
RUNTIME_HEADERS = {
    "ContentType": "Content-Type",
    "Accept": "Accept",
    "CustomAttributes": "X-Amzn-SageMaker-Custom-Attributes",
    "TargetVariant": "X-Amzn-SageMaker-Target-Variant",
    "InferenceId": "X-Amzn-SageMaker-Inference-Id",
}
# InvokeEndpointWithResponseStream names Accept differently (botocore's sagemaker-runtime model).
STREAM_HEADERS = {
    **RUNTIME_HEADERS,
    "Accept": "X-Amzn-SageMaker-Accept",
    "TargetContainerHostname": "X-Amzn-SageMaker-Target-Container-Hostname",
    "InferenceComponentName": "X-Amzn-SageMaker-Inference-Component",
    "SessionId": "X-Amzn-SageMaker-Session-Id",
}


class Emulator:
    """A running emulator: `url`, `control` (the state, for tests) and `shutdown()`."""

    def __init__(self, host: str, port: int, control: ControlPlane, verifier: Verifier) -> None:
        self.control = control
        self.httpd = EmulatorHTTPServer((host, port), control, verifier)
        self.host, self.port = host, self.httpd.server_port
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="sagemaker-http")

    def start(self) -> Emulator:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stops serving, then every worker and training process, then flushes events."""
        self.httpd.shutdown()
        self.httpd.server_close()
        self.control.shutdown()
        self.control.ctx.sink.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    root: str | Path = ".maas/sagemaker",
    event_sink: str | None = None,
    *,
    source_dir: str | Path | None = None,
    seed: int | None = None,
    time_scale: float | None = None,
    canary_error_threshold: float = 0.1,
    verifier: Verifier | None = None,
    iam_policies: str | Path | None = None,
) -> Emulator:
    """Starts the emulator on a background thread and returns it, already answering.

    It answers only requests signed with the credentials `verifier` holds, by default those
    the local stack issued at `up` (sigv4.ACCESS_KEY_ENV and SECRET_KEY_ENV)."""
    verifier = verifier or Verifier.from_env()
    if verifier is None:
        raise ValueError(
            "the emulator needs the credentials it accepts: set "
            f"{ACCESS_KEY_ENV} and {SECRET_KEY_ENV}"
        )
    policies = iam_policies or os.environ.get(POLICIES_ENV)
    # Jobs and endpoints then reach S3 (and KMS through it) only as their execution role may.
    s3io.use_roles(Path(policies) if policies else None)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    env_seed = os.environ.get("MAAS_SAGEMAKER_SEED")
    ctx = Context(
        root=root,
        region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1",
        sink=event_publisher.EventPublisher(event_publisher.validate_target(event_sink)),
        seed=seed if seed is not None else (int(env_seed) if env_seed else None),
        time_scale=time_scale
        if time_scale is not None
        else float(os.environ.get("MAAS_SAGEMAKER_TIME_SCALE", "0.1")),
        canary_error_threshold=canary_error_threshold,
    )
    source = Path(source_dir) if source_dir else REPO_ROOT / "training"
    control = ControlPlane(ctx, source.resolve())
    control.saved.restore()  # what a previous run of the emulator left, before any request
    return Emulator(host, port, control, verifier).start()


class EmulatorHTTPServer(LocalHTTPServer):
    def __init__(self, address: tuple[str, int], control: ControlPlane, verifier: Verifier) -> None:
        super().__init__(address, RequestHandler)
        self.control = control
        self.verifier = verifier


def _capture(
    endpoint: str,
    variant: str,
    reply: bytes,
    request_type: str,
    request_body: bytes,
    reply_type: str,
    params: dict[str, Any],
) -> None:
    """Hands a served invocation to the serving fleet's data capture, if its config has one."""
    serving = getattr(reply, "variant", None)
    capture = getattr(serving, "capture", None)
    if capture is None:
        return
    capture.observe(
        endpoint,
        variant,
        Observed(request_type, request_body),
        Observed(reply_type, bytes(reply)),
        inference_id=params.get("InferenceId"),
    )


class RequestHandler(LocalRequestHandler):
    """Routes each request to the control plane or the runtime; answers AWS's error shapes."""

    server: EmulatorHTTPServer
    server_version = "maas-sagemaker-local"
    logger = log

    def foreign_refusal(self, why: str) -> tuple[bytes, list[tuple[str, str]]]:
        err = AwsError("AccessDeniedException", why, 403)
        return protocol.json_error(err), [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("x-amzn-ErrorType", err.code),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ]

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") == "/_emulator/health":
            body = {
                "status": "ok",
                "service": "sagemaker",
                "trainingJobs": len(self.server.control.training.jobs),
                "endpoints": len(self.server.control.endpoints.endpoints),
            }
            self._send(200, protocol.to_json(body), "application/json")
        elif self.path.rstrip("/") == "/_emulator/endpoints":
            # Process ids and log paths: for the stack's owner only, as every other call.
            try:
                self._require_signature(b"")
            except AwsError as err:
                self._send(err.status, protocol.json_error(err), "application/json", err.code)
                return
            stats = self.server.control.endpoints.stats()
            self._send(200, protocol.to_json(stats), "application/json")
        else:
            self._send(404, b'{"message": "not found"}', "application/json")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        try:
            body = self.read_body(MAX_PAYLOAD)
        except BodyRefused as refused:
            message = "Request payload exceeds 6 MB" if refused.status == 413 else refused.reason
            err = AwsError("ValidationError", message, refused.status)
            self._send(err.status, protocol.rest_error(err), "application/json", err.code)
            return
        match = INVOCATION_PATH.match(self.path)
        streamed = STREAM_PATH.match(self.path)
        if match:
            self._runtime(unquote(match.group(1)), body)
        elif streamed:
            self._runtime_stream(unquote(streamed.group(1)), body)
        elif self.path in ("/", "/?") and "X-Amz-Target" in self.headers:
            self._control(self.headers["X-Amz-Target"], body)
        else:
            self._send(404, b'{"message": "not found"}', "application/json")

    def _require_signature(self, body: bytes) -> None:
        """Only callers holding the stack's credentials get in; others are refused as AWS
        refuses them (maas_local.sagemaker.sigv4)."""
        url = f"http://{self.headers.get('Host', '')}{self.path}"
        try:
            self.server.verifier.verify(self.command, url, dict(self.headers.items()), body)
        except Refusal as refused:
            raise AwsError(refused.code, refused.message, refused.status) from None

    def _control(self, target: str, body: bytes) -> None:
        content_type = "application/x-amz-json-1.1"
        try:
            self._require_signature(body)
            if not target.startswith(protocol.TARGET_PREFIX):
                raise AwsError("UnknownOperationException", f"Unknown target {target}")
            name = target.removeprefix(protocol.TARGET_PREFIX)
            operation = protocol.operation("sagemaker", name)
            result = self.server.control.call(name, protocol.parse_request(operation, body))
            protocol.check_response(operation, result)
            self._send(200, protocol.to_json(result), content_type)
        except AwsError as err:
            self._send(err.status, protocol.json_error(err), content_type, err.code)
        except Exception as exc:  # a bug of ours: answer as AWS does, and log it
            log.exception("%s failed", target)
            failure = AwsError("InternalFailure", f"{type(exc).__name__}: {exc}", 500)
            self._send(500, protocol.json_error(failure), content_type, failure.code)

    def _runtime_params(
        self, endpoint: str, body: bytes, operation_name: str, headers: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Signature, then the operation's input checks; returns (params, headers to forward)."""
        self._require_signature(body)
        params: dict[str, Any] = {"EndpointName": endpoint, "Body": body}
        for member, header in headers.items():
            if self.headers.get(header):
                params[member] = self.headers[header]
        operation = protocol.operation("sagemaker-runtime", operation_name)
        try:
            protocol.check(params, operation.input_shape)
        except AwsError as err:
            raise AwsError("ValidationError", err.message, 400) from err
        # Lengths and patterns too (CustomAttributes: at most 1024 ASCII characters).
        constrained = rules.constraint_errors(
            {k: v for k, v in params.items() if k != "Body"}, operation.input_shape
        )
        if constrained is not None:
            raise AwsError("ValidationError", constrained.message, 400)
        forwarded = {
            "Content-Type": params.get("ContentType", "application/octet-stream"),
            "Accept": params.get("Accept", "*/*"),
        }
        if "CustomAttributes" in params:
            forwarded["X-Amzn-SageMaker-Custom-Attributes"] = params["CustomAttributes"]
        return params, forwarded

    def _runtime_stream(self, endpoint: str, body: bytes) -> None:
        """InvokeEndpointWithResponseStream: the model's body as PayloadPart events, as it comes.
        Errors before the first byte are the runtime's JSON errors; after it, error events."""
        operation = "InvokeEndpointWithResponseStream"
        try:
            params, forwarded = self._runtime_params(endpoint, body, operation, STREAM_HEADERS)
            stream = runtime.open_stream(
                self.server.control.endpoints,
                endpoint,
                body,
                forwarded,
                params.get("TargetVariant"),
            )
        except AwsError as err:
            self._send(err.status, protocol.rest_error(err), "application/json", err.code)
            return
        except Exception as exc:  # a bug of ours
            log.exception("%s %s failed", operation, endpoint)
            failure = AwsError("InternalFailure", f"{type(exc).__name__}: {exc}", 500)
            self._send(500, protocol.rest_error(failure), "application/json", failure.code)
            return
        headers = {
            "X-Amzn-SageMaker-Content-Type": stream.content_type,
            "x-Amzn-Invoked-Production-Variant": stream.variant.name,
        }
        if stream.custom_attributes:
            headers[RUNTIME_HEADERS["CustomAttributes"]] = stream.custom_attributes
        self.send_response(200)
        for name, value in [
            ("Content-Type", eventstream.CONTENT_TYPE),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            ("Transfer-Encoding", "chunked"),
            *headers.items(),
        ]:
            self.send_header(name, value)
        self.end_headers()
        received: list[bytes] = []
        try:
            try:
                for chunk in stream.chunks():
                    received.append(chunk)
                    self._write_chunk(eventstream.payload_part(chunk))
            except TimeoutError:
                self._write_chunk(
                    eventstream.model_stream_error(
                        "The model did not finish its response in time.",
                        "ModelInvocationTimeExceeded",
                    )
                )
            except WorkerDown as exc:
                self._write_chunk(eventstream.model_stream_error(str(exc), "StreamBroken"))
            except Exception as exc:  # a bug of ours, after the status line went out
                log.exception("%s %s failed mid-stream", operation, endpoint)
                self._write_chunk(eventstream.internal_stream_failure(f"{type(exc).__name__}"))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the caller went away; the worker's connection is closed already
            self.close_connection = True
            return
        reply = ModelReply.of(b"".join(received), stream.custom_attributes, stream.variant)
        _capture(
            endpoint,
            stream.variant.name,
            reply,
            forwarded["Content-Type"],
            body,
            stream.content_type,
            params,
        )

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _runtime(self, endpoint: str, body: bytes) -> None:
        try:
            params, forwarded = self._runtime_params(
                endpoint, body, "InvokeEndpoint", RUNTIME_HEADERS
            )
            data, content_type, variant = runtime.invoke(
                self.server.control.endpoints,
                endpoint,
                body,
                forwarded,
                params.get("TargetVariant"),
            )
            headers = {"x-Amzn-Invoked-Production-Variant": variant}
            # What the model server set in its response header, SageMaker returns as the
            # response's CustomAttributes.
            custom_attributes = getattr(data, "custom_attributes", None)
            if custom_attributes:
                headers[RUNTIME_HEADERS["CustomAttributes"]] = custom_attributes
            self._send(200, data, content_type, extra=headers)
            _capture(endpoint, variant, data, forwarded["Content-Type"], body, content_type, params)
        except AwsError as err:
            self._send(err.status, protocol.rest_error(err), "application/json", err.code)
        except Exception as exc:  # a bug of ours
            log.exception("InvokeEndpoint %s failed", endpoint)
            failure = AwsError("InternalFailure", f"{type(exc).__name__}: {exc}", 500)
            self._send(500, protocol.rest_error(failure), "application/json", failure.code)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        error_type: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = [("Content-Type", content_type), ("x-amzn-RequestId", str(uuid.uuid4()))]
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        headers += list((extra or {}).items())
        self.send_bytes(status, body, headers)
