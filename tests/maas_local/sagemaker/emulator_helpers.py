"""Helpers for the SageMaker emulator tests: names, waiting, training data and model artifacts
in the local S3, and boto3 calls that the tests repeat. (Named uniquely: tests import it.)"""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from maas_local.aws_resources import local_client
from maas_local.sagemaker.sigv4 import Verifier

STUB_CODE = Path(__file__).parent / "stub_code"
BUCKET = "maas-emulator-tests"
ROLE = "arn:aws:iam::123456789012:role/maas-sagemaker"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311"
METRICS = [
    {"Name": "train:loss", "Regex": "train_loss=([-+0-9.eE]+)"},
    {"Name": "validation:accuracy", "Regex": "val_accuracy=([-+0-9.eE]+)"},
]
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "EMULATORTESTSKEY0001",
    "AWS_SECRET_ACCESS_KEY": "emulator-tests-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# The emulator answers only what is signed with these, as the stack's does with those it
# issues at `maas local up`.
VERIFIER = Verifier(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"])


def emulator_internals(url: str) -> dict:
    """`/_emulator/endpoints` (fleets, process ids, restarts), signed as the owner must sign it."""
    from maas_local.sagemaker.sigv4 import signed_get_headers

    target = f"{url}/_emulator/endpoints"
    headers = signed_get_headers(
        target, CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"], "us-east-1"
    )
    request = urllib.request.Request(target, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def emulator_client(service: str, url: str, config=None):
    """A boto3 client of the emulator, signing with the credentials it accepts."""
    return local_client(service, url, CREDENTIALS, config)


def role_policies(path: Path, roles: dict[str, list[dict]], bucket_keys=None) -> Path:
    """A policies file as the local stack writes it (maas_local.cloud_template): here only
    execution roles, each with its own statements."""
    (role, statements), *others = roles.items()
    document = {
        "region": "us-east-1",
        "account": "123456789012",
        "functions": {arn: s for arn, s in others},
        "execution_role": {"arn": role, "statements": statements},
        "bucket_keys": bucket_keys or {},
    }
    path.write_text(json.dumps(document))
    return path


# What the tests' execution role may do: everything SageMaker does for it in the test bucket.
ROLE_STATEMENTS = [
    {
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": f"arn:aws:s3:::{BUCKET}",
    },
    {
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    },
    # SSE-KMS on the objects it writes (data capture names a key by its alias).
    {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": "*"},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    """Polls until check() is truthy; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def blobs(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated clusters of 4 features: easy to classify, quick to make."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=n)
    centers = np.array([[0, 0, 0, 0], [5, 5, 5, 5], [-5, 5, -5, 5]], dtype=np.float32)
    x = centers[y] + rng.normal(scale=0.5, size=(n, 4)).astype(np.float32)
    return x.astype(np.float32), y


def put_npz(s3, key: str, x: np.ndarray, y: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=y)
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key.rsplit('/', 1)[0]}"


def put_model(s3, name: str, **settings: Any) -> str:
    """Uploads a stub model.tar.gz (centroids + code/inference.py + settings.json)."""
    x, y = blobs()
    labels = np.unique(y)
    centroids = np.stack([x[y == c].mean(axis=0) for c in labels])
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for arcname, data in {
            "centroids.npy": _npy(centroids),
            "labels.npy": _npy(labels),
            "settings.json": json.dumps({"name": name, **settings}).encode(),
            "code/inference.py": (STUB_CODE / "serve" / "inference.py").read_bytes(),
        }.items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    key = f"models/{name}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


def put_sourcedir(s3, source: Path = STUB_CODE, program: str = "train.py") -> dict[str, str]:
    """Uploads `source` as a script-mode sourcedir.tar.gz; returns the hyperparameters that run
    `program` from it (JSON-encoded, as the SageMaker SDK sends them)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                tar.add(path, arcname=str(path.relative_to(source)))
    key = f"code/{uuid.uuid4().hex[:8]}/sourcedir.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return {
        "sagemaker_program": json.dumps(program),
        "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/{key}"),
    }


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def create_model(sm, s3, name: str, **settings: Any) -> str:
    url = put_model(s3, name, **settings)
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": url,
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
        },
    )
    return name


def create_config(sm, name: str, variants: dict[str, tuple[str, float]]) -> str:
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": weight,
            }
            for variant, (model, weight) in variants.items()
        ],
    )
    return name


def wait_endpoint(sm, name: str, timeout: float = 60.0) -> dict:
    def settled():
        described = sm.describe_endpoint(EndpointName=name)
        busy = ("Creating", "Updating", "SystemUpdating")
        return described if described["EndpointStatus"] not in busy else None

    return wait_for(settled, timeout)


def invoke(runtime, endpoint: str, rows: list[list[float]], **kwargs: Any) -> dict:
    response = runtime.invoke_endpoint(
        EndpointName=endpoint,
        Body=json.dumps({"instances": rows}),
        ContentType="application/json",
        Accept="application/json",
        **kwargs,
    )
    response["json"] = json.loads(response["Body"].read())
    return response


def signed_call(url: str, target: str, body: bytes) -> tuple[int, dict]:
    """Sends a SigV4-signed JSON 1.1 request as is, for payloads boto3 would not serialize."""
    import urllib.error
    import urllib.request

    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    request = AWSRequest(method="POST", url=url + "/", data=body, headers=headers)
    credentials = botocore.session.get_session().get_credentials()
    SigV4Auth(credentials, "sagemaker", "us-east-1").add_auth(request)
    prepared = urllib.request.Request(
        url + "/", data=body, headers=dict(request.headers.items()), method="POST"
    )
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
