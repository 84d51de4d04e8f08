"""Scoring engine without I/O: sensor chunks -> per-asset windows -> features -> scores -> raise/clear alerts.

The engine keeps, per asset, a buffer of the current (incomplete) window and the de-bouncing state of each
fault. A batch of chunks is first cut into complete, non-overlapping windows of ``window_s``; all windows of
the batch are then featurised and scored in one vectorised call; de-bouncing runs per window in time order.

A window whose features or scores are not all finite (a sensor sent NaN, a feature overflowed, the model
returned NaN) carries no evidence: it is flagged in ``BatchResult.invalid``, counted in
``EngineStats.invalid_windows``, never passed to the model, and leaves the de-bouncing state as it was, so it
can neither raise nor clear an alert (nor count as a healthy window towards a clear).

Sequence numbers guard the buffers: a gap (``seq`` jumped) or a producer restart (``seq`` went back while time
went forward) discards the partial window, a replayed chunk (``seq`` and time went back) is dropped. The state
is serialisable (``snapshot``/``restore``) so a restarted scorer continues where the last commit left off.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from federated.model import decide
from fedtwin.data.schema import ALERT_VERSION, DECISION_VERSION, SIGNALS, SensorChunk
from plant_models.spec import FAULTS  # fault outputs in the order the models emit them

#: ``extract_features(windows, fs)``: signal -> (n_windows, n_samples) in, (n_windows, n_features) out.
FeatureFn = Callable[[dict[str, np.ndarray], float], np.ndarray]


#: (seq, t0) of the chunk that completed a window: the clock of the plant's truth records.
_Closer = tuple[int, float]

#: A chunk whose t0 is further than this from where the previous chunk ended starts a new window.
TIME_GAP_S = 0.05


class ProbaModel(Protocol):
    """What the engine needs from a classifier."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Per-fault probabilities, shape (n, n_faults)."""
        ...


@dataclass(frozen=True)
class ActiveModel:
    """A classifier plus the identity that goes into every alert it causes."""

    model: ProbaModel
    name: str
    version: int
    faults: tuple[str, ...] = FAULTS
    thresholds: np.ndarray = field(default_factory=lambda: np.full(len(FAULTS), 0.5))
    fallback: float | None = None  # federated.model.decide: the most probable fault when none clears its bar

    @classmethod
    def wrap(cls, model: ProbaModel, name: str, version: int) -> ActiveModel:
        """Take fault names and thresholds from the model (``fault_names``, ``thresholds_``) or defaults."""
        faults = tuple(getattr(model, "fault_names", FAULTS))
        thr = getattr(model, "thresholds_", None)
        if thr is None:
            thr = getattr(model, "thresholds", None)
        thresholds = (
            np.full(len(faults), 0.5) if thr is None else np.asarray(thr, dtype=np.float64).reshape(-1)
        )
        if thresholds.shape != (len(faults),):
            raise ValueError(f"model has {len(faults)} faults but {thresholds.shape} thresholds")
        fb = getattr(model, "fallback_threshold", None)
        return cls(
            model=model,
            name=name,
            version=int(version),
            faults=faults,
            thresholds=thresholds,
            fallback=None if fb is None else float(fb),
        )


@dataclass
class EngineStats:
    """Counters since the engine was created."""

    chunks: int = 0
    samples: int = 0
    windows: int = 0
    gaps: int = 0
    missing_chunks: int = 0
    duplicates: int = 0
    restarts: int = 0
    discarded_samples: int = 0
    rejected: int = 0
    alerts: int = 0
    invalid_windows: int = 0


