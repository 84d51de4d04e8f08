"""Shared input validation and the KS / prediction detectors (fast: scipy only)."""

import json

import numpy as np
import pandas as pd
import pytest

from monitoring.detectors import BaseDriftDetector, Comparison, DriftDetector, DriftResult, prepare_input
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


# ---------------------------------------------------------------- thresholds at equality
class Scripted(BaseDriftDetector):
    """A detector whose per-column verdicts are given: isolates the shared share/status logic."""

    name = "scripted"

    def __init__(self, drifted: dict[str, bool], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.drifted = drifted

    def _compare(self, reference: pd.DataFrame, current: pd.DataFrame) -> Comparison:
        scores = {c: 0.0 if self.drifted[c] else 1.0 for c in reference.columns}
        return Comparison(scores, {c: self.drifted[c] for c in reference.columns})


@pytest.mark.parametrize(
    ("n_drifted", "threshold", "status"),
    [(2, 0.5, "drift"), (1, 0.5, "no_drift"), (3, 0.75, "drift"), (2, 0.75, "no_drift"), (4, 1.0, "drift")],
)
def test_drift_share_equal_to_the_threshold_is_drift(n_drifted: int, threshold: float, status: str) -> None:
    cols = ["a", "b", "c", "d"]
    drifted = {c: i < n_drifted for i, c in enumerate(cols)}
    det = Scripted(drifted, drift_share=threshold, min_rows=2).fit(frame(1, n=5, cols=cols))
    result = det.check(frame(2, n=5, cols=cols))
    assert result.status == status
    assert result.drift_share == n_drifted / 4 and result.threshold == threshold
    assert result.drifted_features == cols[:n_drifted]
    sign = ">=" if status == "drift" else "<"
    assert result.reason.startswith(
        f"{n_drifted} of 4 features drifted (share {n_drifted / 4:.2f} {sign} threshold {threshold:.2f})"
    )
    assert result.detector == "scripted" and (result.n_reference, result.n_current) == (5, 5)


def test_reason_lists_at_most_eight_drifted_features() -> None:
    cols = [f"c{i}" for i in range(10)]
    det = Scripted(dict.fromkeys(cols, True), min_rows=2).fit(frame(1, n=5, cols=cols))
    reason = det.check(frame(2, n=5, cols=cols)).reason
    assert reason.endswith(": c0, c1, c2, c3, c4, c5, c6, c7, ... (+2)")
    det = Scripted(dict.fromkeys(cols[:8], True), min_rows=2).fit(frame(1, n=5, cols=cols[:8]))
    assert det.check(frame(2, n=5, cols=cols[:8])).reason.endswith(": c0, c1, c2, c3, c4, c5, c6, c7")
    det = Scripted({"a": False}, min_rows=2).fit(frame(1, n=5, cols=["a"]))
    assert (
        det.check(frame(2, n=5, cols=["a"])).reason == "0 of 1 features drifted (share 0.00 < threshold 0.50)"
    )


def test_ks_p_value_equal_to_alpha_is_not_drift() -> None:
    from scipy.stats import ks_2samp

    ref, cur = frame(1, n=60, cols=["x"]), frame(2, n=60, shift=0.3, cols=["x"])
    p = float(ks_2samp(ref["x"].to_numpy(), cur["x"].to_numpy()).pvalue)
    at = KSDriftDetector(alpha=p, drift_share=1.0).fit(ref).check(cur)
    assert at.status == "no_drift" and at.per_feature["x"] == p
    above = KSDriftDetector(alpha=float(np.nextafter(p, 1.0)), drift_share=1.0).fit(ref).check(cur)
    assert above.status == "drift" and above.drifted_features == ["x"]
    assert above.methods == {"x": "ks_2samp"} and above.score_kind == "p_value"


def test_prediction_p_value_equal_to_alpha_is_not_drift() -> None:
    ref = pd.DataFrame({"leak": alerts(0.05, n=200, seed=1)})
    cur = pd.DataFrame({"leak": alerts(0.12, n=200, seed=2)})
    p = alert_rate_pvalue(int(ref["leak"].sum()), 200, int(cur["leak"].sum()), 200)
    assert PredictionDriftDetector(alpha=p).fit(ref).check(cur).status == "no_drift"
    assert PredictionDriftDetector(alpha=float(np.nextafter(p, 1.0))).fit(ref).check(cur).status == "drift"


def test_prediction_detector_on_constant_outputs() -> None:
    ref = pd.DataFrame({"score": np.full(40, 0.2)})
    same = PredictionDriftDetector(min_rows=30).fit(ref).check(pd.DataFrame({"score": np.full(40, 0.2)}))
    assert (
        same.status == "no_drift"
        and same.per_feature == {"score": 1.0}
        and same.methods["score"] == "constant"
    )
    moved = PredictionDriftDetector(min_rows=30).fit(ref).check(pd.DataFrame({"score": np.full(40, 0.3)}))
    assert moved.status == "drift" and moved.per_feature == {"score": 0.0}
    assert ref.equals(pd.DataFrame({"score": np.full(40, 0.2)}))  # fit keeps a copy; inputs untouched


def test_alert_rate_method_names_both_rates() -> None:
    ref = pd.DataFrame({"leak": np.r_[np.ones(10), np.zeros(30)]})
    cur = pd.DataFrame({"leak": np.r_[np.ones(20), np.zeros(20)]})
    result = PredictionDriftDetector(min_rows=30).fit(ref).check(cur)
    assert result.methods["leak"] == "fisher_exact alert rate 0.250 -> 0.500"
    assert result.per_feature["leak"] == pytest.approx(alert_rate_pvalue(10, 40, 20, 40))


def test_alert_rate_pvalue_matches_fishers_exact_test() -> None:
    # Table [[3, 1], [1, 3]]: P(a) = C(4, a)^2 / 70 = 1, 16, 36, 16, 1 (/70) for a = 0..4; the two-sided
    # p-value sums those not above P(3) = 16/70: (1 + 16 + 16 + 1) / 70
    assert alert_rate_pvalue(1, 4, 3, 4) == pytest.approx(34 / 70)
    assert alert_rate_pvalue(0, 10, 0, 10) == 1.0


# ---------------------------------------------------------------- input limits
def test_min_rows_is_inclusive() -> None:
    det = KSDriftDetector(min_rows=30)
    assert det.fit(frame(1, n=30)).check(frame(2, n=30)).is_valid
    short = det.fit(frame(1, n=30)).check(frame(2, n=29))
    assert short.status == "not_enough_data"
    assert short.reason == "current has 29 rows; need at least 30"
    both = det.fit(frame(1, n=3)).check(frame(2, n=4))
    assert both.reason == "reference has 3 rows and current has 4 rows; need at least 30"


def test_constructor_limits() -> None:
    KSDriftDetector(drift_share=1.0, min_rows=2)
    for kw, msg in (
        ({"drift_share": 0.0}, r"drift_share must be in \(0, 1\], got 0.0"),
        ({"drift_share": 1.01}, "drift_share must be in"),
        ({"min_rows": 1}, "min_rows must be at least 2, got 1"),
    ):
        with pytest.raises(ValueError, match=msg):
            KSDriftDetector(**kw)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reference must be a pandas DataFrame, got list"):
        KSDriftDetector().fit([1, 2])  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=r"KSDriftDetector.check\(\) called before fit\(\)"):
        KSDriftDetector().check(frame(1))


