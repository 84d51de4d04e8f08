"""Live evaluation: each served model's decisions joined with the plant's ground truth.

Pure code (no Kafka, Redis, MLflow or Prefect): the flow reads the decision and truth records, this module
joins them and computes the figures, so the tests check exactly what the flow reports.

The join is per asset and plant time. A truth record says which faults are active on an asset from chunk
``seq`` (plant time ``t``) on, until the asset's next truth record. A decision (one scored window) is labelled
by the truth in effect at the chunk that closed its window (the record with the largest ``seq`` not above the
decision's ``seq``). Windows closed less than ``settle_s`` after the active fault set changed hold data from
before and after the change, so they are left out of the window figures (exact match, precision and recall,
false alarms); they still count for the detection delay.

Figures per model (``name vN``):

- ``exact_match``: share of labelled windows whose decided fault set equals the active set;
- ``precision_<fault>``, ``recall_<fault>``: over the same windows (NaN when nothing was decided / active);
- ``detection_delay_p50_s`` / ``_p90_s``: from the chunk where a fault took effect (its onset: absent before,
  active after) to the first decision on that asset containing it, at or after the onset and before the
  fault is removed again; onsets never detected count in ``missed_onsets``;
- ``false_alarms_per_asset_hour``: false alarms (a run of consecutive windows deciding a fault while the
  asset is healthy counts once) per hour of healthy plant time (healthy windows x ``window_s``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedtwin.data.schema import SchemaError, decode_decision, loads

#: The metrics a comparison shows first, in this order (``live_`` is prefixed on MLflow).
HEADLINE: tuple[str, ...] = ("exact_match", "detection_delay_p50_s", "false_alarms_per_asset_hour")


@dataclass(frozen=True, slots=True)
class Decision:
    """One scored window of one model (the decision record's fields the join needs)."""

    asset: str
    model: str
    version: int
    role: str
    seq: int
    t: float
    faults: frozenset[str]

    @property
    def label(self) -> str:
        """The model's name in reports: ``<model> v<version>``."""
        return f"{self.model} v{self.version}"


@dataclass(frozen=True, slots=True)
class Truth:
    """One ground-truth change: the active faults of ``asset`` from chunk ``seq`` (plant time ``t``) on."""

    asset: str
    seq: int
    t: float
    active: frozenset[str]


def _field(msg: Mapping[str, Any], name: str, kinds: tuple[type, ...], what: str) -> Any:
    value = msg.get(name)
    if type(value) not in kinds:
        raise SchemaError(f"{what}: {name!r} must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    return value


def _time(msg: Mapping[str, Any], name: str, what: str) -> float:
    value = float(_field(msg, name, (int, float), what))
    if not math.isfinite(value):
        raise SchemaError(f"{what}: {name!r} must be finite")
    return value


def _names(value: Any, name: str, what: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise SchemaError(f"{what}: {name!r} must be a list of fault names")
    return frozenset(value)


def _object(data: bytes | str | Mapping[str, Any], what: str) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    try:
        msg = loads(data)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"{what}: invalid JSON ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(msg, dict):
        raise SchemaError(f"{what}: expected a JSON object, got {type(msg).__name__}")
    return msg


def parse_decision(data: bytes | str) -> Decision:
    """Strictly decode a v1 decision record (``fedtwin.data.schema.decode_decision``) into what the join
    needs.

    Raises
    ------
    SchemaError
        One line saying what is wrong with the record.
    """
    msg = decode_decision(data.encode() if isinstance(data, str) else data)
    if msg["seq"] < 0 or msg["version"] < 1 or not math.isfinite(msg["t"]):
        raise SchemaError("decision record: 'seq' must be >= 0, 'version' >= 1 and 't' finite")
    return Decision(
        asset=msg["asset"],
        model=msg["model"],
        version=msg["version"],
        role=msg["role"],
        seq=msg["seq"],
        t=float(msg["t"]),
        faults=frozenset(msg["faults"]),
    )


def parse_truth(data: bytes | str | Mapping[str, Any]) -> Truth:
    """Decode a v1 truth record (``fedtwin.data.schema.truth_record``).

    Raises
    ------
    SchemaError
        One line naming the first field that is missing or ill-typed.
    """
    what = "truth record"
    msg = _object(data, what)
    if msg.get("v") != 1:
        raise SchemaError(f"{what}: unsupported version {msg.get('v')!r} (expected 1)")
    seq = _field(msg, "seq", (int,), what)
    return Truth(
        asset=_field(msg, "asset", (str,), what),
        seq=seq,
        t=_time(msg, "t", what),
        active=_names(msg.get("active"), "active", what),
    )


@dataclass
class _Tally:
    """Running counts of one model."""

    role: str = "shadow"
    windows: int = 0
    unlabelled: int = 0
    settling: int = 0
    exact: int = 0
    decided: dict[str, int] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    healthy_windows: int = 0
    false_alarms: int = 0
    delays: list[float] = field(default_factory=list)
    onsets: int = 0
    faults_seen: set[str] = field(default_factory=set)


class _Timeline:
    """One asset's truth: the records in ``seq`` order and the onsets (fault, seq, t, end seq)."""

    def __init__(self, records: Sequence[Truth]) -> None:
        self.records = sorted(records, key=lambda r: r.seq)
        self.seqs = [r.seq for r in self.records]
        # When the active set last changed, per record (a repeated set, e.g. an operating-point change or a
        # new severity, keeps the earlier change time: the data did not change class).
        self.changed_t: list[float] = []
        # (fault, onset seq, onset t, end seq); end is inf while the fault stays
        self.onsets: list[tuple[str, int, float, float]] = []
        prev: frozenset[str] = frozenset()
        for k, rec in enumerate(self.records):
            same = k > 0 and rec.active == prev
            self.changed_t.append(self.changed_t[-1] if same else rec.t)
            for fault in sorted(rec.active - prev):
                end = next((r.seq for r in self.records[k + 1 :] if fault not in r.active), math.inf)
                self.onsets.append((fault, rec.seq, rec.t, float(end)))
            prev = rec.active

    def at(self, seq: int) -> int | None:
        """Index of the record in effect at chunk ``seq`` (None: before the first)."""
        k = bisect.bisect_right(self.seqs, seq) - 1
        return k if k >= 0 else None


def _window_figures(
    tally: _Tally, timelines: Mapping[str, _Timeline], runs: Sequence[Decision], settle_s: float
) -> None:
    """Exact match, per-fault counts and false alarms of one model on one asset (decisions in seq order)."""
    timeline = timelines.get(runs[0].asset)
    in_alarm = False
    for d in runs:
        k = timeline.at(d.seq) if timeline is not None else None
        if timeline is None or k is None:
            tally.unlabelled += 1
            in_alarm = False
            continue
        if d.t - timeline.changed_t[k] < settle_s and k > 0:
            tally.settling += 1
            in_alarm = False
            continue
        truth = timeline.records[k].active
        tally.windows += 1
        tally.exact += d.faults == truth
        tally.faults_seen |= truth
        for f in d.faults:
            tally.decided[f] = tally.decided.get(f, 0) + 1
        for f in truth:
            tally.active[f] = tally.active.get(f, 0) + 1
        for f in d.faults & truth:
            tally.hits[f] = tally.hits.get(f, 0) + 1
        if truth:
            in_alarm = False
            continue
        tally.healthy_windows += 1
        if d.faults and not in_alarm:
            tally.false_alarms += 1
        in_alarm = bool(d.faults)


def _delays(tally: _Tally, timeline: _Timeline | None, runs: Sequence[Decision], window_s: float) -> None:
    """Detection delay of every onset on one asset, for one model's decisions (in seq order)."""
    if timeline is None:
        return
    # The model's first window on this asset began about window_s before it closed.
    first_t, last_seq = runs[0].t - window_s, runs[-1].seq
    for fault, seq, t, end in timeline.onsets:
        if t < first_t or seq > last_seq:
            continue  # the model was not scoring this asset when the fault took effect
        tally.onsets += 1
        hit = next((d for d in runs if seq <= d.seq < end and fault in d.faults), None)
        if hit is not None:
            tally.delays.append(hit.t - t)


def evaluate(
    decisions: Iterable[Decision],
    truth: Iterable[Truth],
    *,
    window_s: float,
    settle_s: float | None = None,
    faults: Sequence[str] = (),
) -> dict[str, dict[str, float]]:
    """Per model (``name vN``), the live figures of its decisions against ``truth``.

    Parameters
    ----------
    decisions, truth : iterables of Decision and Truth
        In any order; a decision repeated (same model, version, asset and seq: at-least-once delivery) counts
        once, the last copy wins.
    window_s : float
        Plant time one window covers (s): the healthy exposure is healthy windows x ``window_s``.
    settle_s : float, optional
        Windows closed less than this after the active set changed are left out of the window figures
        (default ``window_s``: the window that straddles the change).
    faults : sequence of str
        Faults that always get a precision and recall entry (others appear when decided or active).

    Returns
    -------
    dict
        ``{label: {metric: value}}``; see the module docstring. Also ``windows``, ``unlabelled_windows``,
        ``settling_windows``, ``healthy_hours``, ``false_alarms``, ``onsets``, ``missed_onsets``,
        ``faults_seen`` (how many distinct faults were active in the labelled windows) and ``is_champion``.
    """
    settle = window_s if settle_s is None else settle_s
    timelines: dict[str, list[Truth]] = {}
    for rec in truth:
        timelines.setdefault(rec.asset, []).append(rec)
    lines = {asset: _Timeline(recs) for asset, recs in timelines.items()}
    unique: dict[tuple[str, int, str, int], Decision] = {}
    for d in decisions:
        unique[(d.model, d.version, d.asset, d.seq)] = d
    per_model: dict[str, dict[str, list[Decision]]] = {}
    roles: dict[str, str] = {}
    for d in sorted(unique.values(), key=lambda d: (d.asset, d.seq)):
        per_model.setdefault(d.label, {}).setdefault(d.asset, []).append(d)
        roles[d.label] = d.role  # the latest role (a promotion during the campaign makes it the champion)
    out = {}
    for label, by_asset in per_model.items():
        tally = _Tally(role=roles[label])
        for asset, runs in by_asset.items():
            _window_figures(tally, lines, runs, settle)
            _delays(tally, lines.get(asset), runs, window_s)
        out[label] = _figures(tally, window_s, faults)
    return out


def _ratio(num: int, den: int) -> float:
    return num / den if den else math.nan


def _figures(tally: _Tally, window_s: float, faults: Sequence[str]) -> dict[str, float]:
    healthy_h = tally.healthy_windows * window_s / 3600.0
    delays = np.asarray(tally.delays, dtype=float)
    out: dict[str, float] = {
        "exact_match": _ratio(tally.exact, tally.windows),
        "detection_delay_p50_s": float(np.percentile(delays, 50)) if delays.size else math.nan,
        "detection_delay_p90_s": float(np.percentile(delays, 90)) if delays.size else math.nan,
        "false_alarms_per_asset_hour": tally.false_alarms / healthy_h if healthy_h else math.nan,
        "windows": float(tally.windows),
        "unlabelled_windows": float(tally.unlabelled),
        "settling_windows": float(tally.settling),
        "healthy_hours": healthy_h,
        "false_alarms": float(tally.false_alarms),
        "onsets": float(tally.onsets),
        "missed_onsets": float(tally.onsets - len(tally.delays)),
        "faults_seen": float(len(tally.faults_seen)),
        "is_champion": float(tally.role == "champion"),
    }
    for f in sorted(set(faults) | set(tally.decided) | set(tally.active)):
        out[f"precision_{f}"] = _ratio(tally.hits.get(f, 0), tally.decided.get(f, 0))
        out[f"recall_{f}"] = _ratio(tally.hits.get(f, 0), tally.active.get(f, 0))
    return out


def comparison_markdown(results: Mapping[str, Mapping[str, float]], title: str = "Live evaluation") -> str:
    """A markdown table of the headline figures per model (champion first), for artifacts and run notes."""
    cols = (*HEADLINE, "detection_delay_p90_s", "windows", "onsets", "missed_onsets")
    order = sorted(results, key=lambda m: (-results[m].get("is_champion", 0.0), m))
    lines = [f"## {title}", "", "| model | role | " + " | ".join(cols) + " |", "|---" * (len(cols) + 2) + "|"]
    for m in order:
        role = "champion" if results[m].get("is_champion") else "shadow"
        cells = [_cell(results[m].get(c, math.nan)) for c in cols]
        lines.append(f"| {m} | {role} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:.3f}"
