"""The live plant rides out a Redis restart: it keeps running, keeps an injected fault although its control
hash comes back empty (and writes it back), and the truth written meanwhile reaches Redis afterwards."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest
import redis

from benchmarks.chaos import OwnRedis
from fedtwin.settings import Settings
from fedtwin.streaming import live
from tests.integration._broker import broker, model_record, read_topic, stream_settings

__all__ = ["broker", "model_record", "stream_settings"]  # fixtures imported for pytest

pytestmark = pytest.mark.integration


def test_plant_keeps_injected_fault_across_an_empty_redis_restart(
    stream_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    s = stream_settings.model_copy(update={"redis_url": own.url})
    caplog.set_level(logging.WARNING, logger="fedtwin.streaming.live")
    stop = threading.Event()
    out: dict = {}

    def run() -> None:
        out["stats"] = live.run_plant(s, assets=["pump-r"], duration_s=8.0, speedup=2.0, stop_event=stop)

    thread = threading.Thread(target=run, daemon=True)
    try:
        thread.start()
        time.sleep(1.0)
        live.inject(s, "pump-r", "leak", 0.7)
        time.sleep(0.5)  # applied at the next poll
        own.kill()
        time.sleep(1.0)  # the plant keeps producing with Redis away
        own.start()  # back, and empty
        thread.join(30)
        assert not thread.is_alive()
    finally:
        stop.set()
        own.kill()
        own.start()  # so the finally below can read nothing stale
    stats = out["stats"]
    assert stats.chunks == 80 and stats.lost_chunks == 0  # 8 s of 0.1 s chunks, none dropped
    truth = [json.loads(m.value()) for m in read_topic(s, s.truth_topic) if m.key() == b"pump-r"]
    # Initial healthy state, then the leak; never a silent "no faults" after Redis came back empty.
    assert [t["active"] for t in truth] == [[], ["leak"]]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("Redis unavailable" in m for m in messages) == 1  # the outage logged once, not per poll
    assert any("Redis is back" in m for m in messages)
    assert any("restored the running faults" in m for m in messages)


def test_restored_control_is_written_back(stream_settings: Settings, tmp_path: Path) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    s = stream_settings.model_copy(update={"redis_url": own.url})
    try:
        live.inject(s, "pump-w", "bearing", 0.4)
        stop = threading.Event()
        thread = threading.Thread(
            target=live.run_plant,
            args=(s,),
            kwargs={"assets": ["pump-w"], "duration_s": 4.0, "speedup": 2.0, "stop_event": stop},
            daemon=True,
        )
        thread.start()
        time.sleep(0.6)
        r = redis.Redis.from_url(own.url)
        r.delete(s.key("control", "pump-w"))  # what an empty restart looks like to the plant
        time.sleep(0.6)
        restored = {k.decode(): v.decode() for k, v in r.hgetall(s.key("control", "pump-w")).items()}
        stop.set()
        thread.join(30)
    finally:
        own.kill()
    assert float(restored["bearing"]) == pytest.approx(0.4)
    assert float(restored["leak"]) == 0.0 and float(restored["rev"]) == 1.0