def test_current_that_is_not_a_frame_is_invalid_data() -> None:
    result = KSDriftDetector().fit(frame(1)).check([[1.0]])  # type: ignore[arg-type]
    assert result.status == "invalid_data" and result.n_current == 0
    assert result.reason == "reference and current must be pandas DataFrames"


def test_constant_column_tolerance_is_relative() -> None:
    """A column is constant when its range is within 1e-9 of its magnitude (or of 1 below magnitude 1)."""
    rng = np.random.default_rng(0)
    base = pd.DataFrame({"x": rng.normal(size=40)})
    for value, step, constant in (
        (1e6, 9e-4, True),
        (1e6, 2e-3, False),
        (0.5, 9e-10, True),
        (0.5, 2e-9, False),
    ):
        ref = base.assign(c=value + step * (np.arange(40) % 2))
        result = KSDriftDetector().fit(ref).check(ref.copy())
        assert (result.ignored_features == ["c"]) is constant, (value, step)


def test_constant_reference_note_only_when_current_moved() -> None:
    ref = frame(1).assign(setpoint=1916.0)
    same = KSDriftDetector().fit(ref).check(frame(2).assign(setpoint=1916.0))
    assert same.reason.endswith("; constant in reference, not compared: setpoint")
    assert "not in current" not in same.reason


