"""Great Expectations validation of the training table (GX import ~3 s once; each run ~0.2-2 s)."""

import numpy as np
import pandas as pd
import pytest

from fedtwin.data.features import FEATURE_NAMES
from fedtwin.data.validation import (
    DEFAULT_PHYSICAL_RANGES,
    ValidationOutcome,
    feature_ranges,
    physical_ranges,
    stuck_rows,
    validate_dataset,
)
from fedtwin.errors import DataValidationError

SIGNALS = [
    "pressure_mean_bar",
    "flow_mean",
    "flow_ripple_rel",
    "speed_mean_rpm",
    "current_mean_a",
    "flow_kurtosis",
]
LABELS = ["leak", "blocked_inlet", "bearing"]


def table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "pressure_mean_bar": rng.uniform(5, 30, n),
            "flow_mean": rng.uniform(10, 70, n),
            "flow_ripple_rel": rng.uniform(0.05, 0.7, n),
            "speed_mean_rpm": rng.uniform(1800, 2000, n),
            "current_mean_a": rng.uniform(20, 120, n),
            "flow_kurtosis": rng.uniform(1.5, 4.0, n),
            "leak": rng.integers(0, 2, n),
            "blocked_inlet": rng.integers(0, 2, n),
            "bearing": rng.integers(0, 2, n),
        }
    )


def run(df: pd.DataFrame, **kwargs) -> ValidationOutcome:
    return validate_dataset(df, signal_columns=SIGNALS, label_columns=LABELS, **kwargs)


@pytest.fixture(scope="module")
def plant_table() -> pd.DataFrame:
    """Real feature windows from the plant: healthy and each fault (severity 0.3 and 1) at the edges and the
    middle of the operating envelope, 2 windows per run (~1 s)."""
    from fedtwin.data.datasets import scenario_windows, windows_frame
    from plant_models import Faults, OperatingPoint, Scenario

    scenarios, seed = [], 1
    for speed in (200.0, 958.0, 1500.0):
        for load in (0.2, 1.0, 5.0):
            for fault in (None, "leak", "blocked_inlet", "bearing"):
                for sev in (0.3, 1.0) if fault else (0.0,):
                    faults = Faults.from_severity(**{fault: sev}) if fault else Faults()
                    op = OperatingPoint(speed_rpm=speed, load_area_factor=load)
                    scenarios.append(Scenario(faults=faults, op=op, seed=seed, duration_s=2.5, warmup_s=0.5))
                    seed += 1
    return windows_frame(scenario_windows(scenarios, 1.0), FEATURE_NAMES)


def run_features(df: pd.DataFrame, **kwargs) -> ValidationOutcome:
    return validate_dataset(df, signal_columns=list(FEATURE_NAMES), label_columns=LABELS, site="s1", **kwargs)


# ---------------------------------------------------------------- ranges of every feature, in one place


def test_every_feature_column_gets_a_range_derived_from_the_signal_ranges() -> None:
    spec = physical_ranges(list(FEATURE_NAMES))
    assert sorted(spec) == sorted(FEATURE_NAMES)  # 57 of 57 (only 2 before the names were matched exactly)
    # By hand from pressure [-1, 40] bar, flow [-5, 80] L/min, speed [-10, 3600] rpm, current [-1, 200] A.
    assert spec["pressure_mean_bar"] == (-1.0, 40.0)
    assert spec["speed_mean_rpm"] == (-10.0, 3600.0)
    assert spec["current_mean_a"] == (-1.0, 200.0)
    assert spec["flow_var"] == (0.0, 85.0**2 / 4)  # a variance is at most span^2 / 4
    assert spec["flow_csrange"] == (0.0, 85.0 / 4)  # 1 s window
    assert spec["crank_freq_hz"] == pytest.approx((-10 / 120, 30.0))  # motor rpm / 60 / gear ratio 2
    assert spec["hydraulic_power_w"] == pytest.approx((-200 * 1e5 / 6e4, 3200 * 1e5 / 6e4))  # bar x L/min
    assert spec["flow_kurtosis"] == (0.0, 1000.0) and spec["flow_skewness"] == pytest.approx(
        (-31.62, 31.62), 1e-3
    )
    assert spec["pressure_ripple_rel"] == (0.0, None) and spec["current_vs_flow_phase3_sin"] == (-1.0, 1.0)
    assert spec["pressure_bandpower_10_20"] == (0.0, 41.0**2)
    assert physical_ranges(["pressure", "speed", "unknown"]) == {
        "pressure": (-1.0, 40.0),
        "speed": (-10.0, 3600.0),
    }


