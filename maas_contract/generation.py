"""The text-generation container contract: SageMaker's LMI (DJL Serving) rolling-batch schema.

A generation version is served by the Large Model Inference container (``djl-inference``
images, tags with ``lmi``) with continuous ("rolling") batching. The handler, the infra and
the local emulator all speak to it through this module. Stdlib only.

Sources:
- Request/response schema (rolling batch), GenerationParameters, Token, Details, errors:
  https://docs.djl.ai/docs/serving/serving/docs/lmi/user_guides/lmi_input_output_schema.html
  (LMI handlers Inference API Schema, v0.31.0 text).
- Container configuration and its environment-variable spelling (``option.x`` ->
  ``OPTION_X``; server keys such as ``job_queue_size`` -> ``SERVING_JOB_QUEUE_SIZE``):
  https://docs.djl.ai/docs/serving/serving/docs/lmi/deployment_guide/configurations.html
- Image repository and tags: sagemaker-core's ``image_uri_config/djl-lmi.json``
  (``repository: djl-inference``, ``tag_prefix: 0.38.0-lmi29.0.0-cu130``), i.e.
  ``sagemaker.core.image_uris.retrieve(framework="djl-lmi", ...)``.

Token counts (usage needs prompt_tokens and completion_tokens):
- completion tokens: ``details.generated_tokens`` (non-streamed and on the last streamed line;
  needs ``parameters.details = true``). Without details, the number of streamed lines.
- prompt tokens: the documented field is ``details.prefill`` (one Token per prompt token),
  returned when ``parameters.decoder_input_details = true``. The schema page says that
  parameter is "only for vllm, cannot be used with streaming": for a streamed response the
  documentation gives no prompt-token count. The container's own jsonlines formatter does add
  ``details.prefill`` to the last streamed line when the parameter is set, and the local
  emulator does the same; a caller that must not rely on that counts the prompt itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

# Content types the container answers with (schema page, "Response Schema").
CONTENT_TYPE_JSON = "application/json"
CONTENT_TYPE_JSONLINES = "application/jsonlines"

# ECR repository of the LMI images and the tag marker (sagemaker-core djl-lmi.json).
LMI_REPOSITORY = "djl-inference"
LMI_TAG_MARKER = "lmi"

# Details.finish_reason values: "length", "eos_token", "stop_sequence" (Details table) and
# "error" (Error Responses).
FINISH_LENGTH = "length"
FINISH_EOS = "eos_token"
FINISH_STOP = "stop_sequence"
FINISH_ERROR = "error"
FINISH_REASONS = frozenset({FINISH_LENGTH, FINISH_EOS, FINISH_STOP, FINISH_ERROR})

# GenerationParameters defaults (schema page).
DEFAULT_MAX_NEW_TOKENS = 30
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_P = 1.0
# Documented parameters common to every rolling-batch backend, plus the vLLM extras the
# emulator understands. Anything else is refused by the emulator.
COMMON_PARAMETERS = frozenset(
    {
        "do_sample",
        "seed",
        "temperature",
        "repetition_penalty",
        "top_k",
        "top_p",
        "max_new_tokens",
        "details",
        "return_full_text",
        "stop_sequences",
        "decoder_input_details",
    }
)
VLLM_PARAMETERS = frozenset({"stop_token_ids", "ignore_eos_token", "include_stop_str_in_output"})

# Validation errors before inference: {"error": "<details>", "code": 424} (Error Responses).
VALIDATION_ERROR_CODE = 424

# Container options (configurations page). Values are strings, as CreateModel Environment is.
ENV_ROLLING_BATCH = "OPTION_ROLLING_BATCH"
ENV_MAX_ROLLING_BATCH_SIZE = "OPTION_MAX_ROLLING_BATCH_SIZE"
ENV_MAX_MODEL_LEN = "OPTION_MAX_MODEL_LEN"  # vLLM user guide: max context (prompt + output)
ENV_DTYPE = "OPTION_DTYPE"
ENV_JOB_QUEUE_SIZE = "SERVING_JOB_QUEUE_SIZE"  # job_queue_size, default 1000
ENV_MODEL_ID = "HF_MODEL_ID"  # unset: the container serves /opt/ml/model (model.tar.gz)
DEFAULT_MAX_ROLLING_BATCH_SIZE = 256
DEFAULT_JOB_QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Token:
    """One generated (or prompt) token: ``{"id", "text", "log_prob"}``."""

    id: int
    text: str
    log_prob: float | None = None
    special_token: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "text": self.text, "log_prob": self.log_prob}
        if self.special_token is not None:
            body["special_token"] = self.special_token
        return body


@dataclass(frozen=True)
class Generated:
    """A non-streamed response. Counts are None where the response does not carry them."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None  # len(details.prefill); needs decoder_input_details
    completion_tokens: int | None  # details.generated_tokens; needs details
    tokens: tuple[Token, ...] = field(default=())