def test_boolean_and_requested_non_numeric_columns() -> None:
    ref, cur = frame(1), frame(2)
    ref["flag"] = cur["flag"] = True
    result = KSDriftDetector().fit(ref).check(cur)
    assert (
        result.is_valid
        and "flag" not in result.per_feature
        and "non-numeric columns not compared: flag" in result.reason
    )
    ref["name"] = cur["name"] = "x"
    bad = KSDriftDetector(columns=["f0", "name"]).fit(ref).check(cur)
    assert bad.status == "invalid_data" and bad.reason == "reference columns are not numeric: name"
    assert (
        KSDriftDetector().fit(ref[["name"]]).check(cur[["name"]]).reason
        == "no numeric feature columns to compare"
    )


def test_bad_value_summary_counts_nan_and_inf() -> None:
    cur = frame(2)
    cur.loc[[1, 2], "f0"] = np.nan
    cur.loc[3, "f0"] = np.inf
    result = KSDriftDetector().fit(frame(1)).check(cur)
    assert result.reason == "current data has non-finite values (f0: 2 NaN, 1 inf)"


def test_result_properties_and_dict() -> None:
    for status, drift, valid in (
        ("drift", True, True),
        ("no_drift", False, True),
        ("not_enough_data", False, False),
        ("invalid_data", False, False),
    ):
        r = DriftResult(status=status, reason="r")  # type: ignore[arg-type]
        assert (r.is_drift, r.is_valid) == (drift, valid)
    r = DriftResult(status="drift", reason="r", per_feature={"a": np.float64(0.25)}, report=object())
    d = r.to_dict()
    assert "report" not in d and d["per_feature"] == {"a": 0.25} and type(d["per_feature"]["a"]) is float
    assert DriftResult.from_dict({**d, "unknown": 1}).per_feature == {"a": 0.25}


# ------------------------------------------------------------ Evidently's snapshot, read without Evidently
def value_drift(mid: str, col: str, method: str, threshold: float | None, value: float) -> dict:
    config = {
        "type": "evidently:metric_v2:ValueDrift",
        "column": col,
        "method": method,
        "threshold": threshold,
    }
    return {"id": mid, "config": config, "value": value}


def test_snapshot_test_status_decides_drift() -> None:
    from monitoring.drift import _parse_snapshot

    data = {
        "metrics": [
            {
                "id": "m0",
                "config": {"type": "evidently:metric_v2:DriftedColumnsCount"},
                "value": {"count": 1},
            },
            value_drift("m1", "a", "K-S p_value", 0.05, 0.01),
            value_drift("m2", "b", "K-S p_value", 0.05, 0.5),
        ],
        "tests": [
            {"metric_config": {"metric_id": "m1"}, "status": "TestStatus.FAIL"},
            {"metric_config": {"metric_id": "m2"}, "status": "SUCCESS"},
            {"metric_config": {"metric_id": "m0"}, "status": "FAIL"},
        ],
    }
    comp = _parse_snapshot(data, ["a", "b"], "native")
    assert comp.drifted == {"a": True, "b": False}
    assert comp.scores == {"a": 0.01, "b": 0.5} and comp.score_kind == "p_value" and comp.report == "native"
    assert comp.methods == {"a": "K-S p_value", "b": "K-S p_value"}


