"""Handler overhead, as ratios measured in one run on this machine.

1. Warm predict: the predict Lambda handler (routing, validation, registry lookup from its
   cache, metrics, error mapping) versus a bare boto3 `invoke_endpoint`, both against the same
   local sagemaker-runtime stub. Goal: <= 1.5x at p50.
2. Cold import: `import handlers.predict.routes` versus a bare `import boto3`, each in fresh
   subprocesses, for information only: the predict function runs from a SnapStart snapshot,
   so its import runs once per published version, not once per cold start. Beside it, the
   libraries the handler requires imported bare (REQUIRED_LIBRARIES).

    python -m bench.handler_overhead        # prints a table
    python -m bench.handler_overhead --json # the rows, as bench/run_all.py reads them
    from bench.handler_overhead import run  # rows for bench/run_all.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARM_CALLS = 400
COLD_RUNS = 11
BODY = json.dumps({"instances": [[0.1] * 64]})
PREDICT = "handlers.predict.routes"


class _Runtime(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as SageMaker's endpoint does
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (~40 ms)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"predictions": [[0.1, 0.9]]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Amzn-Invoked-Production-Variant", "v1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "iqr": statistics.quantiles(ordered, n=4)[2] - statistics.quantiles(ordered, n=4)[0],
    }


def _environment(stub_url: str) -> None:
    from maas_contract.settings import HandlerSettings

    settings = HandlerSettings(
        registry_table="bench-registry",
        resource_prefix="bench",
        artifact_bucket="bench-artifacts",
        data_bucket="bench-data",
        capture_bucket="bench-capture",
        kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/bench",
        sagemaker_role_arn="arn:aws:iam::123456789012:role/bench",
        training_image_uri="bench/training",
        inference_image_uri="bench/inference-gpu",
        inference_image_uri_cpu="bench/inference-cpu",
        source_dir_s3_uri="s3://bench-artifacts/code/sourcedir.tar.gz",
        training_instance_type="ml.g5.xlarge",
        metrics_namespace="bench",
    )
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": stub_url,
            **settings.to_env(),
            "POWERTOOLS_TRACE_DISABLED": "1",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )


def predict_event(model: str, body: str) -> dict[str, Any]:
    """An API Gateway REST proxy event for POST /v1/models/{model}/predict, as the gateway
    passes it after the authorizer let an invoke-scoped token through."""
    resource = "/v1/models/{model}/predict"
    return {
        "resource": resource,
        "path": f"/v1/models/{model}/predict",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"model": model},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": "POST",
            "path": f"/prod/v1/models/{model}/predict",
            "stage": "prod",
            "requestId": "bench-request",
            "authorizer": {"claims": {"scope": "maas/invoke"}},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _time(fn: Any, calls: int) -> list[float]:
    for _ in range(20):  # warm both paths: connections, caches, lazy imports
        fn()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def warm_predict(calls: int = WARM_CALLS) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Runtime)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _environment(f"http://127.0.0.1:{server.server_address[1]}")
    import contextlib
    import io

    import boto3

    from handlers.predict import routes as predict
    from handlers.predict import service as predict_service
    from handlers.shared import aws
    from maas_local.lambda_context import LambdaContext

    # The registry lookup is served from the handler's per-process cache when warm.
    predict_service._model_cache["demo"] = (
        time.monotonic() + 3600,
        {"endpoint_name": "bench-demo", "latest_version": 1},
    )
    event = predict_event("demo", BODY)
    context = LambdaContext("bench-predict", timeout_s=3600.0)
    bare = boto3.session.Session().client(
        "sagemaker-runtime", config=aws._config("sagemaker-runtime")
    )

    def through_handler() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # EMF lines go to stdout
            assert predict.handler(event, context)["statusCode"] == 200

    def bare_invoke() -> None:
        reply = bare.invoke_endpoint(
            EndpointName="bench-demo",
            Body=BODY.encode(),
            ContentType="application/json",
            Accept="application/json",
        )
        json.loads(reply["Body"].read())  # the handler reads and decodes the body too

    try:
        # Interleave the two in blocks so drift in machine load hits both alike.
        handler_us: list[float] = []
        bare_us: list[float] = []
        for _ in range(4):
            bare_us += _time(bare_invoke, calls // 4)
            handler_us += _time(through_handler, calls // 4)
    finally:
        server.shutdown()
        server.server_close()
    return {"handler": _percentiles(handler_us), "bare": _percentiles(bare_us)}


def _import_seconds(statement: str) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # any value, even "0", would stop .pyc writes
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    return float(out.strip().splitlines()[-1])


# What the predict handler cannot do without, imported bare with default settings and no maas
# code: the Powertools event handler with validation, Logger and Metrics, pydantic (which
# they pull in), and botocore's client. The handler's own cost is what it adds to this.
REQUIRED_LIBRARIES = (
    "import aws_lambda_powertools.event_handler.api_gateway,"
    " aws_lambda_powertools.event_handler.middlewares.openapi_validation,"
    " aws_lambda_powertools.logging, aws_lambda_powertools.metrics,"
    " botocore.session, botocore.client"
)


def cold_import(runs: int = COLD_RUNS) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"handler": [], "bare": [], "floor": []}
    _import_seconds(f"import {PREDICT}")  # compile .pyc once, outside the samples
    for _ in range(runs):  # alternate, so all see the same page-cache and load conditions
        samples["bare"].append(_import_seconds("import boto3"))
        samples["floor"].append(_import_seconds(REQUIRED_LIBRARIES))
        samples["handler"].append(_import_seconds(f"import {PREDICT}"))
    return samples


def run() -> list[dict[str, Any]]:
    """Rows: name, ratio, goal, both raw figures and their spread."""
    warm = warm_predict()
    cold = cold_import()
    rows = []
    for stat in ("p50", "p99"):
        h, b = warm["handler"][stat], warm["bare"][stat]
        rows.append(
            {
                "bench": f"warm predict {stat}",
                "ratio": h / b,
                "goal": 1.5 if stat == "p50" else None,
                "subject": "predict handler",
                "unit": "us",
                "handler": h,
                "baseline": b,
                "baseline_name": "boto3 invoke_endpoint",
                "spread": (
                    f"IQR handler {warm['handler']['iqr']:.0f} us,"
                    f" bare {warm['bare']['iqr']:.0f} us"
                ),
            }
        )
    b50 = statistics.median(cold["bare"])
    for key, name, goal, subject in (
        # No goal: the predict function restores from a snapshot (information only).
        ("handler", "cold import (median)", None, "predict handler"),
        ("floor", "cold import, libraries alone", None, "required libraries, no maas code"),
    ):
        m50 = statistics.median(cold[key])
        rows.append(
            {
                "bench": name,
                "ratio": m50 / b50,
                "goal": goal,
                "subject": subject,
                "unit": "ms",
                "handler": m50 * 1000,
                "baseline": b50 * 1000,
                "baseline_name": "import boto3",
                "spread": (
                    f"{key} {min(cold[key]) * 1000:.0f}-{max(cold[key]) * 1000:.0f} ms,"
                    f" boto3 {min(cold['bare']) * 1000:.0f}-{max(cold['bare']) * 1000:.0f} ms"
                    f" ({len(cold[key])} runs each)"
                ),
            }
        )
    return rows


def main() -> None:
    if "--json" in sys.argv[1:]:  # for bench/run_all.py, which runs this in its own process
        print(json.dumps(run()))
        return
    print(f"{'bench':<22} {'ratio':>6} {'goal':>6} {'handler':>10} {'baseline':>10}  spread")
    for row in run():
        goal = f"<={row['goal']}" if row["goal"] else "-"
        print(
            f"{row['bench']:<22} {row['ratio']:>5.2f}x {goal:>6} "
            f"{row['handler']:>8.0f}{row['unit']} {row['baseline']:>8.0f}{row['unit']}  "
            f"{row['spread']} (baseline: {row['baseline_name']})"
        )


if __name__ == "__main__":
    main()
