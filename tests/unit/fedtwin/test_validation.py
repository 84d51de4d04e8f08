"""Great Expectations validation of the training table (GX import ~3 s once; each run ~0.2-0.5 s)."""

import numpy as np
import pandas as pd
import pytest

from fedtwin.errors import DataValidationError
from fedtwin.validation import ValidationOutcome, physical_ranges, validate_dataset

SIGNALS = ["pressure_mean", "flow_mean", "speed_mean", "current_mean", "flow_kurtosis"]
LABELS = ["leak", "blocked_inlet", "bearing"]


def table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pressure_mean": rng.uniform(5, 30, n),
            "flow_mean": rng.uniform(10, 70, n),
            "speed_mean": rng.uniform(1800, 2000, n),
            "current_mean": rng.uniform(20, 120, n),
            "flow_kurtosis": rng.normal(size=n),  # shape statistic: may be negative, only finiteness applies
            "leak": rng.integers(0, 2, n),
            "blocked_inlet": rng.integers(0, 2, n),
            "bearing": rng.integers(0, 2, n),
        }
    )


def run(df: pd.DataFrame, **kwargs) -> ValidationOutcome:
    return validate_dataset(df, signal_columns=SIGNALS, label_columns=LABELS, **kwargs)


def test_physical_ranges_cover_level_statistics_only() -> None:
    spec = physical_ranges([*SIGNALS, "pressure", "speed_std"])
    assert spec["flow_mean"] == (0.0, 80.0) and spec["pressure"] == (0.0, 40.0)
    assert spec["speed_std"] == (0.0, 3000.0)
    assert "flow_kurtosis" not in spec


def test_good_data_passes() -> None:
    outcome = run(table())
    assert outcome.success, outcome.failures
    assert outcome.failures == []
    assert outcome.stats["n_rows"] == 400
    assert 0.3 < outcome.stats["positive_rate"]["leak"] < 0.7
    outcome.raise_for_failures()


def test_out_of_range_values_are_reported_readably() -> None:
    df = table()
    df.loc[:11, "flow_mean"] = -3.2
    df.loc[0, "speed_mean"] = 5000.0
    outcome = run(df)
    assert not outcome.success
    assert "column flow_mean: 12 values outside [0, 80] (e.g. -3.2)" in outcome.failures
    assert any(f.startswith("column speed_mean: 1 value outside [0, 3000]") for f in outcome.failures)
    with pytest.raises(DataValidationError, match="flow_mean"):
        outcome.raise_for_failures()


def test_custom_ranges_override_defaults() -> None:
    outcome = run(table(), ranges={"pressure_mean": (10.0, 20.0)})
    assert not outcome.success
    assert len(outcome.failures) == 1 and "pressure_mean" in outcome.failures[0]


def test_nulls_and_infinities_fail() -> None:
    df = table()
    df.loc[3, "pressure_mean"] = np.nan
    df.loc[4, "flow_kurtosis"] = np.inf
    df.loc[5, "leak"] = np.nan
    failures = run(df).failures
    assert "column pressure_mean: 1 null value" in failures
    assert any(f.startswith("column flow_kurtosis: 1 non-finite value") for f in failures)
    assert "column leak: 1 null value" in failures


def test_missing_column_is_one_clear_failure() -> None:
    outcome = run(table().drop(columns=["current_mean"]))
    assert outcome.failures == ["missing column current_mean"]


def test_single_class_and_bad_labels_fail() -> None:
    df = table()
    df["bearing"] = 0
    df.loc[7, "leak"] = 2
    failures = run(df).failures
    assert "label bearing: class 1 absent (values present: [0])" in failures
    assert "label leak: 1 value not in {0, 1} (e.g. 2)" in failures
    assert run(df.assign(leak=1), require_both_classes=False).failures == []


def test_too_few_rows_fails() -> None:
    outcome = run(table(n=50), min_rows=100)
    assert outcome.failures == ["only 50 rows, need at least 100"]


def test_concurrent_validations_do_not_interfere() -> None:
    """Prefect runs a flow's validation tasks in threads; each must get its own verdict."""
    from concurrent.futures import ThreadPoolExecutor

    good, bad = table(seed=1), table(seed=2)
    bad.loc[:5, "flow_mean"] = -10.0
    # Without the lock GX raised "ExpectationSuite ... has changed since it has last been saved" in about one
    # of five such bursts here, so a few bursts are run.
    for _ in range(3):
        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(run, [good, bad] * 4))
        assert [o.success for o in outcomes] == [True, False] * 4
        assert all(any("flow_mean" in f for f in o.failures) for o in outcomes[1::2])
