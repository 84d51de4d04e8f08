"""Scoring engine: windowing, vectorised scoring, de-bouncing, sequence gaps and state snapshots."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

import numpy as np
import pytest

from fedtwin.data.schema import SIGNALS, SensorChunk
from fedtwin.streaming.scoring import FAULTS, ActiveModel, ScoringEngine


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


# ---------------------------------------------------------------- de-bouncing at exact counts
@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_fault_is_raised_on_exactly_the_kth_consecutive_positive_window(k: int) -> None:
    eng, _ = make_engine(raise_windows=k, clear_windows=1)
    res = eng.process(stream("a", [LEAK] * (k - 1)))
    assert res.alerts == [] and eng.active_faults("a") == []
    alerts = eng.process(stream("a", [LEAK, LEAK], start_seq=10 * (k - 1))).alerts
    assert [(a["kind"], a["faults"], a["window_start"]) for a in alerts] == [
        ("raise", ["leak"], 1000.0 + k - 1)
    ]
    assert eng.active_faults("a") == ["leak"]  # the (k+1)th positive does not raise again


@pytest.mark.parametrize("m", [1, 2, 3])
def test_a_fault_is_cleared_on_exactly_the_mth_consecutive_negative_window(m: int) -> None:
    eng, _ = make_engine(raise_windows=1, clear_windows=m)
    assert [a["kind"] for a in eng.process(stream("a", [LEAK])).alerts] == ["raise"]
    assert eng.process(stream("a", [H] * (m - 1), start_seq=10)).alerts == []
    assert eng.active_faults("a") == ["leak"]
    alerts = eng.process(stream("a", [H, H], start_seq=10 * m)).alerts
    assert [(a["kind"], a["faults"], a["window_start"]) for a in alerts] == [("clear", ["leak"], 1000.0 + m)]
    assert eng.active_faults("a") == []


def test_a_negative_window_restarts_the_positive_count_and_vice_versa() -> None:
    eng, _ = make_engine(raise_windows=2, clear_windows=2)
    assert eng.process(stream("a", [LEAK, H, LEAK, H, LEAK])).alerts == []
    alerts = eng.process(stream("a", [LEAK, H, LEAK, H, H], start_seq=50)).alerts
    assert [(a["kind"], a["window_start"]) for a in alerts] == [("raise", 1005.0), ("clear", 1009.0)]


# ---------------------------------------------------------------- windows without evidence
NAN = (float("nan"), 0, 0)


def test_non_finite_windows_are_flagged_counted_and_never_reach_the_model() -> None:
    eng, model = make_engine()
    res = eng.process(stream("a", [H, NAN, LEAK]))
    assert res.invalid.tolist() == [False, True, False]
    assert np.isnan(res.scores[1]).all() and res.scores[0].tolist() == [0.1, 0.1, 0.1]
    assert model.calls == [2]  # only the two finite windows
    assert eng.stats.invalid_windows == 1 and eng.stats.windows == 3
    res = eng.process(stream("a", [NAN], start_seq=30))
    assert model.calls == [2] and res.invalid.tolist() == [True] and res.alerts == []
    assert eng.stats.invalid_windows == 2


def test_non_finite_windows_never_clear_an_alert() -> None:
    """Three NaN windows used to count as healthy and cleared a real leak (issue 12)."""
    eng, _ = make_engine(raise_windows=2, clear_windows=3)
    alerts = eng.process(stream("a", [LEAK, LEAK, NAN, NAN, NAN, NAN])).alerts
    assert [a["kind"] for a in alerts] == ["raise"]
    assert eng.active_faults("a") == ["leak"]
    alerts = eng.process(stream("a", [H, H, NAN, H], start_seq=60)).alerts
    assert [(a["kind"], a["window_start"]) for a in alerts] == [("clear", 1009.0)]  # 3rd finite negative


def test_non_finite_windows_do_not_break_a_run_of_positives() -> None:
    eng, _ = make_engine(raise_windows=2)
    alerts = eng.process(stream("a", [LEAK, NAN, LEAK])).alerts
    assert [(a["kind"], a["window_start"]) for a in alerts] == [("raise", 1002.0)]


class NaNModel(FakeModel):
    """Returns NaN for the leak head when the flow mean is above 0.5 (a model that breaks on some inputs)."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        P = super().predict_proba(X)
        P[X[:, 1] > 0.5, 0] = np.nan
        return P