def test_snapshot_without_tests_applies_each_methods_direction_at_equality() -> None:
    from monitoring.drift import _parse_snapshot

    data = {
        "metrics": [
            value_drift("1", "p_at", "K-S p_value", 0.05, 0.05),  # p equal to its threshold: no drift
            value_drift("2", "p_below", "K-S p_value", 0.05, 0.0499),
            value_drift("3", "d_at", "Wasserstein distance (normed)", 0.1, 0.1),  # distance equal: drift
            value_drift("4", "d_below", "Wasserstein distance (normed)", 0.1, 0.0999),
        ]
    }
    comp = _parse_snapshot(data, ["p_at", "p_below", "d_at", "d_below"], None)
    assert comp.drifted == {"p_at": False, "p_below": True, "d_at": True, "d_below": False}
    assert comp.score_kind == "mixed"
    only_distance = _parse_snapshot({"metrics": data["metrics"][2:]}, ["d_at", "d_below"], None)
    assert only_distance.score_kind == "distance"


def test_snapshot_tests_win_over_the_threshold_rule() -> None:
    """Evidently's test verdict is taken as is, even where the score alone would say otherwise."""
    from monitoring.drift import _parse_snapshot

    data = {
        "metrics": [
            value_drift("m1", "a", "K-S p_value", 0.05, 0.5),  # p above its threshold, test says FAIL
            value_drift("m2", "b", "K-S p_value", 0.05, 0.001),  # p below, test says SUCCESS
            value_drift("m3", "c", "K-S p_value", 0.05, 0.001),  # no test: the threshold rule
            {"id": "m4", "config": {"column": "d"}, "value": 0.0},  # not a ValueDrift: ignored
        ],
        "tests": [
            {"metric_config": {"metric_id": "m1"}, "status": "FAIL"},
            {"metric_config": {"metric_id": "m2"}, "status": "SUCCESS"},
            {"metric_config": {"metric_id": "unknown"}, "status": "FAIL"},
            {"status": "FAIL"},
        ],
    }
    comp = _parse_snapshot(data, ["a", "b", "c"], None)
    assert comp.drifted == {"a": True, "b": False, "c": True}
    assert set(comp.scores) == {"a", "b", "c"}


def test_snapshot_without_metrics_or_method() -> None:
    from monitoring.drift import _parse_snapshot

    assert _parse_snapshot({}, ["a"], None).drifted == {}
    assert _parse_snapshot({"metrics": [{"id": "x"}], "tests": [{}]}, ["a"], None).scores == {}
    data = {
        "metrics": [
            {"id": "1", "config": {"type": "x:ValueDrift", "column": "a", "threshold": 0.1}, "value": 0.2}
        ]
    }
    comp = _parse_snapshot(data, ["a"], None)
    assert comp.methods == {"a": ""} and comp.drifted == {"a": True} and comp.score_kind == "distance"


def test_fallback_report_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from monitoring.drift import save_reports

    result = DriftResult(
        status="drift",
        reason="r <b>",
        drifted_features=["f1"],
        per_feature={"f1": 1.23456e-5, "f0": 0.5},
        detector="ks",
        report="not a snapshot",  # no save_html/json: the fallback is written
    )
    html_path, json_path = save_reports(result, tmp_path / "a" / "b", "x")
    text = html_path.read_text(encoding="utf-8")
    assert text.startswith(
        "<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title></head><body>"
    )
    assert "<table border='1'><tr><th>feature</th><th>score</th><th>drifted</th></tr><tr>" in text
    assert (
        "<tr><td>f0</td><td>0.5</td><td></td></tr><tr><td>f1</td><td>1.235e-05</td><td>yes</td></tr>" in text
    )
    assert "<p>r &lt;b&gt;</p>" in text and "<h1>Drift: drift</h1>" in text
    assert result.html_path == str(html_path) and result.json_path == str(json_path)
    assert json_path.read_text(encoding="utf-8").startswith('{\n "status": "drift",\n "reason": "r <b>"')
    assert "evidently" not in json.loads(json_path.read_text(encoding="utf-8"))


