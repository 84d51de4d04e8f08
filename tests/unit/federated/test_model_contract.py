"""The classifier's contract with hand-computed values: forward pass, noisy-OR, decisions, one training step,
Platt calibration, the parameter bridge and the serialised form, and every refusal's message."""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pytest

from federated.baseline import HealthyBaseline
from federated.model import (
    FaultClassifier,
    _gradients,
    _hyper,
    _sigmoid,
    calibrate_head,
    decide,
    from_arrays,
    get_parameters,
    model_config,
    set_parameters,
    to_arrays,
    train_local,
)
from plant_models.spec import FAULTS

NAMES = ("f0", "f1")


def _logistic(**kw: Any) -> FaultClassifier:
    return FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES, **kw).initialize(2)


def test_sigmoid_is_stable_at_both_ends() -> None:
    np.testing.assert_allclose(
        _sigmoid(np.array([-800.0, -2.0, 0.0, 2.0, 800.0])), [0, 0.11920292, 0.5, 0.88079708, 1]
    )
    assert _sigmoid(np.array([-40.0]))[0] == pytest.approx(4.248354255291589e-18, rel=1e-12)


def test_logistic_forward_by_hand() -> None:
    """Inputs standardised by mean (1, 2), scale (2, 4): x = (3, 6) -> (1, 1). Head logits W @ x + b:
    (1 - 2 + 0.5, 0 + 3 - 1, 2 + 2 + 0) = (-0.5, 2, 4)."""
    m = FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES).initialize(
        2, np.array([1.0, 2.0]), np.array([2.0, 4.0])
    )
    set_parameters(m, [np.array([[1.0, -2.0], [0.0, 3.0], [2.0, 2.0]]), np.array([0.5, -1.0, 0.0])])
    np.testing.assert_allclose(m.decision_function(np.array([[3.0, 6.0]])), [[-0.5, 2.0, 4.0]], rtol=1e-12)
    np.testing.assert_allclose(
        m.predict_proba(np.array([[3.0, 6.0]])), _sigmoid(np.array([[-0.5, 2.0, 4.0]]))
    )
    np.testing.assert_array_equal(m.predict(np.array([[3.0, 6.0]])), [[0, 1, 1]])
    assert m.score(np.array([[3.0, 6.0], [3.0, 6.0]]), np.array([[0, 1, 1], [1, 1, 1]])) == 0.5


