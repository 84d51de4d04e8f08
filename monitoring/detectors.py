"""One interface for every drift/anomaly detector: ``fit(reference)`` then ``check(current) -> DriftResult``.

Every detector shares the same input validation, so no detector can report drift (or its absence) from input
that cannot support the claim: too few rows gives ``not_enough_data``, NaN/inf or missing columns give
``invalid_data``, and columns that are constant in the reference are left out of the comparison.
"""

from __future__ import annotations

import abc
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

DriftStatus = Literal["drift", "no_drift", "not_enough_data", "invalid_data"]
STATUSES: tuple[DriftStatus, ...] = ("drift", "no_drift", "not_enough_data", "invalid_data")


@dataclass
class DriftResult:
    """Outcome of one ``check``: a status, a readable reason and the numbers behind it.

    ``per_feature`` holds one score per compared column; ``score_kind`` says what it is (``"p_value"``: small
    means drift; ``"distance"``: large means drift; ``"mixed"``: Evidently chose per column, see ``methods``).
    ``report`` holds the detector's native report object (e.g. an Evidently Snapshot) for ``save_reports``; it
    is not serialised.
    """

    status: DriftStatus
    reason: str
    drifted_features: list[str] = field(default_factory=list)
    drift_share: float = 0.0
    per_feature: dict[str, float] = field(default_factory=dict)
    n_reference: int = 0
    n_current: int = 0
    threshold: float = 0.5
    detector: str = ""
    score_kind: str = "p_value"
    methods: dict[str, str] = field(default_factory=dict)
    ignored_features: list[str] = field(default_factory=list)
    html_path: str | None = None
    json_path: str | None = None
    elapsed_s: float = 0.0
    report: Any = field(default=None, repr=False, compare=False)

    @property
    def is_drift(self) -> bool:
        """True only for a valid comparison that found drift."""
        return self.status == "drift"

    @property
    def is_valid(self) -> bool:
        """True when the input supported a comparison (drift or no drift)."""
        return self.status in ("drift", "no_drift")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the native report object)."""
        out = asdict(self)
        out.pop("report", None)
        out["per_feature"] = {k: float(v) for k, v in self.per_feature.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftResult:
        """Rebuild a result from ``to_dict`` output, ignoring unknown keys."""
        known = {f for f in cls.__dataclass_fields__ if f != "report"}
        return cls(**{k: v for k, v in data.items() if k in known})


@runtime_checkable
class DriftDetector(Protocol):
    """What flows and tasks rely on: fit on a reference window, then check current windows against it."""

    def fit(self, reference: pd.DataFrame) -> Self:
        """Remember the reference data (one row per window, one column per feature)."""
        ...

    def check(self, current: pd.DataFrame) -> DriftResult:
        """Compare ``current`` with the reference; never raises on bad data, reports it in the status."""
        ...


@dataclass
class PreparedInput:
    """Inputs that passed validation: the columns to compare and what was left out."""

    reference: pd.DataFrame
    current: pd.DataFrame
    columns: list[str]
    ignored: list[str]
    notes: list[str]


def _bad_value_summary(frame: pd.DataFrame, columns: list[str]) -> dict[str, str]:
    """Per column with NaN/inf, a short count such as ``"3 NaN, 1 inf"``."""
    out: dict[str, str] = {}
    values = frame[columns].to_numpy(dtype=float, na_value=np.nan)
    n_nan = np.isnan(values).sum(axis=0)
    n_inf = np.isinf(values).sum(axis=0)
    for col, a, b in zip(columns, n_nan, n_inf, strict=True):
        parts = [f"{int(a)} NaN"] if a else []
        parts += [f"{int(b)} inf"] if b else []
        if parts:
            out[col] = ", ".join(parts)
    return out


def _is_constant(values: np.ndarray, rtol: float = 1e-9) -> bool:
    lo, hi = float(np.min(values)), float(np.max(values))
    return hi - lo <= rtol * max(1.0, abs(lo), abs(hi))


def _select_columns(reference: pd.DataFrame, columns: list[str] | None, notes: list[str]) -> list[str]:
    """``columns``, or else every numeric non-bool column of ``reference`` (others go to ``notes``)."""
    if columns is not None:
        return [str(c) for c in columns]
    numeric = [
        str(c) for c in reference.select_dtypes(include="number").columns if reference[c].dtype != bool
    ]
    skipped = [str(c) for c in reference.columns if str(c) not in numeric]
    if skipped:
        notes.append(f"non-numeric columns not compared: {', '.join(skipped)}")
    return numeric


def _schema_problem(reference: pd.DataFrame, current: pd.DataFrame, cols: list[str]) -> str | None:
    """Why the frames cannot be compared on ``cols`` (missing or non-numeric columns), or None."""
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            return f"{name} data lacks columns: {', '.join(missing)}"
        non_numeric = [c for c in cols if not pd.api.types.is_numeric_dtype(frame[c])]
        if non_numeric:
            return f"{name} columns are not numeric: {', '.join(non_numeric)}"
    return None


def _value_problem(reference: pd.DataFrame, current: pd.DataFrame, cols: list[str]) -> str | None:
    """Which frame has NaN/inf in ``cols`` and where, or None."""
    for name, frame in (("reference", reference), ("current", current)):
        bad = _bad_value_summary(frame, cols)
        if bad:
            listed = "; ".join(f"{c}: {s}" for c, s in bad.items())
            return f"{name} data has non-finite values ({listed})"
    return None


def _constant_columns(ref: pd.DataFrame, cur: pd.DataFrame, cols: list[str], notes: list[str]) -> list[str]:
    """Those of ``cols`` constant in ``ref``; noted first in ``notes`` (and any that moved in ``cur``)."""
    ignored: list[str] = []
    for c in cols:
        ref_values = ref[c].to_numpy()
        if _is_constant(ref_values):
            ignored.append(c)
            # A constant reference has no distribution to test against, but a moved value is still
            # worth a human's attention, so say so in the reason.
            cur_values = cur[c].to_numpy()
            if not np.allclose(cur_values, ref_values[0], rtol=1e-9, atol=0.0):
                notes.append(f"{c} is constant in the reference ({ref_values[0]:g}) but not in current")
    if ignored:
        notes.insert(0, f"constant in reference, not compared: {', '.join(ignored)}")
    return ignored


def prepare_input(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: list[str] | None,
    min_rows: int,
    drop_constant: bool = True,
) -> PreparedInput | tuple[DriftStatus, str]:
    """Validate a reference/current pair; return the prepared input or ``(status, reason)``.

    Order matters: schema problems first (nothing else is meaningful), then row counts, then values.
    """
    if not isinstance(reference, pd.DataFrame) or not isinstance(current, pd.DataFrame):
        return "invalid_data", "reference and current must be pandas DataFrames"
    notes: list[str] = []
    cols = _select_columns(reference, columns, notes)
    if not cols:
        return "invalid_data", "no numeric feature columns to compare"
    schema = _schema_problem(reference, current, cols)
    if schema is not None:
        return "invalid_data", schema
    short = [
        f"{name} has {len(f)} rows"
        for name, f in (("reference", reference), ("current", current))
        if len(f) < min_rows
    ]
    if short:
        return "not_enough_data", f"{' and '.join(short)}; need at least {min_rows}"
    values = _value_problem(reference, current, cols)
    if values is not None:
        return "invalid_data", values
    ref = reference[cols].astype(float)
    cur = current[cols].astype(float)
    ignored = _constant_columns(ref, cur, cols, notes) if drop_constant else []
    kept = [c for c in cols if c not in ignored]
    if not kept:
        return "invalid_data", "every feature column is constant in the reference; nothing to compare"
    return PreparedInput(ref[kept], cur[kept], kept, ignored, notes)


class BaseDriftDetector(abc.ABC):
    """Shared ``fit``/``check`` with validation; subclasses implement ``_compare`` on clean, numeric frames.

    Parameters
    ----------
    drift_share : float
        Share of compared features that must drift for the status to be ``"drift"``.
    min_rows : int
        Fewest rows (windows) accepted in either frame.
    columns : list of str, optional
        Features to compare; default every numeric column of the reference.
    """

    name = "base"
    drop_constant = True

    def __init__(
        self, drift_share: float = 0.5, min_rows: int = 30, columns: list[str] | None = None
    ) -> None:
        if not 0.0 < drift_share <= 1.0:
            raise ValueError(f"drift_share must be in (0, 1], got {drift_share}")
        if min_rows < 2:
            raise ValueError(f"min_rows must be at least 2, got {min_rows}")
        self.drift_share = drift_share
        self.min_rows = min_rows
        self.columns = columns
        self._reference: pd.DataFrame | None = None

    @property
    def reference(self) -> pd.DataFrame:
        """The fitted reference frame."""
        if self._reference is None:
            raise RuntimeError(f"{type(self).__name__}.check() called before fit()")
        return self._reference

    def fit(self, reference: pd.DataFrame) -> Self:
        """Remember a copy of the reference; it is validated together with each current frame in ``check``."""
        if not isinstance(reference, pd.DataFrame):
            raise TypeError(f"reference must be a pandas DataFrame, got {type(reference).__name__}")
        self._reference = reference.copy()
        return self

    def check(self, current: pd.DataFrame) -> DriftResult:
        """Validate, compare, summarise; bad input gives ``not_enough_data``/``invalid_data``, never drift."""
        start = time.perf_counter()
        reference = self.reference
        n_ref = len(reference)
        n_cur = len(current) if isinstance(current, pd.DataFrame) else 0
        prepared = prepare_input(
            reference, current, columns=self.columns, min_rows=self.min_rows, drop_constant=self.drop_constant
        )
        if isinstance(prepared, tuple):
            return DriftResult(
                status=prepared[0],
                reason=prepared[1],
                n_reference=n_ref,
                n_current=n_cur,
                threshold=self.drift_share,
                detector=self.name,
                elapsed_s=time.perf_counter() - start,
            )
        comparison = self._compare(prepared.reference, prepared.current)
        drifted = [c for c in prepared.columns if comparison.drifted.get(c, False)]
        share = len(drifted) / len(prepared.columns)
        status: DriftStatus = "drift" if share >= self.drift_share else "no_drift"
        head = (
            f"{len(drifted)} of {len(prepared.columns)} features drifted "
            f"(share {share:.2f} {'>=' if status == 'drift' else '<'} threshold {self.drift_share:.2f})"
        )
        if drifted:
            shown = ", ".join(drifted[:8]) + (f", ... (+{len(drifted) - 8})" if len(drifted) > 8 else "")
            head += f": {shown}"
        reason = "; ".join([head, *prepared.notes])
        return DriftResult(
            status=status,
            reason=reason,
            drifted_features=drifted,
            drift_share=share,
            per_feature=comparison.scores,
            n_reference=n_ref,
            n_current=n_cur,
            threshold=self.drift_share,
            detector=self.name,
            score_kind=comparison.score_kind,
            methods=comparison.methods,
            ignored_features=prepared.ignored,
            elapsed_s=time.perf_counter() - start,
            report=comparison.report,
        )

    @abc.abstractmethod
    def _compare(self, reference: pd.DataFrame, current: pd.DataFrame) -> Comparison:
        """Score each column of two validated, finite, numeric frames with identical columns."""


@dataclass
class Comparison:
    """What a detector's ``_compare`` returns: per-column scores and drift flags."""

    scores: dict[str, float]
    drifted: dict[str, bool]
    score_kind: str = "p_value"
    methods: dict[str, str] = field(default_factory=dict)
    report: Any = None
