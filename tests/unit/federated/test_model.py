"""Estimator contract, gradients, parameter bridge and safe serialisation of the fault classifier."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from sklearn.base import clone

from federated.model import (
    FaultClassifier,
    _bce_with_logits,
    _gradients,
    calibrate_head,
    from_arrays,
    get_parameters,
    set_parameters,
    to_arrays,
)
from plant_models.spec import FAULTS

from .conftest import make_rows


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    parts = [make_rows(rng, [a, b, c], 40) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])


@pytest.mark.parametrize("hidden", [0, 5])
def test_fit_contract_and_accuracy(hidden: int) -> None:
    X, Y = _data()
    model = FaultClassifier(fault_names=FAULTS, hidden=hidden, epochs=30)
    assert model.fit(X, Y) is model
    P = model.predict_proba(X)
    assert P.shape == (len(X), 3) and np.all((P >= 0) & (P <= 1))
    assert set(np.unique(model.predict(X))) <= {0, 1}
    Xt, Yt = _data(1)
    assert model.score(Xt, Yt) > 0.7  # Bayes exact-match here is about 0.81 (3 faults, shift 3 sigma)
    assert clone(model).get_params() == model.get_params()


@pytest.mark.parametrize("hidden", [0, 3])
def test_gradients_match_finite_differences(hidden: int) -> None:
    X, Y = _data()
    model = FaultClassifier(fault_names=FAULTS, hidden=hidden, activation="tanh").initialize(X.shape[1])
    rng = np.random.default_rng(3)
    params = [p + 0.3 * rng.normal(size=p.shape) for p in get_parameters(model)]
    mask = np.ones(3)
    grads = _gradients(model, params, X, Y.astype(float), mask)

    def loss(ps: list[np.ndarray]) -> float:
        return float(np.sum(np.mean(_bce_with_logits(model._forward(X, ps)[0], Y), axis=0)))

    for i in range(len(params)):
        idx = tuple(rng.integers(0, s) for s in params[i].shape)
        plus = [p.copy() for p in params]
        minus = [p.copy() for p in params]
        plus[i][idx] += 1e-6
        minus[i][idx] -= 1e-6
        num = (loss(plus) - loss(minus)) / 2e-6
        assert grads[i][idx] == pytest.approx(num, rel=1e-4, abs=1e-7)


def test_parameter_bridge_roundtrip_and_validation() -> None:
    X, Y = _data()
    model = FaultClassifier(fault_names=FAULTS, hidden=4, epochs=2).fit(X, Y)
    params = get_parameters(model)
    params[0][0, 0, 0] = 123.0
    set_parameters(model, params)
    assert get_parameters(model)[0][0, 0, 0] == 123.0
    with pytest.raises(ValueError, match="shape"):
        set_parameters(model, [np.zeros(1)] * 4)
    with pytest.raises(ValueError, match="expected 4"):
        set_parameters(model, params[:2])
    bad = [p.copy() for p in params]
    bad[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        set_parameters(model, bad)


@pytest.mark.parametrize("hidden", [0, 4])
def test_to_arrays_from_arrays_through_npz_without_pickle(hidden: int) -> None:
    X, Y = _data()
    model = FaultClassifier(
        fault_names=FAULTS, hidden=hidden, epochs=3, feature_names=[f"f{i}" for i in range(X.shape[1])]
    ).fit(X, Y)
    model.thresholds_ = np.array([0.4, 0.5, 0.6])
    arrays, meta = to_arrays(model)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        loaded = {k: z[k] for k in z.files}
    back = from_arrays(loaded, json.loads(json.dumps(meta)))
    np.testing.assert_allclose(back.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(back.thresholds_, [0.4, 0.5, 0.6])
    assert meta["feature_names"][0] == "f0" and meta["fault_names"] == ["leak", "blocked_inlet", "bearing"]
    assert len(meta["feature_mean"]) == X.shape[1]


def test_from_arrays_rejects_unsafe_or_foreign_input() -> None:
    X, Y = _data()
    arrays, meta = to_arrays(FaultClassifier(fault_names=FAULTS, hidden=0, epochs=1).fit(X, Y))
    with pytest.raises(ValueError, match="model_kind"):
        from_arrays(arrays, {**meta, "model_kind": "other"})
    with pytest.raises(ValueError, match="dtype"):
        from_arrays({**arrays, "W": arrays["W"].astype(object)}, meta)
    with pytest.raises(ValueError, match="shape"):
        from_arrays({**arrays, "W": arrays["W"][:, :2]}, meta)


def test_platt_calibration_folds_into_head() -> None:
    X, Y = _data()
    model = FaultClassifier(fault_names=FAULTS, hidden=3, epochs=20).fit(X, Y)
    before = model.decision_function(X)
    a, c = calibrate_head(model, X, Y[:, 1], head=1)
    after = model.decision_function(X)
    np.testing.assert_allclose(after[:, 1], a * before[:, 1] + c, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(after[:, [0, 2]], before[:, [0, 2]])
