"""Federated healthy baseline: equals the pooled least-squares fit and survives serialisation."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from federated.baseline import (
    BaselineSpec,
    HealthyBaseline,
    design,
    local_gram,
    local_residual_ss,
    set_residual_scale,
    solve_baseline,
)
from federated.model import FaultClassifier, from_arrays, model_config, model_from_config, to_arrays
from fedtwin.training.recipe import BASELINE_INPUTS, BASELINE_TARGETS, PUMP_BASELINE
from plant_models.spec import FAULTS

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
    base = solve_baseline((local_gram(X, Y, NAMES, PUMP_BASELINE) for X, Y in parts), PUMP_BASELINE)
    ss = [local_residual_ss(X, Y, NAMES, base, PUMP_BASELINE) for X, Y in parts]
    base = set_residual_scale(base, ss, PUMP_BASELINE)
    X = np.vstack([x for x, y in parts if y.sum() == 0])
    phi = design(X[:, :2], base.input_ref)
    pooled, *_ = np.linalg.lstsq(phi, X[:, 2:], rcond=None)
    np.testing.assert_allclose(phi @ base.coef, phi @ pooled, atol=1e-4)  # tiny ridge; noise is 2e-3
    np.testing.assert_allclose(base.scale, 0.002, rtol=0.15)
    # The fault row shift (0.05 = 25 healthy sigmas) stands out after the asinh transform.
    Xf, _ = parts[1]
    assert np.median(base.transform(Xf, NAMES)[:, 0]) > 3.0

    model = FaultClassifier(hidden=2, fault_names=FAULTS, feature_names=NAMES).initialize(
        len(NAMES), None, None, base
    )
    assert model.augment(Xf).shape == (len(Xf), len(NAMES) + len(base.output_names))
    arrays, meta = to_arrays(model)
    back = from_arrays(arrays, json.loads(json.dumps(meta)))
    np.testing.assert_allclose(back.predict_proba(Xf), model.predict_proba(Xf))
    client_side = model_from_config(
        json.loads(json.dumps(model_config(model))), [a.copy() for a in arrays.values()][:4]
    )
    np.testing.assert_allclose(client_side.predict_proba(Xf), model.predict_proba(Xf))


def test_design_columns_by_hand() -> None:
    """Inputs normalised by (7, 1916): (7, 3832) -> u = (1, 2); columns 1, u0, u1, u0^2, u0 u1, u1^2."""
    np.testing.assert_array_equal(
        design(np.array([[7.0, 3832.0], [0.0, 0.0]]), np.array([7.0, 1916.0])),
        [[1, 1, 2, 1, 2, 4], [1, 0, 0, 0, 0, 0]],
    )
    np.testing.assert_array_equal(
        design(np.array([[14], [7]], dtype=np.int64), np.array([7.0])), [[1, 2, 4], [1, 1, 1]]
    )


ONE = ("pressure_mean_bar",)  # one input: design [1, u, u^2], 3 terms
T_ONLY = BaselineSpec(inputs=ONE, input_ref=(7.0,), targets=("t",))


def _spec(signature: tuple[str, ...], shared: tuple[str, ...]) -> BaselineSpec:
    """The small baseline's spec: input p (ref 7), targets a, s, h; the signature fault in label column 0."""
    return BaselineSpec(
        ONE, (7.0,), ("a", "s", "h"), signature, shared, signature_column=0, signature_fault="leak"
    )