def test_detector_defaults_and_options() -> None:
    from monitoring.drift import EvidentlyDriftDetector

    ev = EvidentlyDriftDetector()
    assert (ev.drift_share, ev.min_rows, ev.columns, ev.stattest, ev.stattest_threshold, ev.use_preset) == (
        0.5,
        30,
        None,
        None,
        None,
        False,
    )
    ev = EvidentlyDriftDetector(0.3, "psi", 40, ["a"], stattest_threshold=0.2, use_preset=True)
    assert (ev.drift_share, ev.min_rows, ev.columns, ev.stattest, ev.stattest_threshold, ev.use_preset) == (
        0.3,
        40,
        ["a"],
        "psi",
        0.2,
        True,
    )
    ks = KSDriftDetector()
    assert (ks.drift_share, ks.min_rows, ks.alpha, ks.columns) == (0.5, 30, 0.05, None)
    pred = PredictionDriftDetector(columns=["leak"], min_rows=5)
    assert (pred.drift_share, pred.alpha, pred.min_rows, pred.columns) == (1e-9, 0.01, 5, ["leak"])
    assert PredictionDriftDetector().min_rows == 30 and pred.drop_constant is False


def test_prediction_drift_passes_alpha_and_min_rows() -> None:
    ref = pd.DataFrame({"leak": alerts(0.05, n=200, seed=1)})
    cur = pd.DataFrame({"leak": alerts(0.12, n=200, seed=2)})
    p = alert_rate_pvalue(int(ref["leak"].sum()), 200, int(cur["leak"].sum()), 200)
    assert prediction_drift(ref, cur, alpha=p).status == "no_drift"
    assert prediction_drift(ref, cur, alpha=float(np.nextafter(p, 1.0))).status == "drift"
    assert prediction_drift(ref, cur, min_rows=201).status == "not_enough_data"
    assert prediction_drift(ref.iloc[:30], cur.iloc[:30]).is_valid
    assert prediction_drift(ref.iloc[:29], cur.iloc[:29]).status == "not_enough_data"


def test_prediction_detector_picks_the_test_per_column() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(
        {"a": alerts(0.5, n=40, seed=1), "b": np.full(40, 0.2), "c": alerts(0.5, n=40, seed=2)}
    )
    cur = pd.DataFrame({"a": rng.random(40), "b": rng.random(40), "c": alerts(0.5, n=40, seed=4)})
    result = PredictionDriftDetector(min_rows=30, columns=["a", "b", "c"]).fit(ref).check(cur)
    assert result.methods["a"] == "ks_2samp"  # binary reference, scores now: not an alert rate
    assert result.methods["b"] == "ks_2samp"  # constant reference, varying current
    assert result.methods["c"].startswith("fisher_exact")
    assert result.score_kind == "p_value"
    only = PredictionDriftDetector(min_rows=30, columns=["c"]).fit(ref).check(cur)
    assert list(only.per_feature) == ["c"]


def test_nullable_columns_are_counted_as_nan() -> None:
    cur = frame(2)
    cur["f0"] = cur["f0"].astype("Float64")
    cur.loc[4, "f0"] = pd.NA
    result = KSDriftDetector().fit(frame(1)).check(cur)
    assert result.reason == "current data has non-finite values (f0: 1 NaN)"