@pytest.mark.parametrize(("activation", "act"), [("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0.0))])
def test_mlp_forward_by_hand(activation: str, act: Any) -> None:
    """One hidden unit per head: z_k = W2_k * act(x . W1_k + b1_k) + b2_k, x = (1, -1)."""
    m = FaultClassifier(fault_names=FAULTS, hidden=1, activation=activation, feature_names=NAMES).initialize(
        2
    )
    W1 = np.array([[[0.5], [0.25]], [[-1.0], [1.0]], [[2.0], [0.0]]])
    b1 = np.array([[0.1], [0.0], [-0.5]])
    W2 = np.array([[2.0], [1.0], [-1.0]])
    b2 = np.array([0.0, 0.3, 1.0])
    set_parameters(m, [W1, b1, W2, b2])
    pre = np.array([0.5 - 0.25 + 0.1, -1.0 - 1.0, 2.0 - 0.5])
    want = W2[:, 0] * act(pre) + b2
    np.testing.assert_allclose(m.decision_function(np.array([[1.0, -1.0]]))[0], want, rtol=1e-12)


def test_noisy_or_logits_small_and_large() -> None:
    """Two heads of one fault at logit 0: p = 1 - 0.5 * 0.5 = 0.75, logit log 3. At logits 40 and 35 the
    softplus sum (about 75) is past the expm1 switch: the logit is the sum itself."""
    m = FaultClassifier(
        fault_names=FAULTS, hidden=0, feature_names=NAMES, head_groups=(0, 1, 1, 2)
    ).initialize(2)
    W, _ = get_parameters(m)
    set_parameters(m, [W, np.array([0.0, 0.0, 0.0, 0.0])])
    np.testing.assert_allclose(m.decision_function(np.zeros((1, 2)))[0], [0.0, np.log(3.0), 0.0], atol=1e-12)
    set_parameters(m, [W, np.array([0.0, 40.0, 35.0, -3.0])])
    z = m.decision_function(np.zeros((1, 2)))[0]
    assert z[1] == pytest.approx(75.0, rel=1e-12)
    assert z[2] == pytest.approx(-3.0, rel=1e-12)
    # Just below the switch (sum 29.9) the exact formula still applies: log(expm1(29.9)) = 29.9 to 1e-13.
    set_parameters(m, [W, np.array([0.0, 29.9, -60.0, 0.0])])
    assert m.decision_function(np.zeros((1, 2)))[0, 1] == pytest.approx(29.9, abs=1e-9)


@pytest.mark.parametrize(
    ("P", "fallback", "want"),
    [
        ([[0.5, 0.2, 0.1]], None, [[1, 0, 0]]),  # a probability equal to its threshold fires
        ([[0.49, 0.2, 0.1]], None, [[0, 0, 0]]),
        ([[0.49, 0.2, 0.1]], 0.4, [[1, 0, 0]]),  # none fires but the top one clears the fallback
        ([[0.2, 0.4, 0.1]], 0.4, [[0, 1, 0]]),  # fallback reached with equality
        ([[0.2, 0.39, 0.1]], 0.4, [[0, 0, 0]]),
        ([[0.6, 0.45, 0.1]], 0.4, [[1, 0, 0]]),  # one fired: the fallback adds nothing
    ],
)
def test_decide(P: list[list[float]], fallback: float | None, want: list[list[int]]) -> None:
    np.testing.assert_array_equal(decide(np.array(P), np.array([0.5, 0.5, 0.5]), fallback), want)


def test_decide_with_no_faults() -> None:
    assert decide(np.zeros((2, 0)), np.zeros(0), 0.3).shape == (2, 0)


def test_one_sgd_and_one_adam_step_by_hand() -> None:
    """All-zero inputs, labels mean (0.75, 0, 0): dL/db = sigma(0) - mean(y) = (-0.25, 0.5, 0.5); the weights'
    data gradient is 0 and only the L2 term alpha * W moves them.
    SGD, lr 0.1: b = -0.1 * g = (0.025, -0.05, -0.05); W = W0 (1 - 0.1 * alpha) with alpha = 0.5.
    Adam, lr 0.1: the first bias-corrected step is lr * g / (|g| + 1e-8) = 0.1 * sign(g)."""
    Y = np.array([[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 0]])
    W0 = np.array([[1.0, -2.0], [0.5, 0.0], [0.0, 4.0]])
    for optimizer in ("sgd", "adam"):
        m = _logistic(alpha=0.5)
        set_parameters(m, [W0, np.zeros(3)])
        out = train_local(
            m, np.zeros((4, 2)), Y, epochs=1, learning_rate=0.1, batch_size=4, optimizer=optimizer
        )
        W, b = get_parameters(m)
        if optimizer == "sgd":
            np.testing.assert_allclose(b, [0.025, -0.05, -0.05], rtol=1e-12)
            np.testing.assert_allclose(W, W0 * (1 - 0.1 * 0.5), rtol=1e-12)
        else:
            np.testing.assert_allclose(b, [0.1, -0.1, -0.1], rtol=1e-6)
            np.testing.assert_allclose(W, W0 - 0.1 * np.sign(W0), rtol=1e-6)
        # Loss over all heads after the step: mean BCE of the new biases against the labels.
        bce = np.log1p(np.exp(-b)) * Y + np.log1p(np.exp(b)) * (1 - Y)
        assert out["train_loss"] == pytest.approx(float(bce.mean()), rel=1e-9)
        assert out["train_acc"] == pytest.approx(float(np.mean((b >= 0) == (Y > 0.5))))
        assert out["steps"] == 1.0


def test_heads_limit_training_and_steps_count_batches() -> None:
    """10 rows in batches of 3: 4 steps per epoch. Only head 2 trains; heads 0 and 1 stay bit-identical, and
    the loss is reported over head 2 only."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 2))
    Y = (rng.random((10, 3)) < 0.5).astype(int)
    m = _logistic()
    before = get_parameters(m)
    out = train_local(m, X, Y, epochs=3, learning_rate=0.1, batch_size=3, heads=[2])
    after = get_parameters(m)
    assert out["steps"] == 12.0
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a[:2], b[:2])
        assert not np.array_equal(a[2], b[2])
    z = m.decision_function(X)[:, 2]
    assert out["train_loss"] == pytest.approx(
        float(np.mean(np.logaddexp(0, -z) * Y[:, 2] + np.logaddexp(0, z) * (1 - Y[:, 2])))
    )
    with pytest.raises(ValueError, match="optimizer must be 'adam' or 'sgd', got 'rmsprop'"):
        train_local(m, X, Y, epochs=1, optimizer="rmsprop")


def test_proximal_term_is_masked_to_the_trained_heads() -> None:
    """With heads=[0] and a huge proximal weight, heads 1 and 2 still do not move."""
    m = _logistic()
    before = get_parameters(m)
    Y = np.array([[1, 1, 1], [0, 0, 0]])
    train_local(
        m, np.ones((2, 2)), Y, epochs=3, learning_rate=0.1, batch_size=1, proximal_mu=100.0, heads=[0]
    )
    for a, b in zip(before, get_parameters(m), strict=True):
        np.testing.assert_array_equal(a[1:], b[1:])


def test_relu_gradients_match_finite_differences() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(12, 2))
    Y = (rng.random((12, 3)) < 0.5).astype(float)
    m = FaultClassifier(fault_names=FAULTS, hidden=3, activation="relu", feature_names=NAMES).initialize(2)
    params = [p + 0.3 * rng.normal(size=p.shape) for p in get_parameters(m)]
    grads = _gradients(m, params, X, Y, np.ones(3))

    def loss(ps: list[np.ndarray]) -> float:
        z = m._fault_logits(m._forward(X, ps)[0])
        return float(np.sum(np.mean(np.logaddexp(0, z) - z * Y, axis=0)))

    for i in range(len(params)):
        idx = tuple(rng.integers(0, s) for s in params[i].shape)
        plus, minus = [p.copy() for p in params], [p.copy() for p in params]
        plus[i][idx] += 1e-6
        minus[i][idx] -= 1e-6
        assert grads[i][idx] == pytest.approx((loss(plus) - loss(minus)) / 2e-6, rel=1e-4, abs=1e-7)


def test_platt_calibration_recovers_a_known_map() -> None:
    """Labels drawn with P(y) = sigmoid(2 z - 1) for the head's logit z: Platt scaling finds a ~ 2, c ~ -1 and
    folds them into the head: W_k -> a W_k, b_k -> a b_k + c."""
    rng = np.random.default_rng(0)
    m = _logistic()
    W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    set_parameters(m, [W, np.array([0.0, 0.2, 0.0])])
    X = rng.normal(size=(20_000, 2))
    z = X[:, 1] + 0.2
    y = (rng.random(len(z)) < _sigmoid(2 * z - 1)).astype(float)
    a, c = calibrate_head(m, X, y, head=1)
    assert a == pytest.approx(2.0, abs=0.1) and c == pytest.approx(-1.0, abs=0.1)
    Wn, bn = get_parameters(m)
    np.testing.assert_allclose(Wn[1], a * W[1], rtol=1e-12)
    assert bn[1] == pytest.approx(a * 0.2 + c, rel=1e-12)
    np.testing.assert_array_equal(Wn[[0, 2]], W[[0, 2]])


def test_platt_calibration_keeps_the_head_monotone_and_needs_both_classes() -> None:
    """An anti-correlated head would get a negative slope: it is clamped to 1e-3."""
    rng = np.random.default_rng(1)
    m = _logistic()
    set_parameters(m, [np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.zeros(3)])
    X = rng.normal(size=(5000, 2))
    y = (rng.random(5000) < _sigmoid(-3 * X[:, 0])).astype(float)
    a, _ = calibrate_head(m, X, y, head=0)
    assert a == 1e-3
    with pytest.raises(ValueError, match=r"^calibration needs both classes$"):
        calibrate_head(m, X, np.ones(5000), head=0)


def test_fit_standardises_with_a_floor_for_constant_columns() -> None:
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.normal(3.0, 2.0, size=200), np.full(200, 5.0)])
    Y = np.zeros((200, 3), dtype=int)
    Y[:100, 0] = 1
    m = FaultClassifier(fault_names=FAULTS, hidden=0, epochs=1, feature_names=NAMES).fit(X, Y)
    np.testing.assert_allclose(m.mean_, [X[:, 0].mean(), 5.0])
    np.testing.assert_allclose(m.scale_, [X[:, 0].std(), 1.0])
    assert m.baseline_ is None  # the baseline's inputs are not among these features


@pytest.mark.parametrize(
    ("kwargs", "init", "msg"),
    [
        ({"activation": "sigmoid"}, {}, "activation must be 'tanh' or 'relu', got 'sigmoid'"),
        ({}, {"mean": np.zeros(3)}, r"scaler mean/scale must have shape \(2,\)"),
        ({}, {"scale": np.ones(3)}, r"scaler mean/scale must have shape \(2,\)"),
        ({}, {"scale": np.array([1.0, 0.0])}, r"^scaler scale must be finite and > 0$"),
        ({}, {"scale": np.array([1.0, np.inf])}, r"^scaler scale must be finite and > 0$"),
        ({"fallback_threshold": 0.0}, {}, r"fallback_threshold must be in \(0, 1\) or None, got 0.0"),
        ({"fallback_threshold": 1.0}, {}, r"fallback_threshold must be in \(0, 1\) or None, got 1.0"),
        ({"head_groups": (0, 1, 3)}, {}, r"head_groups must name faults 0..2, got \(0, 1, 3\)"),
        ({"head_groups": (0, -1, 2)}, {}, r"head_groups must name faults 0..2, got \(0, -1, 2\)"),
        ({"head_groups": ((0, 1, 2),)}, {}, "head_groups must name faults 0..2"),
        ({"head_groups": (0, 0, 2)}, {}, r"every fault needs at least one head, got head_groups=\[0, 0, 2\]"),
        ({"head_inputs": (("f0",), ("f1",))}, {}, "head_inputs has 2 entries for 3 heads"),
        (
            {"head_inputs": (("f0",), ("nope",), ("f1",))},
            {},
            r"head 1 reads unknown or no inputs: \['nope'\]",
        ),
        ({"head_inputs": (("f0",), (), ("f1",))}, {}, r"head 1 reads unknown or no inputs: \(\)"),
    ],
)
def test_initialize_refusals(kwargs: dict[str, Any], init: dict[str, Any], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES, **kwargs).initialize(2, **init)


def test_initialize_accepts_a_fallback_inside_the_interval_and_needs_baseline_features() -> None:
    assert _logistic(fallback_threshold=0.3).fallback_threshold == 0.3
    base = HealthyBaseline(("p",), ("t",), np.array([7.0]), np.zeros((3, 1)), np.ones(1))
    with pytest.raises(ValueError, match=r"baseline needs features missing from feature_names: \['p', 't'\]"):
        FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=NAMES).initialize(2, None, None, base)


def test_uninitialised_model_and_bad_input_are_refused() -> None:
    with pytest.raises(
        RuntimeError, match=r"^FaultClassifier is not initialised; call fit\(\) or initialize\(\) first$"
    ):
        FaultClassifier(fault_names=FAULTS).decision_function(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="not initialised"):
        get_parameters(FaultClassifier(fault_names=FAULTS))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\), got \(1, 3\)"):
        _logistic().predict(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\), got \(2,\)"):
        _logistic().predict(np.zeros(2))


def test_glorot_init_by_hand() -> None:
    """Heads read one input each (fan-in 1), 4 hidden units: W1 within sqrt(6 / 5), zero on unread inputs;
    W2 within sqrt(6 / 5); biases zero; thresholds 0.5. The seed fixes the draw."""
    m = FaultClassifier(
        fault_names=FAULTS,
        hidden=4,
        feature_names=NAMES,
        head_inputs=(("f0",), ("f1",), ("f1",)),
        random_state=3,
    )
    m.initialize(2)
    W1, b1, W2, b2 = get_parameters(m)
    lim = np.sqrt(6.0 / 5.0)
    assert np.abs(W1).max() <= lim and np.abs(W1).max() > 0.8 * lim
    assert np.all(W1[0, 1] == 0) and np.all(W1[1, 0] == 0) and np.all(W1[0, 0] != 0)
    assert np.abs(W2).max() <= lim and np.abs(W2).max() > 0.5 * lim
    assert not b1.any() and not b2.any()
    np.testing.assert_array_equal(m.thresholds_, [0.5, 0.5, 0.5])
    again = FaultClassifier(
        fault_names=FAULTS,
        hidden=4,
        feature_names=NAMES,
        head_inputs=(("f0",), ("f1",), ("f1",)),
        random_state=3,
    )
    np.testing.assert_array_equal(get_parameters(again.initialize(2))[0], W1)


def test_input_names() -> None:
    assert _logistic().input_names() == ["f0", "f1"]
    assert FaultClassifier(fault_names=FAULTS, hidden=0).initialize(2).input_names() == ["x0", "x1"]
    assert FaultClassifier(fault_names=FAULTS, hidden=0, feature_names=("a",)).initialize(
        2
    ).input_names() == ["x0", "x1"]


def test_set_parameters_refusals() -> None:
    m = _logistic()
    W, b = get_parameters(m)
    with pytest.raises(ValueError, match="expected 2 parameter arrays, got 1"):
        set_parameters(m, [W])
    with pytest.raises(ValueError, match=r"parameter W: expected shape \(3, 2\), got \(2, 3\)"):
        set_parameters(m, [W.T, b])
    with pytest.raises(ValueError, match="parameter b contains non-finite values"):
        set_parameters(m, [W, np.array([0.0, np.nan, 0.0])])
    W[0, 0] = 7.0
    set_parameters(m, [W, b])
    W[0, 0] = 8.0  # the model keeps its own copy
    assert get_parameters(m)[0][0, 0] == 7.0


def test_serialised_form_by_hand() -> None:
    m = FaultClassifier(fault_names=FAULTS,
        hidden=np.int64(2), feature_names=NAMES, head_groups=(0, 1, 1, 2), fallback_threshold=0.25,
        head_inputs=(("f0",), ("f1",), ("f0", "f1"), ("f1",)),
    ).initialize(2, np.array([1.0, 2.0]), np.array([3.0, 4.0]))  # fmt: skip
    arrays, meta = to_arrays(m)
    assert sorted(arrays) == ["W1", "W2", "b1", "b2", "feature_mean", "feature_scale", "thresholds"]
    assert meta["format_version"] == 2 and meta["model_kind"] == "fedtwin.fault_heads"
    assert meta["architecture"] == "mlp_heads"
    defaults = {"hidden": 2, "epochs": 60, "learning_rate": 0.01, "batch_size": 128, "alpha": 1e-4}
    defaults |= {"activation": "tanh", "random_state": 0, "fallback_threshold": 0.25}
    assert meta["hyperparameters"] == {
        **defaults,
        "head_inputs": [["f0"], ["f1"], ["f0", "f1"], ["f1"]],
        "head_groups": [0, 1, 1, 2],
    }
    assert type(meta["hyperparameters"]["hidden"]) is int
    assert meta["feature_names"] == ["f0", "f1"] and meta["n_features"] == 2
    assert meta["feature_mean"] == [1.0, 2.0] and meta["feature_scale"] == [3.0, 4.0]
    assert meta["thresholds"] == [0.5, 0.5, 0.5] and meta["param_names"] == ["W1", "b1", "W2", "b2"]
    assert meta["baseline"] is None and meta["input_names"] == ["f0", "f1"]
    assert meta["array_shapes"]["W1"] == [4, 2, 2] and meta["array_shapes"]["thresholds"] == [3]
    assert model_config(m) == meta
    assert _hyper(meta) == {
        **defaults,
        "head_inputs": (("f0",), ("f1",), ("f0", "f1"), ("f1",)),
        "head_groups": (0, 1, 1, 2),
    }
    back = from_arrays(arrays, json.loads(json.dumps(meta)))
    assert back.fallback_threshold == 0.25 and back.head_groups == (0, 1, 1, 2)
    np.testing.assert_array_equal(back.mean_, [1.0, 2.0])
    assert to_arrays(_logistic())[1]["architecture"] == "logistic_heads"


def test_from_arrays_refusals() -> None:
    arrays, meta = to_arrays(_logistic())
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({}, {"model_kind": "other"}, "unknown model_kind 'other'"),
        ({}, {"format_version": 3}, "unsupported format_version 3"),
        ({}, {"format_version": 0}, "unsupported format_version 0"),
        ({"W": arrays["W"].astype(np.int64)}, {}, "array 'W' has non-float dtype int64"),
        ({}, {"param_names": ["W1", "b1", "W2", "b2"]}, r"^param_names do not match the architecture$"),
        ({"thresholds": np.array([0.5, 0.5])}, {}, r"^thresholds must be one value in \(0, 1\) per fault$"),
        (
            {"thresholds": np.array([0.5, 0.0, 0.5])},
            {},
            r"^thresholds must be one value in \(0, 1\) per fault$",
        ),
        (
            {"thresholds": np.array([0.5, 1.0, 0.5])},
            {},
            r"^thresholds must be one value in \(0, 1\) per fault$",
        ),
    ]
    for a, m, msg in cases:
        with pytest.raises(ValueError, match=msg):
            from_arrays({**arrays, **a}, {**meta, **m})
    missing = {k: v for k, v in meta.items() if k != "format_version"}
    with pytest.raises(ValueError, match="unsupported format_version None"):
        from_arrays(arrays, missing)
    ok = from_arrays({**arrays, "thresholds": np.array([0.3, 0.7, 0.99])}, meta)
    np.testing.assert_array_equal(ok.thresholds_, [0.3, 0.7, 0.99])


def test_training_targets_are_checked() -> None:
    m = _logistic()
    with pytest.raises(ValueError, match=r"^Y must have shape \(4, 3\), got \(4, 2\)$"):
        train_local(m, np.zeros((4, 2)), np.zeros((4, 2)), epochs=1)
    with pytest.raises(ValueError, match=r"^Y must have shape \(4, 3\), got \(4,\)$"):
        train_local(m, np.zeros((4, 2)), np.zeros(4), epochs=1)
    with pytest.raises(ValueError, match=r"^Y must be 0/1$"):
        train_local(m, np.zeros((4, 2)), np.full((4, 3), 2), epochs=1)


def test_fit_with_baseline_features_standardises_the_augmented_input() -> None:
    """With the baseline's inputs and targets among the features, fit adds its residual columns and the
    scaler covers features plus residuals."""
    from fedtwin.training.recipe import BASELINE_INPUTS, BASELINE_TARGETS, PUMP_BASELINE

    names = list(BASELINE_INPUTS) + list(BASELINE_TARGETS)
    rng = np.random.default_rng(6)
    n = 300
    p, w = rng.uniform(5, 9, n), rng.uniform(1600, 2200, n)
    T = np.column_stack([0.5 + 0.1 * p + 1e-4 * w + 0.01 * rng.normal(size=n) for _ in BASELINE_TARGETS])
    X = np.column_stack([p, w, T])
    Y = np.zeros((n, 3), dtype=int)
    Y[:100, 1] = 1
    X[:100, 2] += 0.3
    m = FaultClassifier(fault_names=FAULTS, hidden=0, epochs=1, feature_names=names).fit(X, Y, PUMP_BASELINE)
    assert m.baseline_ is not None
    width = len(names) + len(m.baseline_.output_names)
    assert m.mean_.shape == (width,) and m.n_inputs_ == width
    np.testing.assert_allclose(m.mean_, m.augment(X).mean(axis=0), rtol=1e-12)
    assert m.input_names()[len(names) :] == list(m.baseline_.output_names)
    arrays, meta = to_arrays(m)
    assert {"baseline_coef", "baseline_scale", "baseline_input_ref"} <= set(arrays)
    back = from_arrays(arrays, json.loads(json.dumps(meta)))
    np.testing.assert_allclose(back.predict_proba(X), m.predict_proba(X), rtol=1e-12)


def test_platt_calibration_is_the_regularised_log_loss_optimum() -> None:
    """40 held-out rows: (a, c) must minimise mean log-loss(a z + c) + 1e-3 / 2 (a - 1)^2, found here by a
    general-purpose optimiser."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    m = _logistic()
    set_parameters(m, [np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.zeros(3)])
    X = rng.normal(size=(40, 2))
    z = X[:, 0]
    y = (rng.random(40) < _sigmoid(0.5 * z + 0.3)).astype(float)

    def objective(v: np.ndarray) -> float:
        t = v[0] * z + v[1]
        return float(np.mean(np.logaddexp(0, t) - y * t) + 1e-3 / 2 * (v[0] - 1) ** 2)

    best = minimize(objective, [1.0, 0.0], method="BFGS", options={"gtol": 1e-12}).x
    a, c = calibrate_head(m, X, y, head=0)
    np.testing.assert_allclose([a, c], best, rtol=1e-6, atol=1e-8)


def test_noisy_or_head_is_not_calibrated_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    m = FaultClassifier(
        fault_names=FAULTS, hidden=0, feature_names=NAMES, head_groups=(0, 1, 1, 2)
    ).initialize(2)
    with caplog.at_level(logging.INFO, logger="federated.model"):
        assert calibrate_head(m, np.zeros((4, 2)), np.array([0, 1, 0, 1]), head=1) == (1.0, 0.0)
    assert [r.getMessage() for r in caplog.records] == ["head 1 is a noisy-OR of 2 heads: not calibrated"]


def test_sigmoid_of_integer_logits_is_a_float() -> None:
    np.testing.assert_allclose(_sigmoid(np.array([0, 2, -2])), [0.5, 0.88079708, 0.11920292], rtol=1e-7)


def test_decide_returns_integers_and_applies_the_fallback_to_a_lone_fault() -> None:
    out = decide(np.array([[0.7, 0.2]]), np.array([0.5, 0.5]))
    assert out.dtype == np.int64
    # One fault below its threshold but above the fallback is the most probable fault: it fires.
    np.testing.assert_array_equal(decide(np.array([[0.45], [0.35]]), np.array([0.5]), 0.4), [[1], [0]])


def test_constructor_defaults() -> None:
    assert FaultClassifier(fault_names=FAULTS).get_params() == {
        "hidden": 16, "epochs": 60, "learning_rate": 0.01, "batch_size": 128, "alpha": 1e-4,
        "activation": "tanh", "fault_names": ("leak", "blocked_inlet", "bearing"), "feature_names": None,
        "random_state": 0,
        "head_inputs": None, "head_groups": None, "fallback_threshold": None,
    }  # fmt: skip
