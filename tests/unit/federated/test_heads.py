"""Head structure of the classifier: input masks, noisy-OR groups, leak-share removal in the baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from federated.baseline import (
    local_gram,
    local_residual_ss,
    set_residual_scale,
    solve_baseline,
)
from federated.model import (
    FaultClassifier,
    _bce_with_logits,
    _gradients,
    _sigmoid,
    calibrate_head,
    decide,
    from_arrays,
    get_parameters,
    model_config,
    model_from_config,
    set_parameters,
    to_arrays,
    train_local,
)
from fedtwin.training.recipe import (
    BASELINE_INPUTS,
    BASELINE_TARGETS,
    LEAK_SHARED,
    LEAK_SIGNATURE,
    PUMP_BASELINE,
)
from plant_models.spec import FAULTS

from .conftest import N_FEATURES, make_rows

NAMES = [f"f{i}" for i in range(N_FEATURES)]
# Fault 1 has two heads: one reads f1, the other f4; faults 0 and 2 read their own column.
INPUTS = (("f0",), ("f1",), ("f4",), ("f2", "f5"))
GROUPS = (0, 1, 1, 2)


def _grouped(hidden: int = 0) -> FaultClassifier:
    return FaultClassifier(
        fault_names=FAULTS, hidden=hidden, feature_names=NAMES, head_inputs=INPUTS, head_groups=GROUPS
    ).initialize(N_FEATURES)


def test_noisy_or_of_two_heads_by_hand() -> None:
    model = _grouped()
    W, b = get_parameters(model)
    b[:] = [-1.0, 0.5, -2.0, 1.5]
    set_parameters(model, [np.zeros_like(W), b])
    p = model.predict_proba(np.zeros((1, N_FEATURES)))[0]
    s = 1.0 / (1.0 + np.exp(-b))
    np.testing.assert_allclose(p, [s[0], 1 - (1 - s[1]) * (1 - s[2]), s[3]], rtol=1e-12)


def test_a_head_reads_only_its_inputs_even_after_noisy_aggregation() -> None:
    model = _grouped(hidden=3)
    W1, b1, W2, b2 = get_parameters(model)
    assert np.all(W1[0, 1:] == 0) and np.all(W1[3, [0, 1, 3, 4]] == 0)
    W1 = W1 + 0.5  # e.g. DP noise landed on weights a head must not read
    set_parameters(model, [W1, b1, W2, b2])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, N_FEATURES))
    X2 = X.copy()
    X2[:, 3] += 10.0  # no head reads f3
    X2[:, 1] += 10.0  # only fault 1's first head reads f1
    P, P2 = model.predict_proba(X), model.predict_proba(X2)
    np.testing.assert_array_equal(P[:, [0, 2]], P2[:, [0, 2]])
    assert not np.allclose(P[:, 1], P2[:, 1])


@pytest.mark.parametrize("hidden", [0, 3])
def test_grouped_masked_gradients_match_finite_differences(hidden: int) -> None:
    rng = np.random.default_rng(1)
    parts = [make_rows(rng, [a, b, c], 15) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    X, Y = np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts]).astype(float)
    model = _grouped(hidden)
    params = [
        p + 0.3 * rng.normal(size=p.shape) * (p != 0 if p.ndim == 3 else 1) for p in get_parameters(model)
    ]
    grads = _gradients(model, params, X, Y, np.ones(len(GROUPS)))

    def loss(ps: list[np.ndarray]) -> float:
        z = model._fault_logits(model._forward(X, ps)[0])
        return float(np.sum(np.mean(_bce_with_logits(z, Y), axis=0)))

    for i in range(len(params)):
        for _ in range(4):
            idx = tuple(rng.integers(0, s) for s in params[i].shape)
            plus, minus = [p.copy() for p in params], [p.copy() for p in params]
            plus[i][idx] += 1e-6
            minus[i][idx] -= 1e-6
            assert grads[i][idx] == pytest.approx((loss(plus) - loss(minus)) / 2e-6, rel=1e-4, abs=1e-7)


def test_two_kinds_of_evidence_are_both_recognised() -> None:
    """Fault 1 shows on f1 in some rows and on f4 in others: its two heads together catch both."""
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, N_FEATURES))
    Y = np.zeros((600, 3), dtype=np.int64)
    Y[200:400, 1] = 1
    X[200:300, 1] += 4.0
    X[300:400, 4] += 4.0
    Y[400:, 0] = 1
    X[400:, 0] += 4.0
    model = _grouped(hidden=4)
    model.mean_, model.scale_ = X.mean(axis=0), X.std(axis=0)
    train_local(model, X, Y, epochs=60, seed=0)
    pred = model.predict(X)
    assert pred[200:300, 1].mean() > 0.9 and pred[300:400, 1].mean() > 0.9
    assert pred[:200, 1].mean() < 0.1 and pred[400:, 1].mean() < 0.1


def test_bad_head_structure_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        FaultClassifier(
            fault_names=FAULTS, feature_names=NAMES, head_inputs=(("f0",), ("nope",), ("f2",))
        ).initialize(N_FEATURES)
    with pytest.raises(ValueError, match="every fault"):
        FaultClassifier(
            fault_names=FAULTS, feature_names=NAMES, head_inputs=(("f0",), ("f1",)), head_groups=(0, 0)
        ).initialize(N_FEATURES)
    with pytest.raises(ValueError, match="entries"):
        FaultClassifier(
            fault_names=FAULTS, feature_names=NAMES, head_inputs=(("f0",),), head_groups=(0, 1, 2)
        ).initialize(N_FEATURES)


def test_structure_survives_serialisation_and_version_1_models_still_load() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, N_FEATURES))
    model = _grouped(hidden=2)
    arrays, meta = to_arrays(model)
    meta = json.loads(json.dumps(meta))
    np.testing.assert_allclose(from_arrays(arrays, meta).predict_proba(X), model.predict_proba(X))
    client = model_from_config(json.loads(json.dumps(model_config(model))), get_parameters(model))
    np.testing.assert_allclose(client.predict_proba(X), model.predict_proba(X))

    old = FaultClassifier(fault_names=FAULTS, hidden=2, feature_names=NAMES).initialize(N_FEATURES)
    arrays, meta = to_arrays(old)
    hp = {k: v for k, v in meta["hyperparameters"].items() if not k.startswith("head_")}
    v1 = {**meta, "format_version": 1, "hyperparameters": hp}
    np.testing.assert_allclose(from_arrays(arrays, v1).predict_proba(X), old.predict_proba(X))


def test_a_noisy_or_fault_is_not_platt_folded() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, N_FEATURES))
    model = _grouped(hidden=2)
    before = model.decision_function(X)
    assert calibrate_head(model, X, np.arange(40) % 2, head=1) == (1.0, 0.0)
    np.testing.assert_array_equal(model.decision_function(X), before)


# ---------------------------------------------------------------------- leak-share removal
BNAMES = list(BASELINE_INPUTS) + list(BASELINE_TARGETS)


def _baseline_rows(rng: np.random.Generator, n: int, fault: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Healthy targets follow the operating point; a leak moves its signature and the shared ones together."""
    p, w = rng.uniform(5, 9, n), rng.uniform(1600, 2200, n)
    T = np.column_stack([0.5 + 0.8 * p + 0.001 * w + 0.002 * rng.normal(size=n) for _ in BASELINE_TARGETS])
    Y = np.zeros((n, 3), dtype=np.int64)
    if fault is not None:
        Y[:, fault] = 1
        sev = rng.uniform(0.1, 1.0, n)
        for j, name in enumerate(BASELINE_TARGETS):
            if fault == 0 and name in LEAK_SIGNATURE:
                T[:, j] += 0.3 * sev
            elif fault == 0 and name in LEAK_SHARED:
                T[:, j] -= 0.2 * sev  # what the leak does to, e.g., volumetric efficiency
            elif fault == 1 and name in LEAK_SHARED:
                T[:, j] -= 0.1  # another fault's shift must not enter the leak regression
    return np.column_stack([p, w, T]), Y