def test_a_nan_score_is_not_a_healthy_window() -> None:
    model = NaNModel()
    eng = ScoringEngine(
        mean_features,
        ActiveModel.wrap(model, "m", 1),
        window_s=1.0,
        fs=100.0,
        raise_windows=1,
        clear_windows=1,
    )
    assert [a["kind"] for a in eng.process(stream("a", [LEAK])).alerts] == ["raise"]
    res = eng.process(stream("a", [(0, 1, 0), (0, 1, 0)], start_seq=10))
    assert res.invalid.tolist() == [True, True] and np.isnan(res.scores).all()
    assert res.alerts == [] and eng.active_faults("a") == ["leak"]
    assert eng.stats.invalid_windows == 2


def test_model_with_the_wrong_output_shape_is_an_error() -> None:
    class Wide(FakeModel):
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return np.zeros((len(X), 4))

    eng = ScoringEngine(mean_features, ActiveModel.wrap(Wide(), "m", 1), window_s=1.0, fs=100.0)
    with pytest.raises(ValueError, match=r"model returned shape \(1, 4\), expected \(1, 3\)"):
        eng.process(stream("a", [H]))


def test_empty_batch_result_has_the_models_width() -> None:
    eng, model = make_engine()
    res = eng.process(stream("a", [H])[:3])
    assert res.alerts == [] and res.window_assets == [] and model.calls == []
    assert res.scores.shape == (0, 3) and res.invalid.shape == (0,)


# ---------------------------------------------------------------- windowing limits
def test_time_gap_limit_is_inclusive() -> None:
    """t0 within 0.05 s of where the previous chunk ended continues the window; beyond starts a new one."""
    eng, _ = make_engine()
    eng.process([chunk("a", 0, t0=1000.0)])  # ends at 1000.1
    eng.process([chunk("a", 1, t0=1000.15)])  # 0.05 late (binary: just under)
    assert eng.stats.gaps == 0 and eng._assets["a"].fill == 20
    eng.process([chunk("a", 2, t0=1000.25 + 0.0501)])
    assert eng.stats.gaps == 1 and eng.stats.discarded_samples == 20 and eng._assets["a"].fill == 10
    eng.process([chunk("a", 3, t0=1000.4001 - 0.0502)])  # early by more than the limit
    assert eng.stats.gaps == 2


def test_sample_rate_tolerance_is_relative() -> None:
    eng, _ = make_engine()
    res = eng.process([chunk("a", 0, fs=100.0 * (1 + 5e-10)), chunk("a", 1, fs=100.0 * (1 + 2e-9))])
    assert [i for i, _ in res.rejected] == [1] and eng.stats.rejected == 1 and eng.stats.chunks == 1


def test_restart_versus_replay_is_decided_by_time() -> None:
    """seq went back: a restart when time moved on (by up to half a sample early), a replay otherwise."""
    eng, _ = make_engine()
    eng.process([chunk("a", 0), chunk("a", 1), chunk("a", 2)])  # ends at 1000.3
    eng.process([chunk("a", 0, t0=1000.3 - 0.004)])  # 0.4 sample early: still a restart
    assert (eng.stats.restarts, eng.stats.duplicates) == (1, 0)
    eng.process([chunk("a", 0, t0=1000.0)])  # seq 0 again, time back at the start: a replay
    assert (eng.stats.restarts, eng.stats.duplicates) == (1, 1)
    assert eng.stats.discarded_samples == 30  # the restart dropped the partial window of 30 samples


def test_counters_and_asset_bookkeeping() -> None:
    eng, _ = make_engine()
    eng.process(stream("a", [H])[:4] + stream("b", [H])[:2])
    assert eng.stats.chunks == 6 and eng.stats.samples == 60 and eng.stats.windows == 0
    assert sorted(eng.assets) == ["a", "b"]
    eng.drop(["a", "zzz"])
    assert eng.assets == ["b"] and eng.active_faults("a") == []


