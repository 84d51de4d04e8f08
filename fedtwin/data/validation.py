"""Great Expectations 1.x validation of a simulated data set before training.

Generic over a column -> (low, high) range spec, so the same call checks the per-window feature table
(``FEATURE_NAMES`` plus labels ``leak``, ``blocked_inlet``, ``bearing``) or a raw signal table
(``pressure``, ``flow``, ``speed``, ``current``). Checks, each reported as one line naming the site, the
column and the number of rows:

- presence, nulls, finiteness and the physical range of every column (:func:`physical_ranges`: every
  feature's range is derived from the four signals' ranges in ``DEFAULT_PHYSICAL_RANGES``);
- **flat line**: a window in which a sensor did not change (its relative spread below ``FLAT_LINE_TOLERANCE``,
  far below any real sensor's noise);
- **variance**: a column with the same value in every row carries nothing to learn from;
- **stuck sensor**: a sensor whose window mean and spread both repeat exactly in consecutive windows (a held
  or replayed reading does; a noisy sensor does not, though its quantised mean alone sometimes does);
- labels in {0, 1} with both classes.

GX is imported lazily (~2.6-6 s on the 2-core box); one validation of the 57 feature columns x 2,000 rows
then takes ~1-2 s.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fedtwin.data.features import FEATURE_NAMES, GEAR_RATIO, LEVEL_FEATURES, RIPPLE_FEATURES
from fedtwin.data.schema import PHYSICAL_RANGES, SIGNALS
from fedtwin.errors import DataValidationError

Range = tuple[float | None, float | None]

#: Physical span of each measured signal in its sensor unit (bar gauge, L/min, motor rpm, A): the sensor
#: message decoder's ranges, whose one home is the asset spec (``plant_models.spec.SIGNAL_SPECS`` says why).
DEFAULT_PHYSICAL_RANGES: dict[str, tuple[float, float]] = dict(PHYSICAL_RANGES)

#: Per signal, its spread within a window relative to its mean: ~0 when the sensor did not change (flat line).
FLAT_LINE_COLUMNS: dict[str, str] = {s: RIPPLE_FEATURES[s] for s in SIGNALS}

#: Relative spread below which a window is flat-lined. A constant window gives ~1e-16 (rounding of its mean);
#: the quietest real reading here, speed at 0.5 rpm noise over 3000 rpm, gives ~1e-4.
FLAT_LINE_TOLERANCE = 1e-9

#: Per signal, the window mean and spread that both repeat exactly across consecutive windows when the
#: sensor is stuck. The mean alone is not enough: over the 3,588 windows of the `full` training sweep, 5
#: consecutive pairs had equal quantised means (4 speed, 1 pressure), none equal means and spreads.
STUCK_COLUMNS: dict[str, tuple[str, str]] = {s: (LEVEL_FEATURES[s], RIPPLE_FEATURES[s]) for s in SIGNALS}

#: Consecutive identical windows of a signal that mean a stuck sensor (a training run yields 2-3 windows).
STUCK_ROWS = 2

_FLOAT_MAX = sys.float_info.max

_GX_LOCK = threading.Lock()


@dataclass
class ValidationOutcome:
    """Result of ``validate_dataset``: ``success``, one readable line per failure, and summary stats."""

    success: bool
    failures: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def raise_for_failures(self) -> None:
        """Raise ``DataValidationError`` listing the failures, if any."""
        if not self.success:
            listed = "\n  - ".join(self.failures)
            raise DataValidationError(
                f"data set failed validation ({len(self.failures)} problems):\n  - {listed}"
            )


def _interval_product(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    products = [x * y for x in a for y in b]
    return min(products), max(products)


def feature_ranges(
    signal_ranges: Mapping[str, tuple[float, float]] = DEFAULT_PHYSICAL_RANGES,
    *,
    window_samples: int = 1000,
    fs: float = 1000.0,
) -> dict[str, Range]:
    """The range of every feature of ``fedtwin.data.features.FEATURE_NAMES``, derived from the signals'
    ranges.

    Each bound follows from the feature's formula: levels lie in the signal's range, spreads in [0, span],
    products in the product of the ranges, standardised shape statistics within their bounds for
    ``window_samples`` samples (|skewness| <= sqrt(n), kurtosis and crest factor <= n and sqrt(n)), cosines
    and sines in [-1, 1]. A ratio to a quantity that can approach zero (ripples and crank orders relative
    to a mean, volumetric efficiency) keeps only the side its formula fixes (>= 0, or <= 1 for a minimum
    over its mean); its other side is checked for finiteness only.

    Parameters
    ----------
    signal_ranges : mapping of signal -> (low, high)
        ``pressure`` (bar), ``flow`` (L/min), ``speed`` (motor rpm), ``current`` (A).
    window_samples : int
        Samples per feature window (1 s at 1 kHz by default, as in the settings).
    fs : float
        Sample rate (Hz).
    """
    p, q, s, i = (
        (float(signal_ranges[n][0]), float(signal_ranges[n][1]))
        for n in ("pressure", "flow", "speed", "current")
    )
    span = {name: float(hi - lo) for name, (lo, hi) in signal_ranges.items()}
    root_n = math.sqrt(window_samples)
    window_s = window_samples / fs
    hyd = _interval_product(p, q)
    shaft = _interval_product(i, s)
    out: dict[str, Range] = {
        "flow_mean": q,
        "flow_var": (0.0, span["flow"] ** 2 / 4.0),
        "flow_skewness": (-root_n, root_n),
        "flow_kurtosis": (0.0, float(window_samples)),
        "flow_peak2peak": (0.0, span["flow"]),
        "flow_crest_factor": (0.0, root_n),
        "flow_rms": (0.0, max(abs(q[0]), abs(q[1]))),
        "flow_mad": (0.0, span["flow"] / 2.0),
        # Swing of the integrated flow fluctuation: at most a quarter of the span times the window.
        "flow_csrange": (0.0, span["flow"] * window_s / 4.0),
        "pressure_peak_freq": (2.0, 250.0),  # the reference's 2-250 Hz band
        # Band powers of the mean-removed pressure: at most its mean square, at most span^2.
        "pressure_bandpower_10_20": (0.0, span["pressure"] ** 2),
        "pressure_bandpower_40_60": (0.0, span["pressure"] ** 2),
        "pressure_bandpower_above_100": (0.0, span["pressure"] ** 2),
        "pressure_spectral_kurtosis": (0.0, None),
        "speed_mean_rpm": s,
        "crank_freq_hz": (s[0] / 60.0 / GEAR_RATIO, s[1] / 60.0 / GEAR_RATIO),
        "speed_ripple_rel": (0.0, None),
        "pressure_mean_bar": p,
        "pressure_ripple_rel": (0.0, None),
        "current_mean_a": i,
        "current_ripple_rel": (0.0, None),
        # Divided by |pressure| floored at 1e-3 bar in the feature.
        "current_per_pressure": (i[0] / 1e-3, i[1] / 1e-3),
        "volumetric_efficiency": (None, None),
        "flow_ripple_rel": (0.0, None),
        "flow_min_rel": (None, 1.0),
        "hydraulic_power_w": (hyd[0] * 1e5 / 60_000.0, hyd[1] * 1e5 / 60_000.0),
        # Current x speed over |hydraulic power| floored at 1e-3 W in the feature.
        "power_ratio": (shaft[0] / 1e-3, shaft[1] / 1e-3),
        "flow_asym_orders12": (0.0, None),
        "pressure_asym_orders12": (0.0, None),
        "cyl_flow_spread_rel": (0.0, None),
        "cyl_flow_min_rel": (None, 1.0),
        "cyl_flow_max_rel": (-1.0, None),
        "tsa_flow_min_rel": (None, 1.0),
        "tsa_flow_max_rel": (-1.0, None),
        "tsa_pressure_min_rel": (None, 1.0),
        "tsa_pressure_max_rel": (-1.0, None),
        # A crank-order amplitude of a signal is at most its span.
        "current_order3_abs": (0.0, span["current"]),
        "current_order6_abs": (0.0, span["current"]),
        "speed_order3_abs": (0.0, span["speed"]),
    }
    for name in FEATURE_NAMES:
        if "_order" in name and name.endswith("_rel"):
            out[name] = (0.0, None)  # a crank-order amplitude relative to the signal's mean
        elif "_phase" in name and name.endswith(("_cos", "_sin")):
            out[name] = (-1.0, 1.0)  # cosine or sine of a relative phase
    return out


def physical_ranges(
    columns: Sequence[str],
    ranges: Mapping[str, tuple[float, float]] = DEFAULT_PHYSICAL_RANGES,
    *,
    window_samples: int = 1000,
    fs: float = 1000.0,
) -> dict[str, Range]:
    """Range spec for raw signal columns (``pressure`` -> (-1, 40)) and feature columns (feature_ranges).

    Columns that are neither are omitted (they are still checked for nulls and non-finite values by
    ``validate_dataset``).
    """
    known: dict[str, Range] = {**feature_ranges(ranges, window_samples=window_samples, fs=fs), **ranges}
    return {col: known[col] for col in columns if col in known}


def _fmt(x: float | None) -> str:
    return "-inf" if x is None else f"{x:g}"


def _examples(values: Sequence[Any], n: int = 3) -> str:
    shown: list[str] = []
    for v in values:
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        if text not in shown:
            shown.append(text)
        if len(shown) == n:
            break
    return ", ".join(shown)


def _rows(count: Any) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


_KIND_BY_TYPE = {
    "expect_table_row_count_to_be_between": "rows",
    "expect_column_to_exist": "exists",
    "expect_column_values_to_not_be_null": "null",
    "expect_column_values_to_be_between": "range",
    "expect_column_stdev_to_be_between": "variance",
    "expect_column_values_to_be_in_set": "label_set",
    "expect_column_distinct_values_to_contain_set": "label_classes",
}


def _build_suite(
    gx: Any,
    gxe: Any,
    name: str,
    columns: list[str],
    labels: list[str],
    ranges: Mapping[str, Range],
    min_rows: int,
    require_both_classes: bool,
) -> Any:
    """The expectation suite; each expectation type is used for one purpose so failures map back to words."""
    suite = gx.ExpectationSuite(name=name)
    suite.add_expectation(gxe.ExpectTableRowCountToBeBetween(min_value=min_rows))
    for col in columns + labels:
        suite.add_expectation(gxe.ExpectColumnToExist(column=col))
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=col))
    for col in columns:
        low, high = ranges.get(col, (None, None))
        # An open side still excludes +-inf, so the same expectation doubles as the finiteness check.
        suite.add_expectation(
            gxe.ExpectColumnValuesToBeBetween(
                column=col,
                min_value=-_FLOAT_MAX if low is None else low,
                max_value=_FLOAT_MAX if high is None else high,
            )
        )
        # A column equal in every row (e.g. a sensor flat-lined at one value on every run) teaches nothing.
        suite.add_expectation(gxe.ExpectColumnStdevToBeBetween(column=col, min_value=0, strict_min=True))
    for col in labels:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=[0, 1]))
        if require_both_classes:
            suite.add_expectation(gxe.ExpectColumnDistinctValuesToContainSet(column=col, value_set=[0, 1]))
    return suite


def _signal_of(col: str, table: Mapping[str, str]) -> str:
    return next((signal for signal, c in table.items() if c == col), col)


def _stuck_signal(cols: tuple[str, ...]) -> str:
    return next((signal for signal, c in STUCK_COLUMNS.items() if c == cols), cols[0])


def _describe(
    kind: str, col: str, result: dict[str, Any], df: pd.DataFrame, ranges: Mapping[str, Range], min_rows: int
) -> str:
    count = result.get("unexpected_count")
    examples = _examples(result.get("partial_unexpected_list") or [])
    if kind == "rows":
        return f"only {len(df)} rows, need at least {min_rows}"
    if kind == "exists":
        return f"missing column {col}"
    if kind == "null":
        return f"column {col}: {_rows(count)} null"
    if kind == "range":
        low, high = ranges[col]
        high_text = "inf" if high is None else f"{high:g}"
        return f"column {col}: {_rows(count)} outside [{_fmt(low)}, {high_text}] (e.g. {examples})"
    if kind == "finite":
        return f"column {col}: {_rows(count)} not finite (e.g. {examples})"
    if kind == "variance":
        values = pd.unique(df[col].dropna())
        same = f"every row {values[0]:.6g}" if len(values) == 1 else f"std {result.get('observed_value')}"
        return f"column {col}: no variance over all {_rows(len(df))} ({same})"
    if kind == "label_set":
        return f"label {col}: {_rows(count)} not in {{0, 1}} (e.g. {examples})"
    if kind == "label_classes":
        present = sorted(pd.unique(df[col].dropna()).tolist())
        absent = [c for c in (0, 1) if c not in present]
        return f"label {col}: class {', '.join(map(str, absent))} absent (values present: {present})"
    return f"{kind} check failed on {col}"


def stuck_rows(values: pd.DataFrame | np.ndarray, min_run: int = STUCK_ROWS) -> tuple[int, float | None]:
    """Rows inside runs of at least ``min_run`` consecutive equal rows, and the first column's value in one.

    ``values`` is 1-D, or 2-D with rows equal only when every column is; NaN never equals anything.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if len(x) < min_run or min_run < 2:
        return 0, None
    same = np.r_[False, (x[1:] == x[:-1]).all(axis=1)]  # row equals the one before it
    # Run ids change wherever a row differs from its predecessor; a run's length is its row count.
    run_id = np.cumsum(~same)
    lengths = np.bincount(run_id)
    in_stuck = lengths[run_id] >= min_run
    count = int(in_stuck.sum())
    return count, (float(x[in_stuck][0, 0]) if count else None)