def test_leak_share_is_removed_and_equals_the_pooled_fit() -> None:
    rng = np.random.default_rng(5)
    parts = [_baseline_rows(rng, 200, None), _baseline_rows(rng, 150, 0), _baseline_rows(rng, 150, 1)]
    parts[1] = (np.vstack([parts[1][0], parts[0][0][:50]]), np.vstack([parts[1][1], parts[0][1][:50]]))
    base = solve_baseline((local_gram(X, Y, BNAMES, PUMP_BASELINE) for X, Y in parts), PUMP_BASELINE)
    ss = [local_residual_ss(X, Y, BNAMES, base, PUMP_BASELINE) for X, Y in parts]
    base = set_residual_scale(base, ss, PUMP_BASELINE)
    assert base.shared_coef is not None and base.shared == LEAK_SHARED
    # Federated coefficients = least squares on the pooled no-fault-but-leak rows.
    X = np.vstack([x[y[:, 1:].sum(axis=1) == 0] for x, y in parts])
    R = base.raw_residuals(X, BNAMES)
    t = list(BASELINE_TARGETS)
    E = np.column_stack([R[:, [t.index(n) for n in LEAK_SIGNATURE]], np.ones(len(R))])
    pooled, *_ = np.linalg.lstsq(E, R[:, [t.index(n) for n in LEAK_SHARED]], rcond=None)
    np.testing.assert_allclose(base.shared_coef, pooled, rtol=1e-3, atol=1e-4)  # tiny ridge

    out = dict(zip(base.output_names, base.transform(parts[1][0][:150], BNAMES).T, strict=True))
    name = LEAK_SHARED[1]
    assert np.median(np.abs(out[f"resid_{name}"])) > 3.0  # the leak moves it by tens of healthy sigmas ...
    assert np.median(np.abs(out[f"resid_{name}_leak_removed"])) < 1.0  # ... and its share is gone
    inlet = dict(zip(base.output_names, base.transform(parts[2][0], BNAMES).T, strict=True))
    assert np.median(inlet[f"resid_{name}_leak_removed"]) < -3.0  # a blocked inlet's shift stays visible
    back = type(base).from_json(json.loads(json.dumps(base.to_json())))
    np.testing.assert_allclose(back.transform(parts[2][0], BNAMES), base.transform(parts[2][0], BNAMES))