def test_feature_ranges_follow_the_signal_ranges() -> None:
    spec = feature_ranges(
        {**DEFAULT_PHYSICAL_RANGES, "pressure": (0.0, 10.0)}, window_samples=2000, fs=1000.0
    )
    assert spec["pressure_mean_bar"] == (0.0, 10.0)
    assert spec["pressure_bandpower_40_60"] == (0.0, 100.0)
    assert spec["flow_csrange"] == (0.0, 85.0 * 2 / 4)  # 2 s window
    assert spec["flow_kurtosis"] == (0.0, 2000.0)


def test_real_plant_windows_pass_everywhere_in_the_envelope(plant_table: pd.DataFrame) -> None:
    outcome = run_features(
        plant_table.assign(leak=np.arange(len(plant_table)) % 2, blocked_inlet=1, bearing=0),
        require_both_classes=False,
    )
    assert outcome.success, outcome.failures


def test_pressure_mean_minus_50_bar_fails(plant_table: pd.DataFrame) -> None:
    df = plant_table.assign(leak=np.arange(len(plant_table)) % 2, blocked_inlet=0, bearing=0)
    df.loc[[3, 7], "pressure_mean_bar"] = -50.0
    outcome = run_features(df, require_both_classes=False)
    assert outcome.failures == ["site s1: column pressure_mean_bar: 2 rows outside [-1, 40] (e.g. -50)"]


def test_a_flat_lined_sensor_on_every_run_fails() -> None:
    """The plant's stuck pressure sensor (it holds its first reading) on every run of a small sweep."""
    from fedtwin.data.datasets import scenario_windows, windows_frame
    from plant_models import Faults, OperatingPoint, Scenario

    runs = [
        Scenario(
            faults=Faults(stuck_signal="pressure"),
            op=OperatingPoint(speed_rpm=speed, load_area_factor=1.0),
            seed=k,
            duration_s=2.5,
            warmup_s=0.5,
        )
        for k, speed in enumerate(np.linspace(800, 1100, 12))
    ]
    df = windows_frame(scenario_windows(runs, 1.0), FEATURE_NAMES).assign(leak=0, blocked_inlet=0, bearing=0)
    outcome = run_features(df, require_both_classes=False, min_rows=20)
    assert not outcome.success
    assert len(df) == 24
    failures = outcome.failures
    assert (
        "site s1: column pressure_ripple_rel: 24 rows flat-lined (pressure did not change within the window)"
        in failures
    )
    assert any(
        f.startswith(
            "site s1: column pressure_mean_bar: 24 rows stuck (pressure repeats the same window, mean "
        )
        for f in failures
    )
    # The flat pressure leaves no spectrum: its peak sits at the band's lower edge in every window.
    assert "site s1: column pressure_peak_freq: no variance over all 24 rows (every row 2)" in failures
    assert not [f for f in failures if "flow" in f or "speed_" in f or "current_mean" in f], failures


def test_a_column_with_one_value_in_every_row_fails_the_variance_check() -> None:
    df = table().assign(speed_mean_rpm=1916.0)
    outcome = run(df, site="pump-a")
    assert (
        "site pump-a: column speed_mean_rpm: no variance over all 400 rows (every row 1916)"
        in outcome.failures
    )


