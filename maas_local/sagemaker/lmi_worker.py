"""A generation variant's model server, in its own process, as the LMI container runs it.

`python -m maas_local.sagemaker.lmi_worker --model-dir DIR --ready-file FILE` loads the
Hugging Face folder that model.tar.gz extracted to (the container's /opt/ml/model) into a
continuous-batching engine (generation_engine.py) and serves `GET /ping` and
`POST /invocations` on 127.0.0.1, like model_worker.py (same token, same ready file, same exit
when stdin closes). It reads the container's options from the Model's `Environment`:
OPTION_MAX_ROLLING_BATCH_SIZE (default 256), SERVING_JOB_QUEUE_SIZE (default 1000),
OPTION_MAX_MODEL_LEN and OPTION_DTYPE.

The request and response schema is LMI's rolling-batch schema (maas_contract.generation):
`{"inputs", "parameters", "stream"}`; non-streamed answers are `application/json`
`{"generated_text", "details"?}`, streamed ones `application/jsonlines`, one `{"token": ...}`
line per token as it is produced, the last one with `generated_text` (and `details`).
A payload that fails validation gets 424 `{"error", "code": 424}`; a full queue gets 503.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from maas_contract import generation as lmi
from maas_local.http_server import BodyRefused, LocalRequestHandler
from maas_local.sagemaker.generation_engine import (
    Finished,
    GenerationEngine,
    InvalidRequest,
    QueueFull,
    SamplingParams,
    TokenEvent,
)
from maas_local.sagemaker.model_worker import TOKEN_HEADER, serve_worker

_UNSUPPORTED = {"n": 1, "best_of": 1, "num_beams": 1}  # documented, non-streaming only; refused


def engine_from_environment(model_dir: Path, environ: Mapping[str, str]) -> GenerationEngine:
    def number(name: str, default: int | None) -> int | None:
        value = environ.get(name)
        return int(value) if value else default

    return GenerationEngine(
        model_dir,
        max_batch_size=number(lmi.ENV_MAX_ROLLING_BATCH_SIZE, lmi.DEFAULT_MAX_ROLLING_BATCH_SIZE)
        or 1,
        max_queue=number(lmi.ENV_JOB_QUEUE_SIZE, lmi.DEFAULT_JOB_QUEUE_SIZE) or 0,
        max_model_len=number(lmi.ENV_MAX_MODEL_LEN, None),
        dtype=environ.get(lmi.ENV_DTYPE) or None,
    )


def parse_request(body: bytes) -> tuple[str, dict[str, Any], SamplingParams, bool]:
    """(prompt, parameters, sampling, stream) or InvalidRequest with the reason."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidRequest(f"Input is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), str):
        raise InvalidRequest("'inputs' is required and must be a string")
    parameters = doc.get("parameters") or {}
    stream = doc.get("stream", False)
    if not isinstance(parameters, dict) or not isinstance(stream, bool):
        raise InvalidRequest("'parameters' must be an object and 'stream' a boolean")
    known = lmi.COMMON_PARAMETERS | lmi.VLLM_PARAMETERS | set(_UNSUPPORTED)
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise InvalidRequest(f"unsupported generation parameters: {unknown}")
    for name, only in _UNSUPPORTED.items():
        if parameters.get(name, only) != only:
            raise InvalidRequest(f"'{name}' other than {only} is not supported")
    stop = parameters.get("stop_sequences") or ()
    if isinstance(stop, str) or not all(isinstance(s, str) for s in stop):
        raise InvalidRequest("'stop_sequences' must be a list of strings")
    try:
        sampling = SamplingParams(
            max_new_tokens=_int(parameters, "max_new_tokens", lmi.DEFAULT_MAX_NEW_TOKENS),
            do_sample=bool(parameters.get("do_sample", False)),
            temperature=float(parameters.get("temperature", lmi.DEFAULT_TEMPERATURE)),
            top_p=float(parameters.get("top_p", lmi.DEFAULT_TOP_P)),
            top_k=_int(parameters, "top_k", 0),
            repetition_penalty=float(parameters.get("repetition_penalty", 1.0)),
            stop=tuple(stop),
            seed=_int(parameters, "seed", None),
            ignore_eos=bool(parameters.get("ignore_eos_token", False)),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"bad generation parameter: {exc}") from exc
    sampling.check()
    return doc["inputs"], parameters, sampling, stream