@dataclass
class BatchResult:
    """Outcome of one ``process`` call.

    ``rejected`` lists (input index, reason) of chunks the engine cannot score (e.g. wrong sample rate);
    ``window_assets``/``window_starts``/``features``/``scores`` describe every window completed in the batch;
    ``invalid`` flags the windows with a non-finite feature or score (their ``scores`` row is NaN; they were
    not de-bounced and should not be stored as measurements). ``decisions`` holds one decision record per
    valid window per model (champion first, then each shadow; see :func:`decision_records`) and
    ``model_errors`` the shadows whose ``predict_proba`` raised or misbehaved in this batch (name -> reason):
    they have no decisions for it, and the champion's scoring is unaffected.
    """

    alerts: list[dict[str, Any]]
    rejected: list[tuple[int, str]]
    window_assets: list[str]
    window_starts: np.ndarray
    window_source_ts: np.ndarray
    features: np.ndarray
    scores: np.ndarray
    invalid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    decisions: list[dict[str, Any]] = field(default_factory=list)
    model_errors: dict[str, str] = field(default_factory=dict)


@dataclass
class _FaultState:
    pos: int = 0
    neg: int = 0
    active: bool = False


@dataclass
class _AssetState:
    buf: np.ndarray  # (len(SIGNALS), window_samples)
    fill: int = 0
    start: float = 0.0  # epoch time of buf[:, 0]
    next_seq: int = 0
    last_t_end: float = float("-inf")
    faults: dict[str, _FaultState] = field(default_factory=dict)


