"""Evidently 0.7 detector: same verdicts as the KS fallback on clear cases, and reports on disk.

Importing Evidently costs ~3 s and each check ~0.1 s per column, so the frames are small.
"""

import json

import numpy as np
import pandas as pd
import pytest

from monitoring.detectors import DriftDetector
from monitoring.drift import EvidentlyDriftDetector, KSDriftDetector, save_reports

COLS = ["pressure_mean", "flow_mean", "speed_mean", "current_mean"]


# Evidently's import pulls in litestar, which warns about its own deprecations.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def frame(seed: int, shift: float = 0.0, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame(rng.normal(loc=shift, size=(n, len(COLS))), columns=COLS)
    out["setpoint"] = 5.0
    return out


@pytest.fixture(scope="module")
def detector() -> EvidentlyDriftDetector:
    return EvidentlyDriftDetector(drift_share=0.5).fit(frame(1))


def test_is_a_drift_detector(detector: EvidentlyDriftDetector) -> None:
    assert isinstance(detector, DriftDetector)


def test_shift_is_drift_and_reports_are_written(detector: EvidentlyDriftDetector, tmp_path) -> None:
    current = frame(2, shift=1.0)
    result = detector.check(current)
    assert result.status == "drift"
    assert sorted(result.drifted_features) == sorted(COLS)
    assert result.ignored_features == ["setpoint"]
    assert result.score_kind == "p_value"  # Evidently picks K-S for <= 1000 rows
    html_path, json_path = save_reports(result, tmp_path, "drift-001")
    assert html_path.stat().st_size > 10_000
    payload = json.loads(json_path.read_text())
    assert payload["status"] == "drift" and {"metrics", "tests"} <= set(payload["evidently"])
    assert result.html_path == str(html_path)


def test_same_distribution_is_no_drift(detector: EvidentlyDriftDetector) -> None:
    current = frame(3)
    result = detector.check(current)
    assert result.status == "no_drift"
    ks = KSDriftDetector().fit(detector.reference).check(current)
    assert result.per_feature == pytest.approx(ks.per_feature, rel=1e-6)


def test_bad_input_never_reaches_evidently(detector: EvidentlyDriftDetector) -> None:
    assert detector.check(frame(2).iloc[:5]).status == "not_enough_data"
    bad = frame(2, shift=3.0)
    bad.loc[0, "flow_mean"] = np.nan
    assert detector.check(bad).status == "invalid_data"


def test_fallback_report_for_ks(tmp_path) -> None:
    result = KSDriftDetector().fit(frame(1)).check(frame(2, shift=1.0))
    assert result.status == "drift"
    html_path, json_path = save_reports(result, tmp_path, "ks")
    assert "flow_mean" in html_path.read_text()
    assert json.loads(json_path.read_text())["detector"] == "ks"


def test_preset_with_a_chosen_method_and_threshold() -> None:
    """Wasserstein distance at 0.1 for every column through DataDriftPreset: a distance verdict per column."""
    ref, cur = frame(1, n=60)[COLS[:2]], frame(2, shift=1.0, n=60)[COLS[:2]]
    det = EvidentlyDriftDetector(stattest="wasserstein", stattest_threshold=0.1, use_preset=True, min_rows=30)
    result = det.fit(ref).check(cur)
    assert result.status == "drift" and sorted(result.drifted_features) == sorted(COLS[:2])
    assert result.score_kind == "distance"
    assert result.methods == dict.fromkeys(COLS[:2], "wasserstein")
    for preset in (False, True):  # a 1-sigma shift is far below 5 sigma
        det = EvidentlyDriftDetector(
            stattest="wasserstein", stattest_threshold=5.0, use_preset=preset, min_rows=30
        )
        assert det.fit(ref).check(cur).status == "no_drift"