def test_stuck_sensor_repeating_its_window_is_detected() -> None:
    df = table()
    df.loc[10:14, ["flow_mean", "flow_ripple_rel"]] = [38.25, 0.125]  # 5 consecutive identical windows
    outcome = run(df, site="pump-b")
    assert outcome.failures == [
        "site pump-b: column flow_mean: 5 rows stuck (flow repeats the same window, mean 38.25, in 2 or more "
        "consecutive rows)"
    ]


def test_a_repeated_mean_with_another_spread_is_not_stuck() -> None:
    """A quantised sensor's window mean can repeat by chance (5 pairs in the 3,588 windows of `full`)."""
    df = table()
    df.loc[10:11, "flow_mean"] = 38.25
    assert run(df).failures == []


@pytest.mark.parametrize(
    ("values", "min_run", "expected"),
    [
        ([1, 2, 2, 3, 3, 3, 4], 2, (5, 2.0)),
        ([1, 2, 2, 3, 3, 3, 4], 3, (3, 3.0)),
        ([1, 2, 3, 4], 2, (0, None)),
        ([np.nan, np.nan, np.nan], 2, (0, None)),  # NaN is never equal: the null check reports it
        ([5.0], 2, (0, None)),
        ([[1, 0.1], [1, 0.2], [1, 0.2], [2, 0.2]], 2, (2, 1.0)),  # rows equal only when every column is
    ],
)
def test_stuck_rows(values: list, min_run: int, expected: tuple[int, float | None]) -> None:
    assert stuck_rows(np.array(values, dtype=float), min_run) == expected


# ---------------------------------------------------------------- generic checks


def test_good_data_passes() -> None:
    outcome = run(table())
    assert outcome.success, outcome.failures
    assert outcome.failures == []
    assert outcome.stats["n_rows"] == 400
    assert 0.3 < outcome.stats["positive_rate"]["leak"] < 0.7
    outcome.raise_for_failures()


def test_out_of_range_values_are_reported_readably() -> None:
    df = table()
    df.loc[:11, "flow_mean"] = -30.0 - np.arange(12)
    df.loc[0, "speed_mean_rpm"] = 5000.0
    outcome = run(df, site="leak-site0")
    assert not outcome.success
    assert (
        "site leak-site0: column flow_mean: 12 rows outside [-5, 80] (e.g. -30, -31, -32)" in outcome.failures
    )
    assert any(
        f.startswith("site leak-site0: column speed_mean_rpm: 1 row outside [-10, 3600]")
        for f in outcome.failures
    )
    with pytest.raises(DataValidationError, match="flow_mean"):
        outcome.raise_for_failures()


def test_custom_ranges_override_defaults() -> None:
    outcome = run(table(), ranges={"pressure_mean_bar": (10.0, 20.0)})
    assert not outcome.success
    assert len(outcome.failures) == 1 and "pressure_mean_bar" in outcome.failures[0]


def test_nulls_and_infinities_fail() -> None:
    df = table()
    df.loc[3, "pressure_mean_bar"] = np.nan
    df.loc[4, "flow_kurtosis"] = np.inf
    df.loc[5, "leak"] = np.nan
    failures = run(df).failures
    assert "column pressure_mean_bar: 1 row null" in failures
    assert any(f.startswith("column flow_kurtosis: 1 row outside [0, 1000] (e.g. inf)") for f in failures)
    assert "column leak: 1 row null" in failures
    assert len(failures) == 3, failures  # no variance line for a column that is not finite


def test_missing_column_is_one_clear_failure() -> None:
    outcome = run(table().drop(columns=["current_mean_a"]))
    assert outcome.failures == ["missing column current_mean_a"]


def test_single_class_and_bad_labels_fail() -> None:
    df = table()
    df["bearing"] = 0
    df.loc[7, "leak"] = 2
    failures = run(df).failures
    assert "label bearing: class 1 absent (values present: [0])" in failures
    assert "label leak: 1 row not in {0, 1} (e.g. 2)" in failures
    assert run(df.assign(leak=1), require_both_classes=False).failures == []


def test_too_few_rows_fails() -> None:
    outcome = run(table(n=50), min_rows=100, site="x")
    assert outcome.failures == ["site x: only 50 rows, need at least 100"]


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