def _score(m: ActiveModel, X: np.ndarray, finite_x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores ``P`` (NaN rows where invalid), the valid-window mask and the per-window decisions of ``m``.

    Only windows with finite features reach the model (many models raise on NaN input); a window whose
    score is not finite is invalid too (a NaN score is no evidence of health either).
    """
    n_win, n_faults = len(finite_x), len(m.faults)
    P = np.full((n_win, n_faults), np.nan)
    valid = finite_x.copy()
    if valid.any():
        p_valid = np.asarray(m.model.predict_proba(X[valid]), dtype=np.float64)
        if p_valid.shape != (int(valid.sum()), n_faults):
            raise ValueError(f"model returned shape {p_valid.shape}, expected {(int(valid.sum()), n_faults)}")
        P[valid] = p_valid
    valid &= np.isfinite(P).all(axis=1)
    P[~valid] = np.nan
    positive = np.zeros((n_win, n_faults), dtype=bool)
    positive[valid] = decide(P[valid], m.thresholds, m.fallback) > 0
    return P, valid, positive


@dataclass(frozen=True)
class _DecisionContext:
    """What every decision record of a batch shares: its windows, their closing chunks and the wall time."""

    windows: list[tuple[str, float, float]]
    closers: list[_Closer]
    ts: float


def decision_records(
    ctx: _DecisionContext,
    m: ActiveModel,
    role: str,
    P: np.ndarray,
    valid: np.ndarray,
    positive: np.ndarray,
) -> list[dict[str, Any]]:
    """One decision record per valid window: the model's un-debounced fault set and its probabilities.

    ``seq``/``t`` are the sequence number and ``t0`` (plant time, the truth record's clock) of the chunk
    that completed the window; ``faults`` is empty for a window the model finds healthy.
    """
    out = []
    faults = m.faults
    for k in np.flatnonzero(valid):
        seq, t = ctx.closers[k]
        row = P[k]
        out.append(
            {
                "v": DECISION_VERSION,
                "asset": ctx.windows[k][0],
                "model": m.name,
                "version": m.version,
                "role": role,
                "seq": int(seq),
                "t": float(t),
                "ts": ctx.ts,
                "faults": [f for f, on in zip(faults, positive[k], strict=True) if on],
                "scores": {f: round(float(x), 6) for f, x in zip(faults, row, strict=True)},
            }
        )
    return out


class ScoringEngine:
    """Windowing, vectorised scoring and alert de-bouncing for many assets.

    Parameters
    ----------
    features : FeatureFn
        Feature extractor applied to all complete windows of a batch at once.
    model : ActiveModel or None
        Classifier in use; ``process`` raises until one is set.
    window_s, fs : float
        Window length (s) and the sample rate every chunk must have (Hz).
    raise_windows, clear_windows : int
        Consecutive positive windows that raise a fault, consecutive negative windows that clear it.
    clock : callable
        Source of ``produced_at`` (epoch s); injectable for tests.
    """

    def __init__(
        self,
        features: FeatureFn,
        model: ActiveModel | None = None,
        *,
        window_s: float = 1.0,
        fs: float = 1000.0,
        raise_windows: int = 2,
        clear_windows: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_samples = round(window_s * fs)
        if self.window_samples < 1:
            raise ValueError(f"window_s * fs must be >= 1 sample, got {window_s} * {fs}")
        if raise_windows < 1 or clear_windows < 1:
            raise ValueError("raise_windows and clear_windows must be >= 1")
        self.features = features
        self.model = model
        self.window_s = window_s
        self.fs = float(fs)
        self.raise_windows = raise_windows
        self.clear_windows = clear_windows
        self.clock = clock
        self.stats = EngineStats()
        self._assets: dict[str, _AssetState] = {}
        #: Shadow models by slot name: scored on every window with the champion, never alerting.
        self.shadows: dict[str, ActiveModel] = {}

    @classmethod
    def from_settings(
        cls, settings: Any, features: FeatureFn, model: ActiveModel | None = None
    ) -> ScoringEngine:
        """Engine with the window, sample rate and de-bouncing of ``settings``."""
        return cls(
            features,
            model,
            window_s=settings.window_s,
            fs=settings.sample_rate_hz,
            raise_windows=settings.alert_raise_windows,
            clear_windows=settings.alert_clear_windows,
        )

    def set_model(self, model: ActiveModel) -> None:
        """Use ``model`` from the next ``process`` call on; de-bouncing state carries over."""
        self.model = model

    def set_shadow(self, slot: str, model: ActiveModel | None) -> None:
        """Score every window with ``model`` too from the next ``process`` call on (None: stop doing so).

        A shadow's decisions are reported in ``BatchResult.decisions`` only: it has no de-bouncing state and
        never raises or clears an alert.
        """
        if model is None:
            self.shadows.pop(slot, None)
        else:
            self.shadows[slot] = model

    @property
    def assets(self) -> list[str]:
        """Assets with state."""
        return list(self._assets)

    def active_faults(self, asset: str) -> list[str]:
        """Faults currently raised on ``asset``."""
        st = self._assets.get(asset)
        return [] if st is None else [f for f, s in st.faults.items() if s.active]

    # ------------------------------------------------------------------ windowing
    def _state(self, asset: str) -> _AssetState:
        st = self._assets.get(asset)
        if st is None:
            st = _AssetState(buf=np.empty((len(SIGNALS), self.window_samples)))
            self._assets[asset] = st
        return st

    def _admit(self, st: _AssetState, chunk: SensorChunk, fresh: bool) -> bool:
        """Check the sequence; reset the partial window on a gap or restart. False = drop the chunk."""
        if fresh:
            return True
        if chunk.seq == st.next_seq:
            if abs(chunk.t0 - st.last_t_end) <= TIME_GAP_S:
                return True
            # Next seq but a time jump: a plant restarted from its cursor; never join two runs in one window.
            self.stats.gaps += 1
            self.stats.discarded_samples += st.fill
            st.fill = 0
            return True
        if chunk.seq > st.next_seq:
            self.stats.gaps += 1
            self.stats.missing_chunks += chunk.seq - st.next_seq
        elif chunk.t0 >= st.last_t_end - 0.5 / self.fs:
            # seq went back but time moved on: the producer restarted its counter.
            self.stats.restarts += 1
        else:
            self.stats.duplicates += 1
            return False
        self.stats.discarded_samples += st.fill
        st.fill = 0
        return True

    def _cut(
        self, chunks: Sequence[SensorChunk], source_ts: Sequence[float] | None
    ) -> tuple[list[tuple[str, float, float]], list[np.ndarray], list[tuple[int, str]], list[_Closer]]:
        windows: list[tuple[str, float, float]] = []  # (asset, start, source_ts)
        closers: list[_Closer] = []  # (seq, t0) of the chunk that completed each window
        data: list[np.ndarray] = []
        rejected: list[tuple[int, str]] = []
        w = self.window_samples
        for i, chunk in enumerate(chunks):
            if abs(chunk.fs - self.fs) > 1e-9 * self.fs:
                rejected.append(
                    (i, f"sample rate {chunk.fs:g} Hz differs from the configured {self.fs:g} Hz")
                )
                self.stats.rejected += 1
                continue
            fresh = chunk.asset not in self._assets
            st = self._state(chunk.asset)
            if not self._admit(st, chunk, fresh):
                continue
            # Row-by-row slice copies: ~5x cheaper than stacking the chunk first (this loop is per message).
            rows = [chunk.signals[s] for s in SIGNALS]
            n = rows[0].shape[0]
            st.next_seq = chunk.seq + 1
            st.last_t_end = chunk.t0 + n / self.fs
            self.stats.chunks += 1
            self.stats.samples += n
            ts = float(source_ts[i]) if source_ts is not None else float("nan")
            buf = st.buf
            pos = 0
            while pos < n:
                fill = st.fill
                if fill == 0:
                    st.start = chunk.t0 + pos / self.fs
                take = min(w - fill, n - pos)
                for j, row in enumerate(rows):
                    buf[j, fill : fill + take] = row[pos : pos + take]
                st.fill = fill + take
                pos += take
                if st.fill == w:
                    windows.append((chunk.asset, st.start, ts))
                    closers.append((chunk.seq, chunk.t0))
                    data.append(buf.copy())
                    st.fill = 0
        return windows, data, rejected, closers

    # ------------------------------------------------------------------ scoring
    def process(self, chunks: Sequence[SensorChunk], source_ts: Sequence[float] | None = None) -> BatchResult:
        """Buffer ``chunks`` (in arrival order), score every window they complete and return the alerts.

        ``source_ts`` are the chunks' produce times (epoch s), copied into alerts as ``input_ts`` for latency.
        """
        if self.model is None:
            raise RuntimeError("no model set: call set_model() first")
        model = self.model
        windows, data, rejected, closers = self._cut(chunks, source_ts)
        n_win = len(windows)
        if n_win == 0:
            empty = np.empty((0,))
            return BatchResult(
                [], rejected, [], empty, empty, np.empty((0, 0)), np.empty((0, len(model.faults)))
            )
        stacked = np.stack(data)  # (n_win, signals, samples)
        X = np.asarray(self.features({s: stacked[:, j, :] for j, s in enumerate(SIGNALS)}, self.fs))
        finite_x = np.isfinite(X).all(axis=1) if X.ndim == 2 else np.zeros(n_win, dtype=bool)
        P, valid, positive = _score(model, X, finite_x)
        self.stats.windows += n_win
        self.stats.invalid_windows += int(n_win - valid.sum())
        alerts: list[dict[str, Any]] = []
        dur = self.window_samples / self.fs
        for k, (asset, start, ts) in enumerate(windows):
            if valid[k]:
                alerts.extend(self._debounce(asset, start, start + dur, ts, P[k], positive[k], model))
        self.stats.alerts += len(alerts)
        ctx = _DecisionContext(windows, closers, self.clock())
        decisions = decision_records(ctx, model, "champion", P, valid, positive)
        errors = self._score_shadows(ctx, X, finite_x, decisions)
        return BatchResult(
            alerts=alerts,
            rejected=rejected,
            window_assets=[a for a, _, _ in windows],
            window_starts=np.array([s for _, s, _ in windows]),
            window_source_ts=np.array([t for _, _, t in windows]),
            features=X,
            scores=P,
            invalid=~valid,
            decisions=decisions,
            model_errors=errors,
        )

    def _score_shadows(
        self, ctx: _DecisionContext, X: np.ndarray, finite_x: np.ndarray, out: list[dict[str, Any]]
    ) -> dict[str, str]:
        """Append every shadow's decisions on the batch's feature matrix to ``out``; return the failures.

        Each shadow is isolated: whatever its ``predict_proba`` raises or returns wrongly costs its own
        decisions of this batch only (reported by name), never the champion's nor another shadow's.
        """
        errors: dict[str, str] = {}
        for slot, shadow in list(self.shadows.items()):
            try:
                P, valid, positive = _score(shadow, X, finite_x)
            except Exception as exc:
                errors[slot] = f"{type(exc).__name__}: {exc}"
                continue
            out.extend(decision_records(ctx, shadow, "shadow", P, valid, positive))
        return errors

    def _debounce(
        self,
        asset: str,
        start: float,
        end: float,
        ts: float,
        p: np.ndarray,
        positive: np.ndarray,
        m: ActiveModel,
    ) -> list[dict[str, Any]]:
        st = self._assets[asset]
        raised: list[str] = []
        cleared: list[str] = []
        for j, fault in enumerate(m.faults):
            fs = st.faults.get(fault)
            if fs is None:
                fs = st.faults[fault] = _FaultState()
            if positive[j]:
                fs.pos += 1
                fs.neg = 0
                if not fs.active and fs.pos >= self.raise_windows:
                    fs.active = True
                    raised.append(fault)
            else:
                fs.neg += 1
                fs.pos = 0
                if fs.active and fs.neg >= self.clear_windows:
                    fs.active = False
                    cleared.append(fault)
        if not raised and not cleared:
            return []
        scores = {f: round(float(x), 6) for f, x in zip(m.faults, p, strict=True)}
        active = [f for f, s in st.faults.items() if s.active]
        now = self.clock()
        out = []
        for kind, faults in (("raise", raised), ("clear", cleared)):
            if faults:
                out.append(
                    {
                        "v": ALERT_VERSION,
                        "asset": asset,
                        "kind": kind,
                        "faults": faults,
                        "active": active,
                        "scores": scores,
                        "window_start": start,
                        "window_end": end,
                        "model_name": m.name,
                        "model_version": m.version,
                        "produced_at": now,
                        "input_ts": None if ts != ts else ts,  # NaN -> unknown
                    }
                )
        return out

    # ------------------------------------------------------------------ state
    def snapshot(self, assets: Iterable[str] | None = None) -> dict[str, Any]:
        """JSON-able state of ``assets`` (default: all): partial window, sequence and de-bouncing."""
        out: dict[str, Any] = {}
        for a in self._assets if assets is None else assets:
            st = self._assets.get(a)
            if st is None:
                continue
            out[a] = {
                "fill": st.fill,
                "start": st.start,
                "next_seq": st.next_seq,
                "last_t_end": st.last_t_end,
                "buf": base64.b64encode(np.ascontiguousarray(st.buf[:, : st.fill]).tobytes()).decode("ascii"),
                "faults": {f: [s.pos, s.neg, int(s.active)] for f, s in st.faults.items()},
            }
        return {"window_samples": self.window_samples, "fs": self.fs, "assets": out}

    def restore(self, snap: Mapping[str, Any]) -> list[str]:
        """Load a ``snapshot``; return the restored assets (ValueError if the window shape differs)."""
        if int(snap.get("window_samples", -1)) != self.window_samples or float(snap.get("fs", -1)) != self.fs:
            raise ValueError("snapshot was taken with another window length or sample rate")
        restored = []
        for a, s in snap.get("assets", {}).items():
            st = _AssetState(buf=np.empty((len(SIGNALS), self.window_samples)))
            fill = int(s["fill"])
            part = np.frombuffer(base64.b64decode(s["buf"]), dtype=np.float64)
            if part.size != fill * len(SIGNALS):
                raise ValueError(f"snapshot buffer of {a!r} has the wrong size")
            st.buf[:, :fill] = part.reshape(len(SIGNALS), fill)
            st.fill, st.start, st.next_seq = fill, float(s["start"]), int(s["next_seq"])
            st.last_t_end = float(s["last_t_end"])
            st.faults = {f: _FaultState(int(v[0]), int(v[1]), bool(v[2])) for f, v in s["faults"].items()}
            self._assets[a] = st
            restored.append(a)
        return restored

    def drop(self, assets: Iterable[str]) -> None:
        """Forget the state of ``assets`` (their partitions moved to another scorer)."""
        for a in assets:
            self._assets.pop(a, None)