@dataclass(frozen=True)
class StreamToken:
    """One streamed token (every line's ``token``, except the error placeholder)."""

    token: Token


@dataclass(frozen=True)
class StreamEnd:
    """The last streamed line's ``generated_text`` and ``details``, after its StreamToken."""

    generated_text: str
    finish_reason: str | None
    prompt_tokens: int | None  # len(details.prefill), when present
    completion_tokens: int | None  # details.generated_tokens, else the count of streamed tokens


class GenerationResponseError(ValueError):
    """A body that is not the documented LMI response (or is its validation error)."""


def build_request(
    prompt: str,
    *,
    max_new_tokens: int | None = None,
    temperature: float | None = None,
    top_p: float | None = None,
    stop: list[str] | None = None,
    seed: int | None = None,
    stream: bool = False,
    details: bool = True,
    decoder_input_details: bool = False,
) -> dict[str, Any]:
    """The rolling-batch request body ``{"inputs", "parameters", "stream"}``.

    ``temperature == 0`` (or None) means greedy decoding: ``do_sample`` is false and no
    temperature is sent (LMI <= 0.31 needs ``do_sample: true`` to sample at all).
    """
    parameters: dict[str, Any] = {}
    if max_new_tokens is not None:
        parameters["max_new_tokens"] = max_new_tokens
    sample = temperature is not None and temperature > 0
    parameters["do_sample"] = sample
    if sample:
        parameters["temperature"] = temperature
    if top_p is not None:
        parameters["top_p"] = top_p
    if stop:
        parameters["stop_sequences"] = list(stop)
    if seed is not None:
        parameters["seed"] = seed
    if details:
        parameters["details"] = True
    if decoder_input_details:
        parameters["decoder_input_details"] = True
    return {"inputs": prompt, "parameters": parameters, "stream": stream}


def _token(raw: Any) -> Token:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), int):
        raise GenerationResponseError(f"not an LMI Token: {raw!r}")
    return Token(
        id=raw["id"],
        text=str(raw.get("text") or ""),
        log_prob=raw.get("log_prob"),
        special_token=raw.get("special_token"),
    )


def _prefill_count(details: dict[str, Any]) -> int | None:
    prefill = details.get("prefill")
    return len(prefill) if isinstance(prefill, list) else None


def parse_response(body: bytes) -> Generated:
    """Parse a non-streamed response (``application/json``).

    Raises GenerationResponseError for the documented validation error body
    ``{"error", "code"}`` and for anything that is not ``{"generated_text", ...}``.
    """
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise GenerationResponseError(f"response is not JSON: {exc}") from exc
    if isinstance(doc, list) and len(doc) == 1:  # TGI-compatible mode wraps it in an array
        doc = doc[0]
    if not isinstance(doc, dict) or "generated_text" not in doc:
        raise GenerationResponseError(f"not an LMI generation response: {doc!r}"[:300])
    details = doc.get("details") or {}
    # The schema page's example spells "finish reason" with a space once; accept both.
    finish = details.get("finish_reason", details.get("finish reason"))
    generated = details.get("generated_tokens")
    tokens = tuple(_token(t) for t in details.get("tokens") or ())
    return Generated(
        text=str(doc["generated_text"]),
        finish_reason=finish,
        prompt_tokens=_prefill_count(details),
        completion_tokens=generated if isinstance(generated, int) else None,
        tokens=tokens,
    )


