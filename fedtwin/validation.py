"""Great Expectations 1.x validation of a simulated data set before training.

Generic over a column -> (low, high) range spec, so the same call checks the per-window feature table
(``flow_mean``, ``pressure_mean``, ... plus labels ``leak``, ``blocked_inlet``, ``bearing``) or a raw
signal table (``pressure``, ``flow``, ``speed``, ``current``). GX is imported lazily (~2.6-6 s on the 2-core
box); one validation of ~10 columns x 2,000 rows then takes ~0.3-0.9 s.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from fedtwin.errors import DataValidationError

Range = tuple[float | None, float | None]

#: Plausible physical span of each measured signal in its sensor unit (bar, L/min, motor rpm, A).
DEFAULT_PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "pressure": (0.0, 40.0),
    "flow": (0.0, 80.0),
    "speed": (0.0, 3000.0),
    "current": (0.0, 200.0),
}

#: Feature suffixes that stay in the signal's unit and non-negative span (level and spread statistics).
#: Shape statistics (skew, kurtosis, crest factor, spectral bins) get the finiteness check only.
# fmt: off
LEVEL_STATS: frozenset[str] = frozenset(
    {"", "mean", "min", "max", "median", "rms", "std", "ptp", "p2p", "range", "p05", "p5", "p95", "q05",
     "q95"}
)
# fmt: on

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


def physical_ranges(
    columns: Sequence[str], ranges: Mapping[str, tuple[float, float]] = DEFAULT_PHYSICAL_RANGES
) -> dict[str, Range]:
    """Range spec for columns named ``<signal>`` or ``<signal>_<level stat>``, e.g. ``flow_mean`` -> (0, 80).

    Columns that match no signal, or whose statistic is not a level/spread statistic, are omitted (they are
    still checked for nulls and non-finite values by ``validate_dataset``).
    """
    out: dict[str, Range] = {}
    for col in columns:
        for signal, span in ranges.items():
            if col == signal or (col.startswith(signal + "_") and col[len(signal) + 1 :] in LEVEL_STATS):
                out[col] = span
                break
    return out


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


def _values(count: Any, what: str = "values") -> str:
    return f"{count} {what[:-1] if count == 1 else what}"


_KIND_BY_TYPE = {
    "expect_table_row_count_to_be_between": "rows",
    "expect_column_to_exist": "exists",
    "expect_column_values_to_not_be_null": "null",
    "expect_column_values_to_be_between": "range",
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
    for col in labels:
        suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=[0, 1]))
        if require_both_classes:
            suite.add_expectation(gxe.ExpectColumnDistinctValuesToContainSet(column=col, value_set=[0, 1]))
    return suite


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
        return f"column {col}: {_values(count, 'null values')}"
    if kind == "range":
        low, high = ranges[col]
        return f"column {col}: {_values(count)} outside [{_fmt(low)}, {_fmt(high)}] (e.g. {examples})"
    if kind == "finite":
        return f"column {col}: {_values(count, 'non-finite values')} (e.g. {examples})"
    if kind == "label_set":
        return f"label {col}: {_values(count)} not in {{0, 1}} (e.g. {examples})"
    if kind == "label_classes":
        present = sorted(pd.unique(df[col].dropna()).tolist())
        absent = [c for c in (0, 1) if c not in present]
        return f"label {col}: class {', '.join(map(str, absent))} absent (values present: {present})"
    return f"{kind} check failed on {col}"


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


def validate_dataset(
    df: pd.DataFrame,
    *,
    signal_columns: Sequence[str],
    label_columns: Sequence[str] = (),
    ranges: Mapping[str, Range] | None = None,
    min_rows: int = 100,
    require_both_classes: bool = True,
    suite_name: str = "fedtwin_training_set",
) -> ValidationOutcome:
    """Validate a training table with Great Expectations before training.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per window (feature table) or per sample (raw signals).
    signal_columns : sequence of str
        Measured/derived numeric columns: must exist, be non-null and finite, and lie in ``ranges``.
    label_columns : sequence of str
        Binary fault labels: must exist, be non-null, lie in {0, 1} and (by default) contain both classes.
    ranges : mapping of column -> (low, high), optional
        Inclusive physical range per column; ``None`` on a side leaves it open (finiteness still checked).
        Default ``physical_ranges(signal_columns)``: pressure 0-40 bar, flow 0-80 L/min, speed 0-3000 rpm,
        current 0-200 A for level statistics of those signals.
    min_rows : int
        Fewest rows accepted.
    require_both_classes : bool
        Fail when a label column lacks class 0 or class 1 (a client could not learn that fault).
    suite_name : str
        Name of the expectation suite (shows up in GX results).

    Returns
    -------
    ValidationOutcome
        ``success``; readable ``failures`` such as
        ``"column flow_mean: 12 values outside [0, 80] (e.g. -3.2)"``;
        ``stats`` (rows, per-column min/max, label positive rates, ``elapsed_s``).
    """
    start = time.perf_counter()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    columns, labels = list(signal_columns), list(label_columns)
    spec = dict(physical_ranges(columns) if ranges is None else ranges)
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
    failures: list[str] = []
    for item in run.results:
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
        error = _exception_message(item.exception_info)
        if error is not None:
            failures.append(f"{kind} check on {col or 'table'} could not run: {error}")
            continue
        failures.append(_describe(kind, col, dict(item.result or {}), df, spec, min_rows))
    stats = _stats(df, columns, labels)
    stats.update(
        n_expectations=len(run.results),
        elapsed_s=time.perf_counter() - start,
        ranges={k: [_fmt(lo), "inf" if hi is None else f"{hi:g}"] for k, (lo, hi) in spec.items()},
    )
    return ValidationOutcome(success=bool(run.success) and not failures, failures=failures, stats=stats)


__all__ = [
    "DEFAULT_PHYSICAL_RANGES",
    "LEVEL_STATS",
    "ValidationOutcome",
    "physical_ranges",
    "validate_dataset",
]