def test_alerts_carry_the_source_timestamp_or_none() -> None:
    eng, _ = make_engine(raise_windows=1)
    chunks = stream("a", [LEAK])
    alerts = eng.process(chunks, source_ts=[5.0 + k for k in range(10)]).alerts
    assert alerts[0]["input_ts"] == 14.0  # the chunk that completed the window
    eng2, _ = make_engine(raise_windows=1)
    res = eng2.process(chunks)
    assert res.alerts[0]["input_ts"] is None and np.isnan(res.window_source_ts).all()


# ---------------------------------------------------------------- construction and state
def test_constructor_limits() -> None:
    with pytest.raises(ValueError, match=">= 1 sample"):
        ScoringEngine(mean_features, window_s=0.004, fs=100.0)
    ScoringEngine(mean_features, window_s=0.01, fs=100.0)  # one sample is enough for the engine
    for kw in ({"raise_windows": 0}, {"clear_windows": 0}):
        with pytest.raises(ValueError, match="must be >= 1"):
            ScoringEngine(mean_features, window_s=1.0, fs=100.0, **kw)  # type: ignore[arg-type]


def test_from_settings_uses_window_rate_and_debouncing() -> None:
    class S:
        window_s, sample_rate_hz, alert_raise_windows, alert_clear_windows = 0.5, 200.0, 4, 5

    eng = ScoringEngine.from_settings(S(), mean_features)
    assert (eng.window_samples, eng.fs, eng.raise_windows, eng.clear_windows) == (100, 200.0, 4, 5)
    assert eng.model is None


def test_wrap_reads_thresholds_names_and_fallback() -> None:
    class Plain:
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return X

    m = ActiveModel.wrap(Plain(), "n", 7)  # type: ignore[arg-type]
    assert m.faults == FAULTS and m.thresholds.tolist() == [0.5, 0.5, 0.5] and m.fallback is None
    p = Plain()
    p.fault_names = ("x", "y")  # type: ignore[attr-defined]
    p.thresholds = [0.2, 0.7]  # type: ignore[attr-defined]
    p.fallback_threshold = 0.3  # type: ignore[attr-defined]
    m = ActiveModel.wrap(p, "n", "8")  # type: ignore[arg-type]
    assert (m.faults, m.thresholds.tolist(), m.fallback, m.version) == (("x", "y"), [0.2, 0.7], 0.3, 8)
    p.thresholds = [0.2]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"model has 2 faults but \(1,\) thresholds"):
        ActiveModel.wrap(p, "n", 1)  # type: ignore[arg-type]


def test_snapshot_content() -> None:
    eng, _ = make_engine(raise_windows=1)
    eng.process([*stream("a", [LEAK]), chunk("a", 10, (1, 0, 0), n=3, t0=1001.0)])
    snap = eng.snapshot()
    assert snap["window_samples"] == 100 and snap["fs"] == 100.0
    a = snap["assets"]["a"]
    assert (a["fill"], a["start"], a["next_seq"]) == (3, 1001.0, 11)
    assert a["last_t_end"] == pytest.approx(1001.03)
    assert a["faults"] == {"leak": [1, 0, 1], "blocked_inlet": [0, 1, 0], "bearing": [0, 1, 0]}
    assert len(a["buf"]) == len(base64.b64encode(np.zeros(12).tobytes()))
    assert eng.snapshot(["missing"]) == {"window_samples": 100, "fs": 100.0, "assets": {}}


def test_restore_refuses_a_buffer_of_the_wrong_size_and_other_sample_rate() -> None:
    eng, _ = make_engine()
    eng.process(stream("a", [H])[:3])
    snap = json.loads(json.dumps(eng.snapshot()))
    snap["assets"]["a"]["fill"] = 29
    with pytest.raises(ValueError, match="snapshot buffer of 'a' has the wrong size"):
        make_engine()[0].restore(snap)
    other, _ = make_engine(fs=50.0, window_s=2.0)  # same 100 samples, other rate
    with pytest.raises(ValueError, match="another window length or sample rate"):
        other.restore(eng.snapshot())