def _exception_message(info: Any) -> str | None:
    """The exception message of a GX result, whether flat or keyed by metric (both shapes occur in 1.x)."""
    if not isinstance(info, dict):
        return None
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if entry.get("raised_exception"):
            return str(entry.get("exception_message") or "unknown error")
    return None


def _stats(df: pd.DataFrame, columns: list[str], labels: list[str]) -> dict[str, Any]:
    present = [c for c in columns if c in df.columns]
    numeric = df[present].select_dtypes(include="number")
    stats: dict[str, Any] = {
        "n_rows": len(df),
        "n_columns": df.shape[1],
        "min": {c: float(numeric[c].min()) for c in numeric.columns},
        "max": {c: float(numeric[c].max()) for c in numeric.columns},
    }
    stats["positive_rate"] = {
        c: float(pd.to_numeric(df[c], errors="coerce").mean()) for c in labels if c in df.columns
    }
    return stats


def _expectation_failures(
    results: Sequence[Any], df: pd.DataFrame, spec: dict[str, Range], missing: set[str], min_rows: int
) -> list[str]:
    """One readable line per failed GX expectation, leaving out lines another line already explains."""
    failures: list[str] = []
    for item in results:
        if item.success:
            continue
        config = item.expectation_config
        if config is None:
            continue
        col = str(config.kwargs.get("column", ""))
        kind = _KIND_BY_TYPE.get(config.type, config.type)
        if kind == "range" and col not in spec:
            kind = "finite"
        if col in missing and kind != "exists":
            continue  # one "missing column" line says it; the rest would be exceptions about the same column
        if kind == "variance" and not np.isfinite(pd.to_numeric(df[col], errors="coerce")).all():
            continue  # the null or finiteness line already names this column; its std means nothing
        error = _exception_message(item.exception_info)
        if error is not None:
            failures.append(f"{kind} check on {col or 'table'} could not run: {error}")
            continue
        failures.append(_describe(kind, col, dict(item.result or {}), df, spec, min_rows))
    return failures


