"""The Lambda functions ship handlers/ and maas_contract/ alone (infra/api_functions.py), on the
Python runtime with the Powertools public layer. So their code may import the standard library,
what the runtime bundles (boto3, botocore), and what the layer carries (Powertools and its extra
dependencies: pydantic, aws-xray-sdk, fastjsonschema), and nothing else: an import of numpy
works in the local stack, whose processes run in this venv, and fails every cold start in AWS.
https://docs.aws.amazon.com/powertools/python/latest/getting-started/install/ ("Most features use
Python standard library and the AWS SDK (boto3) that are available in the AWS Lambda runtime";
the layer brings the extras).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("handlers", "maas_contract")
RUNTIME = {"boto3", "botocore", "jmespath", "s3transfer", "urllib3", "dateutil"}
LAYER = {
    "aws_lambda_powertools",
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "aws_xray_sdk",
    "fastjsonschema",
}


def imported_roots(path: Path) -> set[str]:
    """Top-level packages of every absolute import in a file, nested imports included."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_lambda_code_imports_only_what_the_runtime_and_the_layer_provide():
    allowed = set(sys.stdlib_module_names) | RUNTIME | LAYER | set(SHIPPED)
    strays = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) - allowed)
        for package in SHIPPED
        for path in (ROOT / package).rglob("*.py")
        if imported_roots(path) - allowed
    }

    assert strays == {}


def test_the_check_sees_a_stray_import(tmp_path):
    stray = tmp_path / "m.py"
    stray.write_text("def f():\n    import numpy as np\n    return np\n")

    assert "numpy" in imported_roots(stray)