# ---------------------------------------------------------------- limits at exact binary values
def exact_engine(**kw: object) -> ScoringEngine:
    """fs = 128 Hz: chunk ends and half-sample steps are exact binary fractions."""
    params: dict = {"window_s": 1.0, "fs": 128.0, "clock": lambda: 0.0}
    params.update(kw)
    return ScoringEngine(mean_features, ActiveModel.wrap(FakeModel(), "m", 1), **params)


def exact_chunk(seq: int, t0: float) -> SensorChunk:
    return SensorChunk("a", seq, t0, 128.0, {s: np.zeros(16) for s in SIGNALS})  # 0.125 s


def test_time_gap_of_exactly_the_limit_continues_the_window() -> None:
    eng = exact_engine()
    eng.process([exact_chunk(0, -0.125)])  # ends at exactly 0.0
    eng.process([exact_chunk(1, 0.05)])  # |0.05 - 0.0| == TIME_GAP_S
    assert eng.stats.gaps == 0 and eng._assets["a"].fill == 32


def test_restart_at_exactly_half_a_sample_early_and_replay_one_sample_early() -> None:
    eng = exact_engine()
    eng.process([exact_chunk(0, -0.25), exact_chunk(1, -0.125)])  # ends at 0.0
    eng.process([exact_chunk(0, -0.5 / 128)])  # seq back, t0 == end - half a sample: a restart
    assert (eng.stats.restarts, eng.stats.duplicates) == (1, 0)
    eng.process([exact_chunk(1, -0.5 / 128 + 0.125 - 1.0 / 128)])  # in order again (seq 1), 1 sample early
    eng.process([exact_chunk(0, -0.5 / 128 + 0.25 - 2.0 / 128)])  # seq back, one sample before the end
    assert (eng.stats.restarts, eng.stats.duplicates) == (1, 1)


def test_counters_accumulate_over_batches() -> None:
    eng, _ = make_engine(raise_windows=1, clear_windows=1)
    eng.process([chunk("a", 0), chunk("a", 1, fs=50.0), chunk("a", 3), chunk("a", 2)])
    eng.process([chunk("a", 1, fs=50.0), chunk("a", 6), chunk("a", 0, t0=5000.0)])
    s = eng.stats
    assert s.rejected == 2 and s.gaps == 2 and s.missing_chunks == 2 + 2 and s.restarts == 1
    assert s.duplicates == 1 and s.discarded_samples == 10 + 10 + 10
    eng.process(stream("b", [LEAK, H]))
    eng.process(stream("b", [LEAK, H], start_seq=20))
    assert eng.stats.windows == 4 and eng.stats.alerts == 4


def test_a_rejected_chunk_does_not_stop_the_rest_of_the_batch() -> None:
    eng, _ = make_engine()
    res = eng.process([chunk("a", 0, fs=50.0), *stream("a", [H])])
    assert res.rejected == [(0, "sample rate 50 Hz differs from the configured 100 Hz")]
    assert len(res.window_assets) == 1 and eng.stats.chunks == 10


def test_batch_result_fields() -> None:
    eng, _ = make_engine()
    res = eng.process(stream("a", [H, LEAK]))
    assert res.rejected == [] and res.window_assets == ["a", "a"]
    np.testing.assert_array_equal(res.features, [[0, 0, 0, 0], [1, 0, 0, 0]])
    empty = eng.process([])
    assert empty.window_starts.shape == (0,) and empty.window_source_ts.shape == (0,)
    assert empty.features.shape == (0, 0) and empty.scores.shape == (0, 3)


def test_the_engine_passes_its_sample_rate_to_the_features() -> None:
    seen: list[float] = []

    def features(windows: dict[str, np.ndarray], fs: float) -> np.ndarray:
        seen.append(fs)
        return mean_features(windows, fs)

    eng = ScoringEngine(features, ActiveModel.wrap(FakeModel(), "m", 1), window_s=1.0, fs=100.0)
    eng.process(stream("a", [H]))
    assert seen == [100.0]


def test_alert_scores_are_rounded_to_six_decimals() -> None:
    class Precise(FakeModel):
        def predict_proba(self, X: np.ndarray) -> np.ndarray:
            return np.where(X[:, :3] > 0.5, 0.87654321, 0.12345678)

    eng = ScoringEngine(
        mean_features, ActiveModel.wrap(Precise(), "m", 1), window_s=1.0, fs=100.0, raise_windows=1
    )
    alert = eng.process(stream("a", [LEAK])).alerts[0]
    assert alert["scores"] == {"leak": 0.876543, "blocked_inlet": 0.123457, "bearing": 0.123457}


