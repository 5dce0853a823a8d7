"""The LMI generation contract against the examples of the LMI schema page.

Fixtures: tests/fixtures/lmi (SOURCES.md names the page each came from):
https://docs.djl.ai/docs/serving/serving/docs/lmi/user_guides/lmi_input_output_schema.html
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas_contract import generation as lmi

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lmi"


def test_build_request_has_the_documented_fields_for_sampling() -> None:
    body = lmi.build_request(
        "What is Deep Learning?",
        max_new_tokens=256,
        temperature=0.7,
        top_p=0.9,
        stop=["\n"],
        seed=3,
        stream=True,
    )
    documented = json.loads((FIXTURES / "request.json").read_text())
    assert set(body) == set(documented) == {"inputs", "parameters", "stream"}
    assert body["parameters"] == {
        "max_new_tokens": 256,
        "do_sample": True,  # LMI <= 0.31 samples only with do_sample
        "temperature": 0.7,
        "top_p": 0.9,
        "stop_sequences": ["\n"],
        "seed": 3,
        "details": True,
    }
    assert set(body["parameters"]) <= lmi.COMMON_PARAMETERS


def test_build_request_with_temperature_zero_is_greedy() -> None:
    body = lmi.build_request("hi", temperature=0.0, stream=False)
    assert body["parameters"]["do_sample"] is False
    assert "temperature" not in body["parameters"]


def test_parse_response_reads_the_documented_example() -> None:
    parsed = lmi.parse_response((FIXTURES / "response.json").read_bytes())
    assert parsed.text == "Deep Learning is a really cool field"
    assert parsed.finish_reason == "length"
    assert parsed.completion_tokens == 8
    assert parsed.prompt_tokens is None  # no prefill without decoder_input_details
    assert parsed.tokens == (lmi.Token(763, " In", -3.977081060409546),)


def test_parse_response_counts_prompt_tokens_from_prefill() -> None:
    body = {
        "generated_text": "x",
        "details": {
            "finish_reason": "eos_token",
            "generated_tokens": 1,
            "inputs": "a b",
            "tokens": [],
            "prefill": [{"id": 1, "text": "a", "log_prob": None}, {"id": 2, "text": " b"}],
        },
    }
    parsed = lmi.parse_response(json.dumps(body).encode())
    assert (parsed.prompt_tokens, parsed.completion_tokens) == (2, 1)


def test_parse_response_refuses_the_validation_error_body() -> None:
    with pytest.raises(lmi.GenerationResponseError):
        lmi.parse_response((FIXTURES / "validation_error.json").read_bytes())


@pytest.mark.parametrize("size", [1, 2, 7, 1000])
def test_iter_stream_reassembles_lines_split_across_chunks(size: int) -> None:
    raw = (FIXTURES / "stream.jsonl").read_bytes()
    events = list(lmi.iter_stream(raw[i : i + size] for i in range(0, len(raw), size)))
    tokens = [e.token.text for e in events if isinstance(e, lmi.StreamToken)]
    assert tokens == ["Deep ", " Learning", " is", " field."]
    assert events[-1] == lmi.StreamEnd(
        generated_text="Deep Learning is a really cool field.",
        finish_reason="length",
        prompt_tokens=None,
        completion_tokens=100,
    )


def test_iter_stream_keeps_multibyte_characters_split_across_chunks() -> None:
    line = json.dumps({"token": {"id": 1, "text": "東京🙂", "log_prob": -1.0}}, ensure_ascii=False)
    raw = line.encode() + b"\n"
    events = list(lmi.iter_stream(raw[i : i + 1] for i in range(len(raw))))
    assert events == [lmi.StreamToken(lmi.Token(1, "東京🙂", -1.0))]


def test_iter_stream_reports_the_documented_error_line_as_an_error_end() -> None:
    events = list(lmi.iter_stream([(FIXTURES / "stream_error.jsonl").read_bytes()]))
    assert len(events) == 1 and isinstance(events[0], lmi.StreamEnd)
    assert events[0].finish_reason == "error"


def test_iter_stream_refuses_a_line_that_is_not_lmi() -> None:
    with pytest.raises(lmi.GenerationResponseError):
        list(lmi.iter_stream([b'{"outputs": ["x"]}\n']))


def test_lmi_images_are_generation_containers() -> None:
    # The table sagemaker.core.image_uris.retrieve(framework="djl-lmi") reads, read directly
    # (importing sagemaker.core takes seconds).
    import importlib.util

    spec = importlib.util.find_spec("sagemaker")
    assert spec and spec.submodule_search_locations
    table = Path(spec.submodule_search_locations[0]) / "core/image_uri_config/djl-lmi.json"
    versions = json.loads(table.read_text())["versions"]
    for version in versions.values():
        account = version["registries"]["us-east-1"]
        uri = (
            f"{account}.dkr.ecr.us-east-1.amazonaws.com/"
            f"{version['repository']}:{version['tag_prefix']}"
        )
        assert lmi.is_generation_container(uri, {}), uri
    assert lmi.is_generation_container(
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.31.0-lmi13.0.0-cu124"
    )
    pytorch = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"
    assert not lmi.is_generation_container(pytorch, {"OPTION_ROLLING_BATCH": "vllm"})


def test_container_environment_uses_the_documented_option_names() -> None:
    env = lmi.container_environment(max_rolling_batch_size=8, max_model_len=128, job_queue_size=4)
    assert env == {
        "OPTION_ROLLING_BATCH": "vllm",
        "OPTION_MAX_ROLLING_BATCH_SIZE": "8",
        "OPTION_MAX_MODEL_LEN": "128",
        "SERVING_JOB_QUEUE_SIZE": "4",
    }
    assert all(isinstance(v, str) for v in env.values())
