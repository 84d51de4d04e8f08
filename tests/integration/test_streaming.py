"""Streaming path against a real Tansu broker and Redis: DLQ, fault -> alert, quiet healthy stream, crash
recovery without lost alerts, hot model reload. Uses the real plant, features and model."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from fedtwin.data.schema import SIGNALS, decode_alert, decode_chunk, encode_chunk
from fedtwin.settings import Settings
from fedtwin.streaming import live
from fedtwin.streaming.scorer import Scorer
from tests.integration._broker import broker, model_record, read_topic, settings_env, stream_settings

__all__ = ["broker", "model_record", "stream_settings"]  # fixtures imported for pytest

pytestmark = pytest.mark.integration


class Background:
    """Run ``fn`` in a thread and keep its result or exception."""

    def __init__(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn(*args, **kwargs)
            except BaseException as exc:
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "background task did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def alerts_of(s: Settings) -> list[dict]:
    return [decode_alert(m.value()) for m in read_topic(s, s.alert_topic)]


def truth_of(s: Settings) -> list[dict]:
    return [json.loads(m.value()) for m in read_topic(s, s.truth_topic)]


def test_malformed_messages_go_to_dlq_with_reason(stream_settings: Settings) -> None:
    from benchmarks.streaming import encode_stream, simulate_signals
    from fedtwin.adapters.kafka_io import make_producer

    s = stream_settings
    good = encode_stream("pump-1", simulate_signals({}, 2.0, seed=3), 100, 1000.0, time.time())
    sig = {k: [1.0, 2.0] for k in SIGNALS}
    base = json.loads(encode_chunk("pump-1", 0, 0.0, 1000.0, sig))
    bad = [
        ("invalid JSON", b"{oops"),
        ("unsupported schema version", json.dumps({**base, "v": 2}).encode()),
        ("missing or non-array signal 'flow'", json.dumps({**base, "flow": None}).encode()),
        ("has 3 samples", json.dumps({**base, "speed": [1.0, 2.0, 3.0]}).encode()),
        ("invalid JSON", encode_chunk("pump-1", 0, 0.0, 1000.0, sig).replace(b"[1.0,2.0]", b"[NaN,2.0]", 1)),
        ("sample rate 500 Hz", encode_chunk("pump-1", 99, 0.0, 500.0, sig)),
        ("differs from asset", encode_chunk("pump-9", 0, 0.0, 1000.0, sig)),
    ]
    p = make_producer(s)
    for value in good + [raw for _, raw in bad] + good[:3]:  # the last 3 are replays: dropped, not DLQ'd
        p.produce(s.sensor_topic, value, b"pump-1")
    assert p.flush(10) == 0

    stats = Scorer(s).run(max_seconds=40, idle_exit_s=2.0)
    assert stats.messages == len(good) + len(bad) + 3
    assert stats.dlq == len(bad) and stats.windows == 2 and stats.duplicates == 3 and stats.alerts == 0

    dlq = read_topic(s, s.dlq_topic)
    reasons = [json.loads(m.value())["reason"] for m in dlq]
    assert len(dlq) == len(bad)
    for needle, count in Counter(n for n, _ in bad).items():
        assert sum(needle in r for r in reasons) == count, (needle, reasons)
    originals = {raw for _, raw in bad}
    for m in dlq:
        rec = json.loads(m.value())
        assert dict(m.headers())["reason"].decode() == rec["reason"] and rec["topic"] == s.sensor_topic
        assert base64.b64decode(rec["value_b64"]) in originals and rec["offset"] >= len(good)


def test_injected_fault_raises_alert_within_bounded_windows(stream_settings: Settings) -> None:
    s = stream_settings
    scorer = Scorer(s)
    sc = Background(scorer.run, max_seconds=90, idle_exit_s=3.0, model_wait_s=10)
    plant = Background(live.run_plant, s, assets=2, duration_s=14.0, speedup=2.0, seed=5)
    time.sleep(2.0)  # ~4 s of plant time
    live.inject(s, "pump-1", "leak", 1.0)
    pstats = plant.join(60)
    stats = sc.join(60)
    assert pstats.chunks == 2 * 140 and stats.messages == pstats.chunks

    onset = [t for t in truth_of(s) if t["asset"] == "pump-1" and t["active"] == ["leak"]]
    assert len(onset) == 1 and onset[0]["seq"] > 10
    t_fault = onset[0]["t"]
    raises = [
        a for a in alerts_of(s) if a["asset"] == "pump-1" and a["kind"] == "raise" and "leak" in a["faults"]
    ]
    assert raises, "no leak alert"
    first = min(raises, key=lambda a: a["window_start"])
    # The window holding the onset may already count; the bound is raise_windows + 1 windows after the onset.
    assert first["window_end"] > t_fault
    assert first["window_end"] <= t_fault + (s.alert_raise_windows + 1) * s.window_s + 1e-6
    assert first["model_version"] == 1 and first["model_name"] == "quick-test-model"
    assert first["scores"]["leak"] > 0.5
    r = redis.Redis.from_url(s.redis_url)
    stream = [json.loads(f[b"alert"]) for _, f in r.xrange(s.key("alerts"))]
    assert first in stream


def test_long_healthy_stream_yields_no_alerts(stream_settings: Settings) -> None:
    from fedtwin.adapters.stack import free_port
    from monitoring.metrics import ScorerMetrics

    s = stream_settings
    plant = live.run_plant(s, assets=4, duration_s=25.0, speedup=0, seed=11)
    metrics = ScorerMetrics()
    port = free_port()
    metrics.serve(port)
    try:
        stats = Scorer(s, metrics=metrics).run(max_seconds=90, idle_exit_s=2.0)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        metrics.shutdown()
    assert stats.messages == plant.chunks == 4 * 250
    assert plant.delivered == plant.chunks + plant.truth_events and plant.failed == 0
    assert stats.windows == 4 * 25 and stats.gaps == 0
    assert stats.alerts == 0 and alerts_of(s) == []
    assert 'fedtwin_scorer_messages_total{outcome="scored"} 1000.0' in body
    assert "fedtwin_scorer_model_version 1.0" in body and "fedtwin_scorer_windows_total 100.0" in body
    assert metrics.value("fedtwin_scorer_window_latency_seconds_count") == 100


def test_undeliverable_messages_are_counted_not_lost_silently(stream_settings: Settings) -> None:
    """A producer whose broker never answers: every message expires and the plant's stats say so."""
    from confluent_kafka import Producer

    from fedtwin.adapters.stack import free_port

    dead = Producer({"bootstrap.servers": f"127.0.0.1:{free_port()}", "message.timeout.ms": 500})
    plant = live.run_plant(stream_settings, assets=["pump-x"], duration_s=0.5, speedup=0, producer=dead)
    assert plant.chunks == 5 and plant.truth_events == 1
    assert plant.failed == plant.chunks + plant.truth_events and plant.delivered == 0


