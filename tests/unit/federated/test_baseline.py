"""Federated healthy baseline: equals the pooled least-squares fit and survives serialisation."""

from __future__ import annotations

import json

import numpy as np

from federated.baseline import (
    BASELINE_INPUTS,
    BASELINE_TARGETS,
    design,
    local_gram,
    local_residual_ss,
    set_residual_scale,
    solve_baseline,
)
from federated.model import FaultClassifier, from_arrays, model_config, model_from_config, to_arrays

NAMES = list(BASELINE_INPUTS) + list(BASELINE_TARGETS)


def _rows(rng: np.random.Generator, n: int, fault: int | None) -> tuple[np.ndarray, np.ndarray]:
    p = rng.uniform(5, 9, n)
    w = rng.uniform(1600, 2200, n)
    T = np.column_stack(
        [0.5 + 0.8 * p + 0.001 * w + 0.0001 * p * w + 0.002 * rng.normal(size=n)] * len(BASELINE_TARGETS)
    )
    Y = np.zeros((n, 3), dtype=np.int64)
    if fault is not None:
        T[:, 0] += 0.05
        Y[:, fault] = 1
    return np.column_stack([p, w, T]), Y


def test_federated_baseline_equals_pooled_fit_and_roundtrips() -> None:
    rng = np.random.default_rng(0)
    parts = [_rows(rng, 200, None), _rows(rng, 150, 1), _rows(rng, 100, None)]
    base = solve_baseline(local_gram(X, Y, NAMES) for X, Y in parts)
    base = set_residual_scale(base, [local_residual_ss(X, Y, NAMES, base) for X, Y in parts])
    X = np.vstack([x for x, y in parts if y.sum() == 0])
    phi = design(X[:, :2], base.input_ref)
    pooled, *_ = np.linalg.lstsq(phi, X[:, 2:], rcond=None)
    np.testing.assert_allclose(phi @ base.coef, phi @ pooled, atol=1e-4)  # tiny ridge; noise is 2e-3
    np.testing.assert_allclose(base.scale, 0.002, rtol=0.15)
    # The fault row shift (0.05 = 25 healthy sigmas) stands out after the asinh transform.
    Xf, _ = parts[1]
    assert np.median(base.transform(Xf, NAMES)[:, 0]) > 3.0

    model = FaultClassifier(hidden=2, feature_names=NAMES).initialize(len(NAMES), None, None, base)
    assert model.augment(Xf).shape == (len(Xf), len(NAMES) + len(base.output_names))
    arrays, meta = to_arrays(model)
    back = from_arrays(arrays, json.loads(json.dumps(meta)))
    np.testing.assert_allclose(back.predict_proba(Xf), model.predict_proba(Xf))
    client_side = model_from_config(
        json.loads(json.dumps(model_config(model))), [a.copy() for a in arrays.values()][:4]
    )
    np.testing.assert_allclose(client_side.predict_proba(Xf), model.predict_proba(Xf))