def _stream_events(line: bytes, streamed: int) -> list[StreamToken | StreamEnd]:
    text = line.strip()
    if text.startswith(b"data:"):  # option.output_formatter=sse prefixes each line
        text = text[5:].strip()
    if not text:
        return []
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise GenerationResponseError(f"stream line is not JSON: {text[:200]!r}") from exc
    if not isinstance(doc, dict) or "token" not in doc:
        raise GenerationResponseError(f"not an LMI stream line: {doc!r}"[:300])
    token = _token(doc["token"])
    details = doc.get("details") or {}
    is_error = details.get("finish_reason") == FINISH_ERROR
    events: list[StreamToken | StreamEnd] = []
    if not (is_error and token.id == -1):
        events.append(StreamToken(token))
        streamed += 1
    if doc.get("generated_text") is not None or details:
        generated = details.get("generated_tokens")
        events.append(
            StreamEnd(
                generated_text=str(doc.get("generated_text") or ""),
                finish_reason=details.get("finish_reason"),
                prompt_tokens=_prefill_count(details),
                completion_tokens=generated if isinstance(generated, int) else streamed,
            )
        )
    return events


def iter_stream(chunks: Iterable[bytes]) -> Iterator[StreamToken | StreamEnd]:
    """Parse a streamed response (``application/jsonlines``) from arbitrary byte chunks.

    Lines may be split anywhere across chunks (a PayloadPart carries bytes, not lines), even
    inside a multi-byte UTF-8 character: bytes are buffered up to each newline before decoding.
    Yields a StreamToken per line, then a StreamEnd for the final line.
    """
    buffer = b""
    streamed = 0
    for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            for event in _stream_events(line, streamed):
                streamed += isinstance(event, StreamToken)
                yield event
    for event in _stream_events(buffer, streamed):
        yield event


def is_generation_container(image_uri: str, environment: dict[str, str] | None = None) -> bool:
    """True for an LMI image: ``<account>.dkr.ecr.<region>.amazonaws.com/djl-inference:<tag>``
    whose tag contains ``lmi`` (e.g. ``0.38.0-lmi29.0.0-cu130``), or a ``djl-inference`` image
    configured for rolling batch through ``OPTION_ROLLING_BATCH``.
    """
    path = image_uri.split("/", 1)[-1]
    repository, _, tag = path.partition(":")
    repository = repository.split("@", 1)[0]
    if repository.rsplit("/", 1)[-1] != LMI_REPOSITORY:
        return False
    if LMI_TAG_MARKER in tag.lower():
        return True
    rolling = (environment or {}).get(ENV_ROLLING_BATCH, "").lower()
    return rolling not in ("", "disable")


def container_environment(
    *,
    max_rolling_batch_size: int = 32,
    max_model_len: int | None = None,
    job_queue_size: int | None = None,
    rolling_batch: str = "vllm",
    dtype: str | None = None,
) -> dict[str, str]:
    """CreateModel ``Environment`` for a generation version served from ``model.tar.gz``.

    The model folder comes from ModelDataUrl (extracted to /opt/ml/model), so no
    ``HF_MODEL_ID`` is set. ``max_rolling_batch_size`` bounds the running batch;
    ``job_queue_size`` bounds the requests waiting (the container rejects requests beyond it).
    """
    env = {
        ENV_ROLLING_BATCH: rolling_batch,
        ENV_MAX_ROLLING_BATCH_SIZE: str(max_rolling_batch_size),
    }
    if max_model_len is not None:
        env[ENV_MAX_MODEL_LEN] = str(max_model_len)
    if job_queue_size is not None:
        env[ENV_JOB_QUEUE_SIZE] = str(job_queue_size)
    if dtype is not None:
        env[ENV_DTYPE] = dtype
    return env