def _int(parameters: dict[str, Any], name: str, default: int | None) -> Any:
    value = parameters.get(name, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequest(f"'{name}' must be an integer")
    return value


def _token(event: TokenEvent) -> dict[str, Any]:
    return lmi.Token(event.id, event.text, event.log_prob).as_dict()


def _details(
    finished: Finished, prompt: str, parameters: dict[str, Any], engine: GenerationEngine, *,
    tokens: bool,
) -> dict[str, Any]:  # fmt: skip
    details: dict[str, Any] = {
        "finish_reason": finished.finish_reason,
        "generated_tokens": finished.generated_tokens,
        "inputs": prompt,
    }
    if tokens:
        details["tokens"] = [_token(t) for t in finished.tokens]
    if parameters.get("decoder_input_details"):
        details["prefill"] = [
            {"id": i, "text": engine.tokenizer.decode([i]), "log_prob": None}
            for i in finished.prompt_token_ids
        ]
    return details


def _full_text(prompt: str, finished: Finished, parameters: dict[str, Any]) -> str:
    prefix = prompt if parameters.get("return_full_text") else ""
    return prefix + finished.generated_text


def json_response(
    engine: GenerationEngine, prompt: str, parameters: dict[str, Any], finished: Finished
) -> dict[str, Any]:
    """The non-streamed body (schema page, "Response Schema")."""
    if finished.finish_reason == lmi.FINISH_ERROR:
        error = {"finish_reason": "error", "generated_tokens": None, "inputs": None}
        return {"generated_text": "", "details": {**error, "tokens": None}}
    body: dict[str, Any] = {"generated_text": _full_text(prompt, finished, parameters)}
    if parameters.get("details"):
        body["details"] = _details(finished, prompt, parameters, engine, tokens=True)
    return body


def stream_lines(engine: GenerationEngine, prompt: str, parameters: dict[str, Any], stream):
    """The streamed body, one JSON line per token as the engine produces it."""
    last: TokenEvent | None = None
    for event in stream:
        if isinstance(event, TokenEvent):
            if last is not None:
                yield _line({"token": _token(last)})
            last = event
            continue
        finished: Finished = event
        if finished.finish_reason == lmi.FINISH_ERROR:
            if last is not None:
                yield _line({"token": _token(last)})
            error_token = {"id": -1, "text": "", "log_prob": -1, "special_token": True}
            error_details = {"finish_reason": "error", "generated_tokens": None, "inputs": None}
            yield _line({"token": error_token, "generated_text": "", "details": error_details})
            return
        assert last is not None
        final: dict[str, Any] = {
            "token": _token(last),
            "generated_text": _full_text(prompt, finished, parameters),
        }
        if parameters.get("details"):
            final["details"] = _details(finished, prompt, parameters, engine, tokens=False)
        yield _line(final)


def _line(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False) + "\n").encode()


def make_handler(engine: GenerationEngine, token: str) -> type[LocalRequestHandler]:
    class Invocations(LocalRequestHandler):
        def _authorized(self) -> bool:
            if hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), token):
                return True
            self._reply(403, {"message": "forbidden"})
            return False

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self._authorized():
                self.send_bytes(200 if self.path == "/ping" else 404, b"{}")

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            if not self._authorized():
                return
            if self.path != "/invocations":
                self._reply(404, {"message": "not found"})
                return
            try:
                body = self.read_body()
                prompt, parameters, sampling, streamed = parse_request(body)
                stream = engine.submit(prompt, sampling)
            except BodyRefused as refused:
                self._reply(refused.status, {"message": refused.reason})
                return
            except InvalidRequest as exc:
                code = lmi.VALIDATION_ERROR_CODE
                self._reply(code, {"error": str(exc), "code": code})
                return
            except QueueFull as exc:
                message = f"Worker queue capacity exceeded for model: model ({exc})"
                self._reply(503, {"code": 503, "type": "WlmCapacityException", "message": message})
                return
            if not streamed:
                finished = stream.result()
                self._reply(200, json_response(engine, prompt, parameters, finished))
                return
            self._stream(stream_lines(engine, prompt, parameters, stream), stream)

        def _stream(self, lines, stream) -> None:
            self.send_response(200)
            self.send_header("Content-Type", lmi.CONTENT_TYPE_JSONLINES)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for line in lines:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
            except OSError:  # the caller went away: free its place in the batch
                stream.cancel()
                self.close_connection = True

        def _reply(self, status: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc, ensure_ascii=False).encode()
            self.send_bytes(status, body, [("Content-Type", lmi.CONTENT_TYPE_JSON)])

    return Invocations


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    serve_worker(
        __doc__ or "",
        lambda model_dir: engine_from_environment(model_dir, os.environ),
        make_handler,
        "generation server",
    )


if __name__ == "__main__":
    main()
