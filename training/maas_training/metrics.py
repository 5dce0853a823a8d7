"""Metric log lines, the regexes that read them (metric_definitions.json), and ROC-AUC."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

# Beside train.py, not in this package: infra, the handlers' environment and the local stack
# read it there as SageMaker's MetricDefinitions, and serving has no use for it.
DEFINITIONS_FILE = Path(__file__).resolve().parents[1] / "metric_definitions.json"

# Log-line key -> SageMaker metric name (the names in metric_definitions.json).
METRIC_NAMES = {
    "train_loss": "train:loss",
    "val_loss": "validation:loss",
    "val_accuracy": "validation:accuracy",
    "val_roc_auc": "validation:roc_auc",
    "val_perplexity": "validation:perplexity",
    "val_unigram_perplexity": "validation:unigram_perplexity",
}


def metric_definitions() -> list[dict]:
    return json.loads(DEFINITIONS_FILE.read_text())


def format_line(prefix: dict, values: dict) -> str:
    """`epoch=3 train_loss=0.1234 val_loss=0.2000 val_accuracy=0.9810`."""
    head = " ".join(f"{k}={v}" for k, v in prefix.items())
    return " ".join([head, *(f"{k}={v:.6g}" for k, v in values.items())]).strip()


def parse_line(line: str) -> dict[str, float]:
    """Reads a log line the way SageMaker does: every definition whose regex matches."""
    out = {}
    for d in metric_definitions():
        m = re.search(d["Regex"], line)
        if m:
            out[d["Name"]] = float(m.group(1))
    return out


def sagemaker_names(values: dict) -> dict[str, float]:
    return {METRIC_NAMES[k]: float(v) for k, v in values.items() if k in METRIC_NAMES}


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U); tied scores share their average rank."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both positive and negative labels")
    order = np.argsort(s, kind="mergesort")
    _, inverse, counts = np.unique(s[order], return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank per distinct score
    ranks = np.empty(len(s))
    ranks[order] = avg_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
