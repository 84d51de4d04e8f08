"""Federated feature statistics: clients share (count, sum, sum of squares) per feature, never rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FeatureStats:
    """Sufficient statistics of one client's (or the merged) feature matrix."""

    count: int
    sum: np.ndarray
    sumsq: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for transport."""
        return {"count": int(self.count), "sum": self.sum.tolist(), "sumsq": self.sumsq.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureStats:
        """Inverse of :meth:`to_dict`."""
        return cls(
            int(d["count"]), np.asarray(d["sum"], dtype=np.float64), np.asarray(d["sumsq"], dtype=np.float64)
        )


def local_stats(X: np.ndarray) -> FeatureStats:
    """Per-feature count, sum and sum of squares of one client's rows."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    return FeatureStats(int(X.shape[0]), X.sum(axis=0), np.square(X).sum(axis=0))


def merge_stats(stats: Iterable[FeatureStats]) -> FeatureStats:
    """Add clients' statistics (associative, so it can be done in any order or tree)."""
    items = list(stats)
    if not items:
        raise ValueError("no statistics to merge")
    shapes = {s.sum.shape for s in items}
    if len(shapes) != 1:
        raise ValueError(f"clients disagree on the number of features: {sorted(shapes)}")
    return FeatureStats(
        sum(s.count for s in items),
        np.sum([s.sum for s in items], axis=0),
        np.sum([s.sumsq for s in items], axis=0),
    )


def mean_std(stats: FeatureStats, min_std: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Pooled mean and (population) std; constant features get std 1 so scaling never divides by 0."""
    if stats.count < 1:
        raise ValueError("no rows")
    mean = stats.sum / stats.count
    var = np.maximum(stats.sumsq / stats.count - mean * mean, 0.0)
    std = np.sqrt(var)
    # Relative floor: cancellation in sumsq/n - mean^2 leaves noise of order eps * mean^2.
    floor = np.maximum(min_std, 1e-7 * np.abs(mean))
    return mean, np.where(std > floor, std, 1.0)