def test_no_leak_rows_keeps_the_inputs_and_removes_nothing() -> None:
    rng = np.random.default_rng(6)
    parts = [_baseline_rows(rng, 200, None), _baseline_rows(rng, 100, 1)]
    base = solve_baseline((local_gram(X, Y, BNAMES, PUMP_BASELINE) for X, Y in parts), PUMP_BASELINE)
    ss = [local_residual_ss(X, Y, BNAMES, base, PUMP_BASELINE) for X, Y in parts]
    base = set_residual_scale(base, ss, PUMP_BASELINE)
    assert base.shared_coef is not None and not base.shared_coef.any()
    out = dict(zip(base.output_names, base.transform(parts[1][0], BNAMES).T, strict=True))
    for name in LEAK_SHARED:
        np.testing.assert_allclose(out[f"resid_{name}_leak_removed"], out[f"resid_{name}"])


def test_sigmoid_is_what_the_noisy_or_reduces_to() -> None:
    model = FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES).initialize(N_FEATURES)
    z = np.linspace(-50, 50, 11)[:, None].repeat(3, axis=1)
    np.testing.assert_allclose(model._fault_logits(z), z, atol=1e-9)
    np.testing.assert_allclose(_sigmoid(model._fault_logits(z)), _sigmoid(z), atol=1e-12)


def test_decide_by_hand() -> None:
    P = np.array(
        [
            [0.6, 0.2, 0.7],  # two faults clear 0.5: both, no fallback
            [0.4, 0.3, 0.05],  # none clears: leak is the most probable and above 0.1
            [0.05, 0.02, 0.01],  # none clears, nothing reaches the fallback: healthy
        ]
    )
    thr = np.full(3, 0.5)
    np.testing.assert_array_equal(decide(P, thr), [[1, 0, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(decide(P, thr, 0.1), [[1, 0, 1], [1, 0, 0], [0, 0, 0]])


def test_fallback_is_validated_used_by_predict_and_serialised() -> None:
    with pytest.raises(ValueError, match="fallback_threshold"):
        FaultClassifier(fault_names=FAULTS, fallback_threshold=1.5).initialize(N_FEATURES)
    model = _grouped()
    W, b = get_parameters(model)
    b[:] = [-0.5, -2.0, -2.0, -3.0]  # leak p = 0.38: below 0.5
    set_parameters(model, [np.zeros_like(W), b])
    X = np.zeros((2, N_FEATURES))
    assert model.predict(X).sum() == 0
    model.fallback_threshold = 0.2
    np.testing.assert_array_equal(model.predict(X), [[1, 0, 0], [1, 0, 0]])
    arrays, meta = to_arrays(model)
    back = from_arrays(arrays, json.loads(json.dumps(meta)))
    assert back.fallback_threshold == 0.2
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