def test_snapshot_of_a_cleared_fault_and_of_listed_assets() -> None:
    eng, _ = make_engine(raise_windows=1, clear_windows=1)
    eng.process(stream("a", [LEAK, H]) + stream("b", [H]))
    snap = json.loads(json.dumps(eng.snapshot(["missing", "a"])))
    assert list(snap["assets"]) == ["a"]
    assert snap["assets"]["a"]["faults"]["leak"] == [0, 1, 0]


def test_restore_then_snapshot_gives_the_same_state() -> None:
    eng, _ = make_engine(raise_windows=3, clear_windows=3)
    eng.process(stream("a", [LEAK, LEAK, LEAK, H])[:37] + stream("b", [LEAK])[:4])
    snap = json.loads(json.dumps(eng.snapshot()))
    other, _ = make_engine(raise_windows=3, clear_windows=3)
    assert other.restore(snap) == ["a", "b"]
    assert json.loads(json.dumps(other.snapshot())) == snap
    assert other.active_faults("a") == ["leak"]


def test_restore_keeps_partial_positive_counts() -> None:
    eng, _ = make_engine(raise_windows=2)
    eng.process(stream("a", [LEAK]))
    other, _ = make_engine(raise_windows=2)
    other.restore(json.loads(json.dumps(eng.snapshot())))
    alerts = other.process(stream("a", [LEAK], start_seq=10)).alerts
    assert [a["kind"] for a in alerts] == ["raise"]


def test_restore_of_an_empty_or_foreign_snapshot() -> None:
    eng, _ = make_engine()
    assert eng.restore({"window_samples": 100, "fs": 100.0}) == []
    with pytest.raises(ValueError, match=r"^snapshot was taken with another window length or sample rate$"):
        eng.restore({})


def test_constructor_defaults_and_messages() -> None:
    eng = ScoringEngine(mean_features)
    assert (eng.window_samples, eng.window_s, eng.fs) == (1000, 1.0, 1000.0)
    assert (eng.raise_windows, eng.clear_windows, eng.model) == (2, 3, None)
    with pytest.raises(ValueError, match=r"^raise_windows and clear_windows must be >= 1$"):
        ScoringEngine(mean_features, raise_windows=0)
    with pytest.raises(RuntimeError, match=r"^no model set: call set_model\(\) first$"):
        eng.process([])


def test_from_settings_keeps_the_features_and_model() -> None:
    class S:
        window_s, sample_rate_hz, alert_raise_windows, alert_clear_windows = 1.0, 100.0, 1, 1

    model = ActiveModel.wrap(FakeModel(), "m", 3)
    eng = ScoringEngine.from_settings(S(), mean_features, model)
    assert eng.features is mean_features and eng.model is model


def test_wrap_flattens_and_converts_thresholds() -> None:
    p = FakeModel()
    p.thresholds_ = np.array([[1, 0, 1]])  # type: ignore[assignment]
    m = ActiveModel.wrap(p, "n", 1)
    assert m.thresholds.shape == (3,) and m.thresholds.dtype == np.float64


def test_restarts_accumulate_and_restore_checks_each_shape_field() -> None:
    eng, _ = make_engine()
    eng.process([chunk("a", 0), chunk("a", 1)])
    eng.process([chunk("a", 0, t0=2000.0)])
    eng.process([chunk("a", 0, t0=3000.0)])
    assert eng.stats.restarts == 2
    with pytest.raises(ValueError, match="another window length or sample rate"):
        eng.restore({"window_samples": 100})  # no sample rate
    one = ScoringEngine(mean_features, window_s=0.01, fs=100.0)  # a 1-sample window
    with pytest.raises(ValueError, match="another window length or sample rate"):
        one.restore({"fs": 100.0})
    slow = ScoringEngine(mean_features, window_s=2.0, fs=1.0)  # 1 Hz
    with pytest.raises(ValueError, match="another window length or sample rate"):
        slow.restore({"window_samples": 2})