def test_messages_list_every_column() -> None:
    ref, cur = frame(1), frame(2)
    ref["s1"] = ref["s2"] = "x"
    result = KSDriftDetector().fit(ref).check(cur)
    assert result.reason.endswith("; non-numeric columns not compared: s1, s2")
    missing = KSDriftDetector().fit(frame(1)).check(frame(2).drop(columns=["f1", "f2"]))
    assert missing.reason == "current data lacks columns: f1, f2"
    missing_ref = KSDriftDetector(columns=["f0", "zz"]).fit(frame(1)).check(frame(2))
    assert missing_ref.reason == "reference data lacks columns: zz"
    cur = frame(2).assign(t1="a", t2="b")
    bad = KSDriftDetector(columns=["f0", "t1", "t2"]).fit(frame(1).assign(t1=1.0, t2=2.0)).check(cur)
    assert bad.reason == "current columns are not numeric: t1, t2"
    ref = frame(1)
    ref.loc[0, ["f1", "f2"]] = np.nan
    assert KSDriftDetector().fit(ref).check(frame(2)).reason == (
        "reference data has non-finite values (f1: 1 NaN; f2: 1 NaN)"
    )
    const = frame(1).assign(c1=1.0, c2=2.0, name="x")
    result = KSDriftDetector().fit(const).check(frame(2).assign(c1=1.0, c2=2.0))
    assert result.reason.endswith(
        "; constant in reference, not compared: c1, c2; non-numeric columns not compared: name"
    )
    allc = pd.DataFrame({"a": np.ones(40)})
    assert KSDriftDetector().fit(allc).check(allc).reason == (
        "every feature column is constant in the reference; nothing to compare"
    )


def test_prepare_input_drops_constant_columns_by_default() -> None:
    prepared = prepare_input(frame(1).assign(c=1.0), frame(2).assign(c=1.0), columns=None, min_rows=2)
    assert not isinstance(prepared, tuple) and prepared.ignored == ["c"] and "c" not in prepared.columns
    assert prepare_input(pd.DataFrame({"a": ["x"]}), frame(2), columns=None, min_rows=2) == (
        "invalid_data",
        "no numeric feature columns to compare",
    )


@pytest.mark.parametrize(("moved", "note"), [(1e-7, True), (5e-9, True), (1e-10, False), (0.5, True)])
def test_constant_reference_note_tolerance(moved: float, note: bool) -> None:
    """The note fires when current moves by more than 1e-9 relative (no absolute slack)."""
    ref = frame(1).assign(setpoint=1.0)
    result = KSDriftDetector().fit(ref).check(frame(2).assign(setpoint=1.0 + moved))
    assert ("setpoint is constant in the reference (1) but not in current" in result.reason) is note


def test_constant_tolerance_below_magnitude_one() -> None:
    ref = frame(1).assign(c=0.5 + 1.5e-9 * (np.arange(300) % 2))
    assert KSDriftDetector().fit(ref).check(ref.copy()).ignored_features == []


def test_results_of_bad_input_carry_the_detector_and_threshold() -> None:
    result = KSDriftDetector(drift_share=0.4, min_rows=50).fit(frame(1, n=40)).check(frame(2, n=45))
    assert (result.status, result.n_reference, result.n_current) == ("not_enough_data", 40, 45)
    assert (result.threshold, result.detector) == (0.4, "ks")
    assert 0.0 <= result.elapsed_s < 60.0
    ok = KSDriftDetector().fit(frame(1)).check(frame(2))
    assert 0.0 <= ok.elapsed_s < 60.0


def test_columns_without_a_verdict_are_not_drifted_and_nine_are_summarised() -> None:
    cols = [f"c{i}" for i in range(10)]
    verdicts = {c: True for c in cols[:9]}

    class Partial(Scripted):
        def _compare(self, reference: pd.DataFrame, current: pd.DataFrame) -> Comparison:
            return Comparison({c: 0.0 for c in verdicts}, dict(verdicts), "distance")

    result = Partial(verdicts, min_rows=2).fit(frame(1, n=5, cols=cols)).check(frame(2, n=5, cols=cols))
    assert result.drifted_features == cols[:9] and result.score_kind == "distance"
    assert result.reason.endswith(", ... (+1)")


def test_from_dict_never_sets_the_native_report() -> None:
    assert DriftResult.from_dict({"status": "drift", "reason": "r", "report": "x"}).report is None
