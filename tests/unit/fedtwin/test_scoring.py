"""Scoring engine: windowing, vectorised scoring, de-bouncing, sequence gaps and state snapshots."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from fedtwin.schema import SIGNALS, SensorChunk
from fedtwin.scoring import FAULTS, ActiveModel, ScoringEngine


def mean_features(windows: dict[str, np.ndarray], fs: float) -> np.ndarray:
    """Per-signal window means: tiny, exact and easy to steer from a test."""
    return np.stack([windows[s].mean(axis=1) for s in SIGNALS], axis=1)


class FakeModel:
    """Fault j is 'present' (p = 0.9) when the mean of signal j (pressure, flow, speed) exceeds 0.5."""

    fault_names = FAULTS
    thresholds_ = np.array([0.5, 0.5, 0.5])

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        return np.where(X[:, :3] > 0.5, 0.9, 0.1)


def make_engine(**kw: object) -> tuple[ScoringEngine, FakeModel]:
    model = FakeModel()
    params: dict = {
        "window_s": 1.0,
        "fs": 100.0,
        "raise_windows": 2,
        "clear_windows": 3,
        "clock": lambda: 42.0,
    }
    params.update(kw)
    eng = ScoringEngine(mean_features, ActiveModel.wrap(model, "m", 1), **params)
    return eng, model


def chunk(
    asset: str,
    seq: int,
    level: tuple[float, float, float] = (0, 0, 0),
    n: int = 10,
    fs: float = 100.0,
    t0: float | None = None,
) -> SensorChunk:
    """A chunk whose pressure/flow/speed are constant at ``level`` (current 0); t0 follows seq by default."""
    t = 1000.0 + seq * n / fs if t0 is None else t0
    sig = {s: np.full(n, float(level[j]) if j < 3 else 0.0) for j, s in enumerate(SIGNALS)}
    return SensorChunk(asset=asset, seq=seq, t0=t, fs=fs, signals=sig)


def stream(asset: str, levels: Sequence[tuple[float, float, float]], start_seq: int = 0) -> list[SensorChunk]:
    """10 chunks (one window at fs=100, n=10) per entry of ``levels``."""
    return [chunk(asset, start_seq + w * 10 + k, lv) for w, lv in enumerate(levels) for k in range(10)]


H, LEAK, BOTH = (0, 0, 0), (1, 0, 0), (1, 1, 0)


def test_windows_are_cut_non_overlapping_and_timed_from_t0() -> None:
    eng, model = make_engine()
    res = eng.process(stream("a", [H, H, H])[:25])
    assert len(res.window_assets) == 2 and model.calls == [2]  # one vectorised call for the batch
    np.testing.assert_allclose(res.window_starts, [1000.0, 1001.0])
    assert eng.stats.windows == 2 and eng.stats.samples == 250
    tail = [chunk("a", 26 + k, t0=1002.55 + k * 0.1) for k in range(5)]
    res = eng.process([chunk("a", 25, n=5, t0=1002.5), *tail])
    assert len(res.window_assets) == 1 and res.window_starts[0] == pytest.approx(1002.0)


def test_chunk_longer_than_a_window_yields_several_windows() -> None:
    eng, _ = make_engine()
    res = eng.process([chunk("a", 0, n=250)])
    np.testing.assert_allclose(res.window_starts, [1000.0, 1001.0])
    res = eng.process([chunk("a", 1, n=50, t0=1002.5)])
    np.testing.assert_allclose(res.window_starts, [1002.0])


def test_raise_after_consecutive_positives_and_clear_after_negatives() -> None:
    eng, _ = make_engine()
    alerts = eng.process(stream("a", [LEAK, H, LEAK, LEAK, LEAK, H, H, H, H])).alerts
    assert [(a["kind"], a["faults"], a["window_start"]) for a in alerts] == [
        ("raise", ["leak"], 1003.0),  # the isolated positive at 1000 did not raise
        ("clear", ["leak"], 1007.0),  # third negative in a row
    ]
    a = alerts[0]
    assert a["v"] == 1 and a["asset"] == "a" and a["window_end"] == 1004.0
    assert a["scores"] == {"leak": 0.9, "blocked_inlet": 0.1, "bearing": 0.1}
    assert a["model_name"] == "m" and a["model_version"] == 1 and a["produced_at"] == 42.0
    assert a["active"] == ["leak"] and alerts[1]["active"] == []
    json.dumps(alerts)  # JSON-able as is


def test_debouncing_is_per_fault_and_per_asset() -> None:
    eng, _ = make_engine(raise_windows=1, clear_windows=1)
    a_chunks = stream("a", [BOTH, LEAK, H])
    b_chunks = stream("b", [H, (0, 0, 1), H])
    mixed = [c for pair in zip(a_chunks, b_chunks, strict=True) for c in pair]  # interleaved in one batch
    alerts = eng.process(mixed).alerts
    got = [(a["asset"], a["kind"], a["faults"]) for a in alerts]
    assert got == [
        ("a", "raise", ["leak", "blocked_inlet"]),
        ("a", "clear", ["blocked_inlet"]),
        ("b", "raise", ["bearing"]),
        ("a", "clear", ["leak"]),
        ("b", "clear", ["bearing"]),
    ]


def test_gap_resets_partial_window_and_is_counted() -> None:
    eng, _ = make_engine()
    chunks = stream("a", [H, H])
    res = eng.process(chunks[:5] + chunks[7:])  # seq 5, 6 missing
    assert eng.stats.gaps == 1 and eng.stats.missing_chunks == 2 and eng.stats.discarded_samples == 50
    assert len(res.window_assets) == 1 and res.window_starts[0] == pytest.approx(1000.7)


def test_time_jump_with_consecutive_seq_starts_a_new_window() -> None:
    """A plant restarted from its seq cursor hours later must not finish the old partial window."""
    eng, _ = make_engine()
    first = [chunk("a", k) for k in range(5)]
    later = [chunk("a", 5 + k, t0=5000.0 + k * 0.1) for k in range(10)]
    res = eng.process(first + later)
    assert eng.stats.gaps == 1 and eng.stats.discarded_samples == 50
    assert res.window_starts.tolist() == [5000.0]


def test_replayed_chunks_are_dropped_and_producer_restart_is_accepted() -> None:
    eng, _ = make_engine()
    chunks = stream("a", [H])
    eng.process(chunks[:6])
    res = eng.process(chunks[3:])  # 3..5 replayed
    assert eng.stats.duplicates == 3 and len(res.window_assets) == 1
    restart = [chunk("a", k, t0=2000.0 + k * 0.1) for k in range(10)]  # seq back to 0, time moved on
    res = eng.process(restart)
    assert eng.stats.restarts == 1 and res.window_starts.tolist() == [2000.0]


def test_wrong_sample_rate_is_rejected_not_scored() -> None:
    eng, _ = make_engine()
    res = eng.process([chunk("a", 0), chunk("a", 1, fs=50.0)])
    assert res.rejected == [(1, "sample rate 50 Hz differs from the configured 100 Hz")]
    assert eng.stats.chunks == 1


def test_snapshot_restore_continues_exactly() -> None:
    levels = [LEAK, LEAK, LEAK, H, H, H, LEAK, LEAK]
    chunks = stream("a", levels) + stream("b", levels[::-1])
    ref, _ = make_engine()
    expected = ref.process(chunks).alerts
    first, _ = make_engine()
    cut = 37
    got = first.process(chunks[:cut]).alerts
    snap = json.loads(json.dumps(first.snapshot()))  # survives JSON
    second, _ = make_engine()
    assert sorted(second.restore(snap)) == ["a"]
    got += second.process(chunks[cut:]).alerts
    assert got == expected


def test_restore_refuses_other_window_shape() -> None:
    eng, _ = make_engine()
    eng.process(stream("a", [H])[:3])
    other, _ = make_engine(window_s=2.0)
    with pytest.raises(ValueError):
        other.restore(eng.snapshot())


def test_model_swap_applies_to_next_batch_and_keeps_debounce_state() -> None:
    eng, _ = make_engine()
    eng.process(stream("a", [LEAK]))
    eng.set_model(ActiveModel.wrap(FakeModel(), "m", 2))
    alerts = eng.process(stream("a", [LEAK], start_seq=10)).alerts
    assert [(a["kind"], a["model_version"]) for a in alerts] == [("raise", 2)]


def test_process_without_model_raises() -> None:
    eng = ScoringEngine(mean_features, None, window_s=1.0, fs=100.0)
    with pytest.raises(RuntimeError):
        eng.process([chunk("a", 0)])


def test_thresholds_come_from_the_model() -> None:
    model = FakeModel()
    model.thresholds_ = np.array([0.95, 0.5, 0.5])  # leak needs p >= 0.95: never with the fake's 0.9
    eng = ScoringEngine(
        mean_features, ActiveModel.wrap(model, "m", 1), window_s=1.0, fs=100.0, raise_windows=1
    )
    assert eng.process(stream("a", [LEAK, LEAK])).alerts == []


def test_the_models_fallback_names_the_most_probable_fault_when_none_clears_its_threshold() -> None:
    """The fake says 0.9 for a present fault: with every threshold at 0.95 only the fallback can raise it."""
    model = FakeModel()
    model.thresholds_ = np.array([0.95, 0.95, 0.95])
    for fallback, expected in ((None, []), (0.5, ["leak"])):
        model.fallback_threshold = fallback  # type: ignore[attr-defined]
        eng = ScoringEngine(
            mean_features, ActiveModel.wrap(model, "m", 1), window_s=1.0, fs=100.0, raise_windows=1
        )
        alerts = eng.process(stream("a", [LEAK, LEAK])).alerts
        assert [a["faults"] for a in alerts] == ([expected] if expected else [])