def _flat_rows(values: list[float], n_faulty: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows at u = 0 (pressure 0) with target t; ``n_faulty`` extra rows carry a fault and t = 1000."""
    t = np.array(values + [1000.0] * n_faulty)
    X = np.column_stack([np.zeros(len(t)), t])
    Y = np.zeros((len(t), 3), dtype=np.int64)
    Y[len(values) :, 1] = 1
    return X, Y


def test_solve_baseline_ridge_and_row_floor_by_hand() -> None:
    """At u = 0 only the constant column is non-zero: G = n e0 e0^T, C = (sum t) e0, so
    coef0 = sum t / (n + ridge n) = mean(t) / (1 + ridge): 2 / 1.25 = 1.6 for ridge 0.25. Faulty rows are not
    used. Three terms need 9 healthy rows: 8 are refused."""
    names = ["pressure_mean_bar", "t"]
    X, Y = _flat_rows([1.0, 3.0] * 4 + [2.0], n_faulty=5)
    g = local_gram(X, Y, names, T_ONLY)
    assert float(g["count"]) == 9.0
    base = solve_baseline([g], T_ONLY, ridge=0.25)
    np.testing.assert_allclose(base.coef, [[1.6], [0.0], [0.0]], atol=1e-12)
    assert base.inputs == ONE and base.targets == ("t",)
    np.testing.assert_array_equal(base.input_ref, [7.0])
    np.testing.assert_array_equal(base.scale, [1.0])
    X8, Y8 = _flat_rows([2.0] * 8, n_faulty=5)
    with pytest.raises(ValueError, match=r"^too few healthy rows \(8\) to fit a 3-term baseline$"):
        solve_baseline([local_gram(X8, Y8, names, T_ONLY)], T_ONLY)
    # Two sites of 4 and 5 rows: the statistics add up to the 9-row fit.
    a, b = local_gram(X[:4], Y[:4], names, T_ONLY), local_gram(X[4:], Y[4:], names, T_ONLY)
    np.testing.assert_allclose(solve_baseline([a, b], T_ONLY, ridge=0.25).coef, base.coef, atol=1e-12)


def _small(
    shared_coef: np.ndarray | None = None, scale: tuple[float, ...] = (2.0, 1.0, 4.0)
) -> HealthyBaseline:
    """Targets a, s, h predicted as constants 1, 2, 3 (coef row 0); s is the leak signature, h shared."""
    coef = np.zeros((3, 3))
    coef[0] = [1.0, 2.0, 3.0]
    return HealthyBaseline(
        ONE, ("a", "s", "h"), np.array([7.0]), coef, np.array(scale),
        ("s",) if shared_coef is not None else (), ("h",) if shared_coef is not None else (), shared_coef,
    )  # fmt: skip


SMALL_NAMES = ["pressure_mean_bar", "a", "s", "h"]


def test_transform_by_hand_with_leak_removal() -> None:
    """Row (p=0, a=3, s=4, h=9): residuals (2, 2, 6); asinh(residual / scale) = asinh(1, 2, 1.5); the
    leak-removed h residual is 6 - (0.5 * 2 + 1) = 4 -> asinh(4 / 4)."""
    b = _small(np.array([[0.5], [1.0]]))
    assert b.output_names == ("resid_a", "resid_s", "resid_h", "resid_h_leak_removed")
    X = np.array([[0.0, 3.0, 4.0, 9.0]])
    np.testing.assert_allclose(b.raw_residuals(X, SMALL_NAMES), [[2.0, 2.0, 6.0]])
    np.testing.assert_allclose(b.transform(X, SMALL_NAMES), np.arcsinh([[1.0, 2.0, 1.5, 1.0]]), rtol=1e-12)
    plain = _small()
    assert plain.output_names == ("resid_a", "resid_s", "resid_h")
    np.testing.assert_allclose(plain.transform(X, SMALL_NAMES), np.arcsinh([[1.0, 2.0, 1.5]]), rtol=1e-12)


def test_residual_statistics_and_scale_by_hand(caplog: pytest.LogCaptureFixture) -> None:
    """Residuals of a and s: healthy rows (1, 1), (3, -1); leak-only rows (s residual r, h residual 2r + 0.5)
    for r = 1..4 and a bearing row that must not enter the leak fit.
    Scale: sqrt((1 + 9) / 2) = sqrt(5) for a, sqrt((1 + 1) / 2) = 1 for s, and h (healthy residual 0) is
    floored at 1e-9 + 1e-6 * |3|. Leak fit: h = 2 s + 0.5 from 4 leak rows (9 more at another site)."""
    base = _small()
    rows = [[0, 2, 3, 3], [0, 4, 1, 3]]  # healthy: residuals a = 1, 3; s = 1, -1; h = 0
    rows += [[0, 1, 2 + r, 3 + 2 * r + 0.5] for r in (1.0, 2.0, 3.0, 4.0)]  # leak only
    rows += [[0, 1, 100, -100]]  # bearing
    X = np.array(rows, dtype=np.float64)
    Y = np.zeros((len(X), 3), dtype=np.int64)
    Y[2:6, 0] = 1
    Y[6, 2] = 1
    ss = local_residual_ss(X, Y, SMALL_NAMES, base, _spec(("s",), ("h",)))
    np.testing.assert_allclose(ss["ss"], [10.0, 2.0, 0.0])
    assert float(ss["count"]) == 2.0 and float(ss["signature_rows"]) == 4.0
    # Normal equations over healthy + leak rows (r = 1, -1, 1, 2, 3, 4): E = [r, 1].
    np.testing.assert_allclose(ss["shared_gram"], [[32.0, 10.0], [10.0, 6.0]])
    # Only leak rows have h residuals: sum r (2r + 0.5) = 2 * 30 + 0.5 * 10 = 65; sum (2r + 0.5) = 22.
    np.testing.assert_allclose(ss["shared_cross"], [[65.0], [22.0]])
    other_site = {"ss": np.zeros(3), "count": np.array(0.0), "shared_gram": np.zeros((2, 2)),
                  "shared_cross": np.zeros((2, 1)), "signature_rows": np.array(6.0)}  # fmt: skip
    fitted = set_residual_scale(base, [ss, other_site], _spec(("s",), ("h",)), min_signature_rows=10)
    np.testing.assert_allclose(fitted.scale, [np.sqrt(5.0), 1.0, 1e-9 + 3e-6], rtol=1e-12)
    assert fitted.signature == ("s",) and fitted.shared == ("h",)
    assert fitted.shared_coef is not None
    # Healthy rows (h residual 0 at r = +-1) pull the line: solve the normal equations above.
    np.testing.assert_allclose(
        fitted.shared_coef, np.linalg.solve([[32.0, 10.0], [10.0, 6.0]], [[65.0], [22.0]])
    )
    with caplog.at_level(logging.WARNING, logger="federated.baseline"):
        few = set_residual_scale(base, [ss], _spec(("s",), ("h",)), min_signature_rows=5)
    assert few.shared_coef is not None and np.all(few.shared_coef == 0)
    assert any(
        "only 4 leak rows at the sites: its share not removed" in r.getMessage() for r in caplog.records
    )
    # No leak statistics at all (signature not among the targets): no removal, no renamed columns.
    assert "shared_gram" not in local_residual_ss(X, Y, SMALL_NAMES, base, _spec(("zz",), ("h",)))
    assert "shared_gram" not in local_residual_ss(X, Y, SMALL_NAMES, base, _spec((), ("h",)))
    none = set_residual_scale(
        base, [{"ss": np.array([4.0, 0, 0]), "count": np.array(0.0)}], _spec(("s",), ("h",))
    )
    assert none.shared_coef is None and none.signature == () and none.shared == ()
    np.testing.assert_allclose(none.scale[0], 2.0)  # no healthy rows counted: divided by 1, not 0


def test_leak_statistics_edge_cases() -> None:
    """Signature and shared residuals may use up every target; a label matrix without fault columns has
    no leak rows (every row counts as free of other faults)."""
    base = _small()
    X = np.array([[0, 2, 3, 3], [0, 4, 1, 3], [0, 1, 4, 5.5]], dtype=np.float64)
    ss = local_residual_ss(X, np.zeros((3, 3), dtype=int), SMALL_NAMES, base, _spec(("s",), ("a", "h")))
    assert ss["shared_cross"].shape == (2, 2)
    none = local_residual_ss(X, np.zeros((3, 0), dtype=int), SMALL_NAMES, base, _spec(("s",), ("h",)))
    assert float(none["signature_rows"]) == 0.0 and float(none["count"]) == 3.0
    np.testing.assert_allclose(none["shared_gram"], [[1 + 1 + 4, 1 - 1 + 2], [1 - 1 + 2, 3]])
    assert _small().to_json()["shared_coef"] is None
    assert HealthyBaseline.from_json(_small().to_json()).shared_coef is None


def test_from_json_roundtrip_and_refusals() -> None:
    good = _small(np.array([[0.5], [1.0]]))
    d = json.loads(json.dumps(good.to_json()))
    back = HealthyBaseline.from_json(d)
    assert back.signature == ("s",) and back.shared == ("h",)
    np.testing.assert_array_equal(back.shared_coef, [[0.5], [1.0]])  # type: ignore[arg-type]
    np.testing.assert_array_equal(back.coef, good.coef)
    old = {k: v for k, v in d.items() if k not in ("signature", "shared", "shared_coef")}
    legacy = HealthyBaseline.from_json(old)  # written before leak removal
    assert legacy.shared_coef is None and legacy.signature == () and legacy.output_names[-1] == "resid_h"
    cases = [
        ({"coef": [[1.0, 2.0, 3.0]] * 2}, "baseline coef/scale shapes do not match inputs/targets"),
        ({"scale": [1.0, 1.0]}, "baseline coef/scale shapes do not match inputs/targets"),
        ({"coef": [[np.nan, 2.0, 3.0]] + [[0.0] * 3] * 2}, "baseline coef must be finite and scale > 0"),
        ({"scale": [1.0, 0.0, 1.0]}, "baseline coef must be finite and scale > 0"),
        ({"signature": ["zz"]}, "signature/shared residuals must be baseline targets"),
        ({"shared_coef": [[0.5]]}, "share removal coefficients do not match signature/shared"),
        ({"shared_coef": [[0.5], [np.inf]]}, "share removal coefficients do not match signature/shared"),
    ]
    for change, msg in cases:
        with pytest.raises(ValueError, match=f"^{msg}$"):
            HealthyBaseline.from_json({**d, **change})
    # Using every target as signature or shared is allowed (subset, not strict subset).
    all_targets = {**d, "signature": ["a", "s"], "shared": ["h"], "shared_coef": [[0.0], [0.0], [0.0]]}
    assert HealthyBaseline.from_json(all_targets).signature == ("a", "s")


def test_removed_columns_are_named_after_the_signature_fault() -> None:
    """The spec names the fault whose share is removed; models serialised before it was stored read 'leak'."""
    base = _small()
    X = np.array([[0, 2, 3, 3], [0, 4, 1, 3], [0, 1, 4, 5.5]], dtype=np.float64)
    Y = np.zeros((3, 3), dtype=np.int64)
    spec = BaselineSpec(
        ONE, (7.0,), ("a", "s", "h"), ("s",), ("h",), signature_column=2, signature_fault="wear"
    )
    fitted = set_residual_scale(base, [local_residual_ss(X, Y, SMALL_NAMES, base, spec)], spec, 0)
    assert fitted.output_names[-1] == "resid_h_wear_removed"
    d = json.loads(json.dumps(fitted.to_json()))
    assert d["signature_fault"] == "wear" and HealthyBaseline.from_json(d).output_names == fitted.output_names
    legacy = HealthyBaseline.from_json({k: v for k, v in d.items() if k != "signature_fault"})
    assert legacy.output_names[-1] == "resid_h_leak_removed"
    with pytest.raises(ValueError, match=r"^input_ref needs one positive value per input"):
        BaselineSpec(ONE, (7.0, 1.0), ("a",))


def test_baseline_spec_travels_as_plain_json() -> None:
    """A site call carries the spec as plain data: the round trip gives the same frozen spec."""
    from fedtwin.training.recipe import PUMP_BASELINE

    d = json.loads(json.dumps(PUMP_BASELINE.to_json()))
    assert d["input_ref"] == [7.0, 1916.0] and d["signature_column"] == 0 and d["signature_fault"] == "leak"
    assert BaselineSpec.from_json(d) == PUMP_BASELINE
    with pytest.raises(ValueError, match=r"^malformed baseline spec"):
        BaselineSpec.from_json({"inputs": ["p"]})
