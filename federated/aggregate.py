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


def weighted_average(params_list: Sequence[Sequence[np.ndarray]], weights: Sequence[float]) -> Params:
    """Average of each array weighted by ``weights`` (e.g. number of examples)."""
    _check(params_list)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(params_list),) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative, one per client, with a positive sum")
    w = w / w.sum()
    return [
        np.tensordot(w, np.stack([np.asarray(p[i], dtype=np.float64) for p in params_list]), axes=1)
        for i in range(len(params_list[0]))
    ]


def coordinate_median(params_list: Sequence[Sequence[np.ndarray]]) -> Params:
    """Coordinate-wise median (FedMedian)."""
    _check(params_list)
    return [np.median(np.stack([p[i] for p in params_list]), axis=0) for i in range(len(params_list[0]))]


def trimmed_mean(params_list: Sequence[Sequence[np.ndarray]], beta: float) -> Params:
    """Coordinate-wise mean after dropping the ``floor(beta * n)`` lowest and highest values."""
    _check(params_list)
    if not 0 <= beta < 0.5:
        raise ValueError("beta must be in [0, 0.5)")
    n = len(params_list)
    cut = int(np.floor(beta * n))
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
    n = len(params_list)
    k = n - num_byzantine - 2
    if k < 1:
        raise ValueError(f"Krum needs n > f + 2 (n={n}, f={num_byzantine})")
    V = np.stack([flatten(p) for p in params_list])
    sq = np.square(V).sum(axis=1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2.0 * V @ V.T, 0.0)
    np.fill_diagonal(D, np.inf)
    return np.sort(D, axis=1)[:, :k].sum(axis=1)


def krum_select(
    params_list: Sequence[Sequence[np.ndarray]], num_byzantine: int, num_selected: int = 1
) -> list[int]:
    """Indices of the ``num_selected`` clients with the lowest Krum score (1 = Krum, >1 = Multi-Krum)."""
    scores = krum_scores(params_list, num_byzantine)
    if not 1 <= num_selected <= len(params_list):
        raise ValueError("num_selected must be in [1, n]")
    return [int(i) for i in np.argsort(scores, kind="stable")[:num_selected]]