def test_control_written_to_redis_reaches_the_fleet_and_chunks_equal_live_simulators(
    stream_settings: Settings,
) -> None:
    """inject / set_operating_point / clear write the assets' control hashes; the plant applies them from its
    first chunk, and every asset's chunks on the broker equal a LiveSimulator given the same changes."""
    from plant_models import Faults, LiveSimulator, OperatingPoint

    s = stream_settings
    assert live.inject(s, "pump-2", "leak", 0.6)["rev"] == "1"
    state = live.set_operating_point(s, "pump-2", speed_rpm=900.0)
    assert (state["rev"], state["leak"], state["speed_rpm"]) == ("2", "0.6", "900.0")
    cleared = live.clear(s, "pump-3")
    assert cleared["rev"] == "1" and all(cleared[f] == "0.0" for f in live.FAULTS)
    r = redis.Redis.from_url(s.redis_url)
    assert r.hget(s.key("control", "pump-2"), "speed_rpm") == b"900.0"

    plant = live.run_plant(s, assets=3, duration_s=0.5, speedup=0, seed=40, decimals=None)
    assert (plant.chunks, plant.truth_events, plant.lost_chunks, plant.failed) == (15, 3, 0, 0)
    truth = {t["asset"]: t for t in truth_of(s)}
    assert truth["pump-2"]["faults"] == {"leak": 0.6, "blocked_inlet": 0.0, "bearing": 0.0}
    assert truth["pump-2"]["operating_point"]["speed_rpm"] == 900.0 and truth["pump-2"]["seq"] == 0
    assert truth["pump-1"]["active"] == [] and truth["pump-1"]["rev"] == 0.0  # no hash: healthy, nominal

    # The fleet warms up healthy at the nominal point; the controls read before the first chunk apply from it.
    sims = {f"pump-{i + 1}": LiveSimulator(seed=40 + i) for i in range(3)}
    sims["pump-2"].set_faults(Faults.from_severity(leak=0.6))
    sims["pump-2"].set_operating_point(OperatingPoint(speed_rpm=900.0))
    chunks = sorted((decode_chunk(m.value()) for m in read_topic(s, s.sensor_topic)), key=lambda c: c.seq)
    for asset, sim in sims.items():
        mine = [c for c in chunks if c.asset == asset]
        assert [c.seq for c in mine] == [0, 1, 2, 3, 4]
        for c in mine:
            expected = sim.step(s.chunk_s)
            for name in SIGNALS:
                assert np.array_equal(c.signals[name], expected[name]), (asset, c.seq, name)


