"""Multi-label evaluation: per-fault precision/recall, label-subset exact match, fault/no-fault.

Fault names are the caller's; ``exact_match_8class`` keeps its historical name (2^3 = 8 subsets of three
faults) for any number of faults, so logged metrics stay comparable."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np


def subset_names(fault_names: Sequence[str]) -> list[str]:
    """Names of the 2^k label subsets, indexed by ``sum(label_k << k)`` ('healthy', 'a', 'b', 'a+b', ...)."""
    k = len(fault_names)
    names = []
    for code in range(2**k):
        present = [fault_names[i] for i in range(k) if code >> i & 1]
        names.append("+".join(present) if present else "healthy")
    return names


def subset_codes(Y: np.ndarray) -> np.ndarray:
    """Integer subset code per row (bit k set when fault k is present)."""
    Y = np.asarray(Y).astype(np.int64)
    codes: np.ndarray = Y @ (1 << np.arange(Y.shape[1]))
    return codes


def confusion_subsets(Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
    """(2^k, 2^k) confusion matrix over label subsets: rows true, columns predicted."""
    k = np.asarray(Y_true).shape[1]
    m = 2**k
    t, p = subset_codes(Y_true), subset_codes(Y_pred)
    return np.bincount(t * m + p, minlength=m * m).reshape(m, m)


def evaluate_predictions(
    Y_true: np.ndarray, Y_pred: np.ndarray, fault_names: Sequence[str]
) -> dict[str, Any]:
    """All headline metrics; scalar entries are floats, plus ``confusion`` (array) and ``subset_names``."""
    Y_true = np.asarray(Y_true).astype(np.int64)
    Y_pred = np.asarray(Y_pred).astype(np.int64)
    if Y_true.shape != Y_pred.shape or Y_true.ndim != 2:
        raise ValueError(f"shape mismatch {Y_true.shape} vs {Y_pred.shape}")
    out: dict[str, Any] = {"n": len(Y_true)}
    out["exact_match_8class"] = float(np.mean(np.all(Y_true == Y_pred, axis=1)))
    true_fault: np.ndarray = np.any(Y_true, axis=1)
    pred_fault: np.ndarray = np.any(Y_pred, axis=1)
    out["fault_detection_acc"] = float(np.mean(true_fault == pred_fault))
    healthy = ~true_fault
    out["false_alarm_rate"] = float(np.mean(pred_fault[healthy])) if healthy.any() else math.nan
    out["missed_fault_rate"] = float(np.mean(~pred_fault[true_fault])) if true_fault.any() else math.nan
    out["hamming_acc"] = float(np.mean(Y_true == Y_pred))
    for k, name in enumerate(fault_names):
        tp = int(np.sum((Y_pred[:, k] == 1) & (Y_true[:, k] == 1)))
        fp = int(np.sum((Y_pred[:, k] == 1) & (Y_true[:, k] == 0)))
        fn = int(np.sum((Y_pred[:, k] == 0) & (Y_true[:, k] == 1)))
        out[f"precision_{name}"] = tp / (tp + fp) if tp + fp else math.nan
        out[f"recall_{name}"] = tp / (tp + fn) if tp + fn else math.nan
    cm = confusion_subsets(Y_true, Y_pred)
    out["confusion"] = cm
    out["subset_names"] = subset_names(fault_names)
    with np.errstate(invalid="ignore"):  # a subset with no rows: 0 / 0 -> nan
        per_class = np.diag(cm) / cm.sum(axis=1)
    for name, acc in zip(out["subset_names"], per_class, strict=True):
        out[f"acc_{name}"] = float(acc)
    return out


def evaluate_model(
    model: Any, X: np.ndarray, Y: np.ndarray, fault_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """:func:`evaluate_predictions` of ``model.predict(X)``; fault names default to the model's."""
    names = model.fault_names if fault_names is None else fault_names
    return evaluate_predictions(Y, model.predict(X), names)


def format_confusion(
    cm: np.ndarray, names: Sequence[str], abbreviations: Mapping[str, str] | None = None
) -> str:
    """Plain-text confusion matrix for benchmark output; ``abbreviations`` shorten parts of the names."""
    short = list(names)
    for long, abbrev in (abbreviations or {}).items():
        short = [n.replace(long, abbrev) for n in short]
    width = max(len(s) for s in short) + 1
    head = " " * width + " ".join(f"{s[:10]:>10}" for s in short)
    rows = [f"{s:<{width}}" + " ".join(f"{v:>10d}" for v in row) for s, row in zip(short, cm, strict=True)]
    return "\n".join([head, *rows])


def all_subsets(k: int) -> list[tuple[int, ...]]:
    """Every subset of range(k) as a tuple, smallest first."""
    return [c for r in range(k + 1) for c in combinations(range(k), r)]