def _sensor_failures(
    df: pd.DataFrame, flat: list[str], stuck: list[tuple[str, ...]], missing: set[str], stuck_run: int
) -> list[str]:
    """Row-wise sensor checks in pandas: flat-lined windows and stuck runs of repeated windows.

    GX keeps one expectation per type and column, and the range check already is the one "values between"
    expectation of these columns.
    """
    failures: list[str] = []
    for col in flat:
        if col in missing:
            continue
        flat_count = int((pd.to_numeric(df[col], errors="coerce").abs() < FLAT_LINE_TOLERANCE).sum())
        if flat_count:
            signal = _signal_of(col, FLAT_LINE_COLUMNS)
            failures.append(
                f"column {col}: {_rows(flat_count)} flat-lined ({signal} did not change within the window)"
            )
    for cols in stuck:
        if missing.intersection(cols):
            continue
        count, value = stuck_rows(df[list(cols)].apply(pd.to_numeric, errors="coerce"), stuck_run)
        if count:
            signal = _stuck_signal(cols)
            failures.append(
                f"column {cols[0]}: {_rows(count)} stuck ({signal} repeats the same window, "
                f"mean {value:.6g}, in {stuck_run} or more consecutive rows)"
            )
    return failures


def validate_dataset(
    df: pd.DataFrame,
    *,
    signal_columns: Sequence[str],
    label_columns: Sequence[str] = (),
    ranges: Mapping[str, Range] | None = None,
    min_rows: int = 100,
    require_both_classes: bool = True,
    site: str | None = None,
    flat_columns: Sequence[str] | None = None,
    stuck_columns: Sequence[tuple[str, ...]] | None = None,
    stuck_run: int = STUCK_ROWS,
    suite_name: str = "fedtwin_training_set",
) -> ValidationOutcome:
    """Validate a training table with Great Expectations before training.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per window (feature table) or per sample (raw signals).
    signal_columns : sequence of str
        Measured/derived numeric columns: must exist, be non-null and finite, lie in ``ranges`` and vary.
    label_columns : sequence of str
        Binary fault labels: must exist, be non-null, lie in {0, 1} and (by default) contain both classes.
    ranges : mapping of column -> (low, high), optional
        Inclusive physical range per column; ``None`` on a side leaves it open (finiteness still checked).
        Default ``physical_ranges(signal_columns)``: every feature column and raw signal column.
    min_rows : int
        Fewest rows accepted.
    require_both_classes : bool
        Fail when a label column lacks class 0 or class 1 (a client could not learn that fault).
    site : str, optional
        The site (client) the table belongs to; every failure line starts with ``site <site>:``.
    flat_columns : sequence of str, optional
        Columns that must not fall below ``FLAT_LINE_TOLERANCE`` (a sensor's relative spread in a window).
        Default: the ``FLAT_LINE_COLUMNS`` among ``signal_columns``.
    stuck_columns : sequence of str, optional
        Groups of columns whose values must not all repeat in ``stuck_run`` consecutive rows (a sensor's
        window mean and spread). Default: the ``STUCK_COLUMNS`` groups within ``signal_columns``.
    stuck_run : int
        Consecutive equal rows that mean a stuck sensor.
    suite_name : str
        Name of the expectation suite (shows up in GX results).

    Returns
    -------
    ValidationOutcome
        ``success``; readable ``failures`` such as
        ``"site leak-site0: column flow_mean: 12 rows outside [-5, 80] (e.g. -30)"``;
        ``stats`` (rows, per-column min/max, label positive rates, ``elapsed_s``).
    """
    start = time.perf_counter()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # lazy: GX imports in 2.7 s (after this module's 0.9 s): paid by a validation, not by every importer
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    columns, labels = list(signal_columns), list(label_columns)
    spec = dict(physical_ranges(columns) if ranges is None else ranges)
    flat = [c for c in (FLAT_LINE_COLUMNS.values() if flat_columns is None else flat_columns) if c in columns]
    groups = STUCK_COLUMNS.values() if stuck_columns is None else stuck_columns
    stuck = [tuple(g) for g in groups if all(c in columns for c in g)]
    # GX keeps process-wide context state; concurrent validations (Prefect runs tasks in threads) would
    # see each other's half-built definitions, so one validation runs at a time.
    with _GX_LOCK:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        batch_definition = (
            context.data_sources.add_pandas("fedtwin_pandas")
            .add_dataframe_asset("training_set")
            .add_batch_definition_whole_dataframe("whole")
        )
        suite = _build_suite(gx, gxe, suite_name, columns, labels, spec, min_rows, require_both_classes)
        suite = context.suites.add(suite)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch_definition, suite=suite)
        )
        # Nullable/extension dtypes and inf are passed through untouched: GX sees what training would see.
        run = definition.run(batch_parameters={"dataframe": df}, result_format="SUMMARY")

    missing = {c for c in columns + labels if c not in df.columns}
    failures = _expectation_failures(run.results, df, spec, missing, min_rows)
    failures += _sensor_failures(df, flat, stuck, missing, stuck_run)
    if site is not None:
        failures = [f"site {site}: {f}" for f in failures]
    stats = _stats(df, columns, labels)
    stats.update(
        n_expectations=len(run.results),
        elapsed_s=time.perf_counter() - start,
        ranges={k: [_fmt(lo), "inf" if hi is None else f"{hi:g}"] for k, (lo, hi) in spec.items()},
    )
    return ValidationOutcome(success=bool(run.success) and not failures, failures=failures, stats=stats)


__all__ = [
    "DEFAULT_PHYSICAL_RANGES",
    "FLAT_LINE_COLUMNS",
    "FLAT_LINE_TOLERANCE",
    "STUCK_COLUMNS",
    "ValidationOutcome",
    "feature_ranges",
    "physical_ranges",
    "stuck_rows",
    "validate_dataset",
]
