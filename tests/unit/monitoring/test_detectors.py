"""Shared input validation and the KS / prediction detectors (fast: scipy only)."""

import numpy as np
import pandas as pd
import pytest

from monitoring.detectors import DriftDetector, DriftResult, prepare_input
from monitoring.drift import KSDriftDetector, PredictionDriftDetector, alert_rate_pvalue, prediction_drift

FEATURES = [f"f{i}" for i in range(6)]


def frame(seed: int, n: int = 300, shift: float = 0.0, cols: list[str] = FEATURES) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(loc=shift, size=(n, len(cols))), columns=cols)


def test_ks_is_a_drift_detector() -> None:
    assert isinstance(KSDriftDetector(), DriftDetector)


def test_same_distribution_is_no_drift() -> None:
    result = KSDriftDetector().fit(frame(1)).check(frame(2))
    assert result.status == "no_drift"
    assert result.is_valid and not result.is_drift
    assert set(result.per_feature) == set(FEATURES)
    assert result.drift_share < 0.5
    assert (result.n_reference, result.n_current) == (300, 300)


def test_shifted_distribution_is_drift() -> None:
    result = KSDriftDetector().fit(frame(1)).check(frame(2, shift=1.0))
    assert result.status == "drift"
    assert result.drifted_features == FEATURES
    assert result.drift_share == 1.0
    assert all(p < 1e-6 for p in result.per_feature.values())


def test_share_below_threshold_is_no_drift_but_lists_features() -> None:
    current = frame(2)
    current["f0"] += 2.0
    result = KSDriftDetector(drift_share=0.5).fit(frame(1)).check(current)
    assert result.status == "no_drift"
    assert "f0" in result.drifted_features


@pytest.mark.parametrize("n_ref, n_cur", [(10, 300), (300, 10)])
def test_too_few_rows_is_not_enough_data(n_ref: int, n_cur: int) -> None:
    result = KSDriftDetector(min_rows=30).fit(frame(1, n=n_ref)).check(frame(2, n=n_cur, shift=5.0))
    assert result.status == "not_enough_data"
    assert "10 rows" in result.reason and "30" in result.reason
    assert not result.drifted_features


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_invalid_data(bad: float) -> None:
    current = frame(2, shift=5.0)
    current.loc[7, "f3"] = bad
    result = KSDriftDetector().fit(frame(1)).check(current)
    assert result.status == "invalid_data"
    assert "f3" in result.reason and "current" in result.reason
    assert not result.is_drift


def test_non_finite_reference_is_invalid_data() -> None:
    reference = frame(1)
    reference.loc[0, "f1"] = np.nan
    result = KSDriftDetector().fit(reference).check(frame(2))
    assert result.status == "invalid_data"
    assert "reference" in result.reason and "f1" in result.reason


def test_all_constant_is_invalid_data() -> None:
    reference = pd.DataFrame({"a": np.ones(100), "b": np.full(100, 3.0)})
    result = KSDriftDetector().fit(reference).check(reference + 1.0)
    assert result.status == "invalid_data"
    assert "constant" in result.reason


def test_constant_columns_are_ignored_and_noted() -> None:
    reference, current = frame(1), frame(2)
    reference["setpoint"] = 1916.0
    current["setpoint"] = 1800.0  # would look like drift if it were compared
    result = KSDriftDetector().fit(reference).check(current)
    assert result.status == "no_drift"
    assert result.ignored_features == ["setpoint"]
    assert "setpoint" not in result.per_feature
    assert "constant in reference" in result.reason and "not in current" in result.reason


def test_missing_column_is_invalid_data() -> None:
    result = KSDriftDetector().fit(frame(1)).check(frame(2).drop(columns=["f2"]))
    assert result.status == "invalid_data"
    assert "f2" in result.reason


def test_non_numeric_reference_columns_are_skipped() -> None:
    reference, current = frame(1), frame(2)
    reference["asset"] = "pump-1"
    result = KSDriftDetector().fit(reference).check(current)
    assert result.status == "no_drift"
    assert "asset" in result.reason


def test_check_before_fit_raises() -> None:
    with pytest.raises(RuntimeError):
        KSDriftDetector().check(frame(1))


def test_prepare_input_keeps_requested_columns_only() -> None:
    prepared = prepare_input(frame(1), frame(2), columns=["f0", "f1"], min_rows=30)
    assert not isinstance(prepared, tuple)
    assert prepared.columns == ["f0", "f1"]


def test_result_round_trips_through_dict() -> None:
    result = KSDriftDetector().fit(frame(1)).check(frame(2, shift=1.0))
    again = DriftResult.from_dict(result.to_dict())
    assert again.status == result.status and again.per_feature == pytest.approx(result.per_feature)


def alerts(rate: float, n: int = 400, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < rate).astype(float)


def test_alert_rate_change_is_prediction_drift() -> None:
    reference = pd.DataFrame({"leak": alerts(0.02, seed=1), "bearing": np.zeros(400)})
    current = pd.DataFrame({"leak": alerts(0.02, seed=2), "bearing": alerts(0.15, seed=3)})
    result = prediction_drift(reference, current)
    assert result.status == "drift"
    assert result.drifted_features == [
        "bearing"
    ]  # never fired in the reference: kept, not dropped as constant
    assert "fisher" in result.methods["bearing"]


def test_stable_alert_rates_and_scores_are_no_prediction_drift() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"leak": alerts(0.05, seed=1), "leak_score": rng.random(400)})
    current = pd.DataFrame({"leak": alerts(0.05, seed=2), "leak_score": rng.random(400)})
    result = PredictionDriftDetector().fit(reference).check(current)
    assert result.status == "no_drift"
    assert result.methods["leak_score"] == "ks_2samp"


def test_alert_rate_pvalue() -> None:
    assert alert_rate_pvalue(5, 500, 5, 500) == pytest.approx(1.0)
    assert alert_rate_pvalue(5, 500, 60, 500) < 1e-6
