"""Pure aggregation math over lists of parameter lists (one list of arrays per client)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Params = list[np.ndarray]


def _check(params_list: Sequence[Sequence[np.ndarray]]) -> None:
    if not params_list:
        raise ValueError("nothing to aggregate")
    ref = [np.shape(p) for p in params_list[0]]
    for i, params in enumerate(params_list[1:], start=1):
        if [np.shape(p) for p in params] != ref:
            raise ValueError(f"client {i} parameter shapes differ from client 0")


def update_problem(
    params: Sequence[np.ndarray], num_examples: object, reference: Sequence[np.ndarray]
) -> str | None:
    """Why one client's update cannot be aggregated, or None when it can.

    An update must carry one array per ``reference`` array with the same shape, only finite values, and a
    positive whole number of examples (the weight FedAvg gives it). The first problem found is returned as a
    one-line reason naming the array or field.
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, int | float | np.integer | np.floating):
        return f"num_examples must be a number, got {type(num_examples).__name__}"
    if not np.isfinite(num_examples) or num_examples != int(num_examples):
        return f"num_examples must be a whole number, got {num_examples}"
    if num_examples <= 0:
        return f"num_examples must be > 0, got {num_examples}"
    if len(params) != len(reference):
        return f"expected {len(reference)} parameter arrays, got {len(params)}"
    for i, r in enumerate(reference):
        a = np.asarray(params[i])
        if a.shape != np.shape(r):
            return f"parameter {i} has shape {a.shape}, expected {np.shape(r)}"
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
            return f"parameter {i} has dtype {a.dtype}, expected a real number type"
        if not np.all(np.isfinite(a)):
            return f"parameter {i} has {int(a.size - np.count_nonzero(np.isfinite(a)))} non-finite values"
    return None


def weighted_average(params_list: Sequence[Sequence[np.ndarray]], weights: Sequence[float]) -> Params:
    """Average of each array weighted by ``weights`` (e.g. number of examples)."""
    _check(params_list)
    w = np.asarray(weights)
    if w.shape != (len(params_list),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative, one per client, with a positive sum")
    w = w / w.sum()
    return [
        np.tensordot(w, np.stack([np.asarray(p[i]) for p in params_list]), axes=1)
        for i in range(len(params_list[0]))
    ]


def coordinate_median(params_list: Sequence[Sequence[np.ndarray]]) -> Params:
    """Coordinate-wise median (FedMedian)."""
    _check(params_list)
    return [np.median(np.stack([p[i] for p in params_list]), axis=0) for i in range(len(params_list[0]))]


def trim_count(n: int, beta: float) -> int:
    """Values dropped at each end by :func:`trimmed_mean`: ``floor(beta * n)``, but at least one when
    ``beta > 0`` and ``n >= 3`` (``floor(0.2 * 3) = 0`` would otherwise trim nothing: a plain mean that one
    extreme client can drag anywhere). Always leaves at least one value since ``beta < 0.5``.
    """
    if not 0 <= beta < 0.5:
        raise ValueError("beta must be in [0, 0.5)")
    cut = int(np.floor(beta * n))
    return max(cut, 1) if beta > 0 and n >= 3 else cut


def trimmed_mean(params_list: Sequence[Sequence[np.ndarray]], beta: float) -> Params:
    """Coordinate-wise mean after dropping the :func:`trim_count` lowest and highest values."""
    _check(params_list)
    n = len(params_list)
    cut = trim_count(n, beta)
    out = []
    for i in range(len(params_list[0])):
        s = np.sort(np.stack([p[i] for p in params_list]), axis=0)
        out.append(s[cut : n - cut].mean(axis=0))
    return out


def flatten(params: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate a parameter list into one vector."""
    return np.concatenate([np.ravel(p) for p in params]) if len(params) else np.zeros(0)


def unflatten(vec: np.ndarray, like: Sequence[np.ndarray]) -> Params:
    """Inverse of :func:`flatten` using the shapes of ``like``."""
    out, pos = [], 0
    for p in like:
        size = int(np.size(p))
        out.append(vec[pos : pos + size].reshape(np.shape(p)).copy())
        pos += size
    if pos != vec.size:
        raise ValueError("vector length does not match the template")
    return out


def krum_scores(params_list: Sequence[Sequence[np.ndarray]], num_byzantine: int) -> np.ndarray:
    """Krum score per client: sum of squared distances to its ``n - f - 2`` nearest other clients."""
    _check(params_list)
    if num_byzantine < 0:
        raise ValueError(f"num_byzantine must be >= 0, got {num_byzantine}")
    n = len(params_list)
    k = n - num_byzantine - 2
    if k < 1:
        raise ValueError(f"Krum needs n > f + 2 (n={n}, f={num_byzantine})")
    V = np.stack([flatten(p) for p in params_list])
    sq = np.square(V).sum(axis=1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2.0 * V @ V.T, 0.0)
    np.fill_diagonal(D, np.inf)
    scores: np.ndarray = np.sort(D, axis=1)[:, :k].sum(axis=1)
    return scores


def krum_select(
    params_list: Sequence[Sequence[np.ndarray]], num_byzantine: int, num_selected: int = 1
) -> list[int]:
    """Indices of the ``num_selected`` clients with the lowest Krum score (1 = Krum, >1 = Multi-Krum)."""
    scores = krum_scores(params_list, num_byzantine)
    if not 1 <= num_selected <= len(params_list):
        raise ValueError("num_selected must be in [1, n]")
    return [int(i) for i in np.argsort(scores, kind="stable")[:num_selected]]