def _expected_alerts(s: Settings, model_record: tuple[dict, dict]) -> list[dict]:
    """Alerts an uninterrupted engine derives from the sensor topic as stored (per-partition order)."""
    from federated.model import from_arrays
    from fedtwin.data.features import extract_features
    from fedtwin.streaming.scoring import ActiveModel, ScoringEngine

    model = ActiveModel.wrap(from_arrays(*model_record), "quick-test-model", 1)
    engine = ScoringEngine.from_settings(s, extract_features, model)
    msgs = sorted(read_topic(s, s.sensor_topic), key=lambda m: (m.partition(), m.offset()))
    return engine.process([decode_chunk(m.value()) for m in msgs]).alerts


def _key(a: dict) -> tuple:
    return (a["asset"], a["kind"], tuple(a["faults"]), round(a["window_start"], 6))


def test_sigkill_mid_stream_loses_no_due_alert(
    stream_settings: Settings, model_record: tuple, tmp_path: Path
) -> None:
    s = stream_settings
    env = {**os.environ, **settings_env(s)}
    argv = [sys.executable, "-m", "fedtwin.app.cli_stream", "score", "--batch-size", "20", "--seconds", "120"]
    r = redis.Redis.from_url(s.redis_url)

    def start(extra: list[str], name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(argv + extra, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)

    first = start(["--idle-exit", "120"], "first")
    plant = Background(live.run_plant, s, assets=2, duration_s=36.0, speedup=3.0, seed=21)
    # Wall-clock timeline (plant runs x3): leak on pump-1, then it clears while pump-2 gets a bearing fault.
    time.sleep(1.5)
    live.inject(s, "pump-1", "leak", 1.0)
    time.sleep(3.0)
    live.clear(s, "pump-1")
    live.inject(s, "pump-2", "bearing", 1.0)
    # Kill once the leak was raised (so its clear depends on state from before the crash).
    deadline = time.monotonic() + 30
    while r.xlen(s.key("alerts")) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.xlen(s.key("alerts")) >= 1, (tmp_path / "first.log").read_text()
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    t_kill = time.time()
    second = start(["--idle-exit", "8"], "second")
    time.sleep(3.0)
    live.clear(s, "pump-2")
    plant.join(60)
    assert second.wait(90) == 0, (tmp_path / "second.log").read_text()
    final = json.loads((tmp_path / "second.log").read_text().strip().splitlines()[-1])
    assert final["restored_assets"] >= 1  # continued from the snapshot written next to the committed offsets

    expected = _expected_alerts(s, model_record)
    observed = Counter(_key(a) for a in alerts_of(s))
    missing = [k for k in map(_key, expected) if k not in observed]
    duplicates = sum(n - 1 for n in observed.values())
    print(f"expected={len(expected)} observed={sum(observed.values())} duplicates={duplicates}")
    kinds = {(a["asset"], a["kind"]) for a in expected}
    assert {("pump-1", "raise"), ("pump-1", "clear"), ("pump-2", "raise")} <= kinds
    assert any(a["produced_at"] > t_kill for a in alerts_of(s)), "nothing was produced after the restart"
    assert missing == []
    assert set(observed) == {_key(a) for a in expected}  # nothing invented either


def test_promoted_model_is_used_without_restart(stream_settings: Settings, model_record: tuple) -> None:
    from fedtwin.adapters.model_store import ModelStore

    s = stream_settings
    scorer = Scorer(s, publish_features=True)
    sc = Background(scorer.run, max_seconds=90, idle_exit_s=3.0)
    plant = Background(live.run_plant, s, assets=1, duration_s=10.0, speedup=1.0, seed=31)
    time.sleep(5.0)
    arrays, meta = model_record
    store = ModelStore.from_settings(s)
    t_v2 = time.time()
    v2 = store.publish(arrays, {**meta, "name": "quick-test-model-v2"})
    time.sleep(2.0)
    # A record signed with another key must be refused; the scorer keeps version 2.
    forged = ModelStore(store.client, s.redis_prefix, b"not-the-key")
    v3 = forged.publish({k: v * 0 + 0.5 if k == "thresholds" else v for k, v in arrays.items()}, meta)
    plant.join(60)
    stats = sc.join(60)
    assert (v2, v3) == (2, 3)
    assert stats.model_version == 2 and stats.model_reloads == 2

    r = redis.Redis.from_url(s.redis_url)
    entries = r.xrange(s.key("features"))
    rows = [
        (int(eid.split(b"-")[0]) / 1000.0, float(f[b"window_start"]), int(f[b"model_version"]))
        for eid, f in entries
    ]
    versions = [v for _, _, v in rows]
    starts = np.array([w for _, w, _ in rows])
    assert set(versions) == {1, 2} and versions == sorted(versions)  # swapped once, never back, never to v3
    assert len(rows) == 10 and np.allclose(np.diff(starts), s.window_s)  # every window scored exactly once
    first_v2 = min(t for t, _, v in rows if v == 2)
    assert all(v == 2 for t, _, v in rows if t > t_v2 + 1.0)
    assert first_v2 - t_v2 < 1.0 + s.window_s  # the next window completed after the promotion used v2
