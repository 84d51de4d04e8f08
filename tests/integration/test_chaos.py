"""Fault injection on real services (``benchmarks.chaos``, shorter): kill -9 of the scorer mid-stream, a
restart of the memory-only broker (topics, offsets and groups lost), a restart of an own Redis without
persistence (model pointer, scorer state and open alerts lost). For each: the scorer recovers by itself, no
alert is lost or duplicated against the fault schedule, the poison pills cost one dead letter each and the
scorer exits 0 on SIGTERM. Plus: no sequence of model pointer/meta values written to Redis stops a scorer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from benchmarks.chaos import (
    POISON_PILLS,
    SCENARIOS,
    SCHEDULE,
    Episode,
    count_alerts,
    run_scenario,
    simulate_plant,
)
from fedtwin.errors import InvalidModel
from fedtwin.settings import Settings
from tests.integration._broker import model_record

__all__ = ["model_record"]  # fixture imported for pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def plant_signals() -> dict[str, Any]:
    return simulate_plant(SCHEDULE)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scorer_rides_out_the_fault(
    scenario: str, model_record: tuple, plant_signals: dict, tmp_path: Path, redis_url: str
) -> None:
    res = run_scenario(
        scenario, model_record, plant_signals, outage_s=2.5, redis_url=redis_url, workdir=tmp_path
    )
    logs = "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(tmp_path.glob("scorer-*.log")))
    print(res.line())
    assert res.scorer_exit == 0, logs
    assert res.recovered and res.recovery_s < 30, (res.line(), logs)
    assert res.alerts_expected == 4 and res.alerts_observed == 4, (res.detail, logs)
    assert (res.alerts_lost, res.alerts_duplicated, res.alerts_false) == (0, 0, 0), res.detail
    assert res.poison_messages == POISON_PILLS and res.dead_letters == POISON_PILLS, logs


def test_alerts_are_counted_against_the_schedule() -> None:
    """The counting rule of the suite on a hand-made history."""
    truth = [Episode("p", "leak", 10.0, 20.0), Episode("p", "bearing", 30.0, 40.0)]

    def alert(kind: str, fault: str, end: float) -> dict:
        return {"asset": "p", "kind": kind, "faults": [fault], "window_start": end - 1.0, "window_end": end}

    history = [alert("raise", "leak", 12.0), alert("raise", "leak", 15.0), alert("clear", "leak", 23.0)]
    history += [alert("raise", "bearing", 5.0), alert("clear", "bearing", 8.0)]  # false, and bearing lost
    c = count_alerts(history, truth, window_s=1.0, clear_windows=3, stream_end=50.0)
    assert (c.expected, c.lost, c.duplicated, c.false) == (4, 2, 1, 1), c.detail
    c = count_alerts(history[:1], truth[:1], window_s=1.0, clear_windows=3, stream_end=22.0)
    assert (c.expected, c.lost) == (1, 0)  # the clear is not due before the stream ends


# ------------------------------------------------------------------------------- model pointer garbage
@pytest.fixture()
def garbage_settings(redis_url: str) -> Iterator[Settings]:
    tag = uuid.uuid4().hex[:8]
    s = Settings(
        redis_url=redis_url, redis_prefix=f"fedtwin-garbage-{tag}:", signing_key=SecretStr(f"k-{tag}")
    )
    yield s
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=s.redis_prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


junk = st.one_of(
    st.sampled_from(
        [b"abc", b"", b"-1", b"0", b"1.5", b"[]", b"{}", b"null", b"99", b"18446744073709551616"]
    ),
    st.binary(max_size=40),
    st.text(max_size=20).map(str.encode),
    st.integers(-5, 10**30).map(lambda n: str(n).encode()),
)
#: (what to do, which version, bytes): write the pointer, a meta or arrays record, delete the pointer, copy
#: version 1's record under another number, publish a valid new version, point back at version 1 with a plain
#: write, or roll back to it the signed way (stores with ``rollback_to``).
action = st.tuples(
    st.sampled_from(["pointer", "meta", "arrays", "delete", "copy", "publish", "downgrade", "rollback"]),
    st.integers(1, 4),
    junk,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(actions=st.lists(action, min_size=1, max_size=8))
def test_no_pointer_or_meta_garbage_stops_a_scorer(
    actions: list[tuple[str, int, bytes]], garbage_settings: Settings, model_record: tuple
) -> None:
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.streaming.scorer import Scorer

    s = garbage_settings
    r = redis.Redis.from_url(s.redis_url)
    for k in r.scan_iter(match=s.redis_prefix + "*", count=1000):
        r.delete(k)
    store = ModelStore.from_settings(s)
    arrays, meta = model_record
    good = {store.publish(arrays, meta)}
    copies: set[int] = set()  # whether a copied record loads is the store's business (its signature)
    scorer = Scorer(s, model_store=store)
    assert scorer.check_model() == min(good)
    served = [min(good)]
    key = s.redis_prefix + "model:"
    for what, version, raw in actions:
        if what == "pointer":
            r.set(key + "current", raw)
        elif what == "meta":
            r.set(f"{key}{version}:meta", raw)
        elif what == "arrays":
            r.set(f"{key}{version}:arrays", raw)
        elif what == "delete":
            r.delete(key + "current")
        elif what == "copy":  # a valid record under another number: its signature must not carry over
            r.set(f"{key}{version + 4}:meta", r.get(key + "1:meta") or b"")
            r.set(f"{key}{version + 4}:arrays", r.get(key + "1:arrays") or b"")
            r.set(key + "current", str(version + 4))
            copies.add(version + 4)
        elif what == "publish":
            with suppress(InvalidModel):  # refused when garbage already sits under the next number
                good.add(store.publish(arrays, {**meta, "name": f"v{version}"}))
        elif what == "downgrade":
            r.set(key + "current", b"1")
        elif hasattr(store, "rollback_to"):
            with suppress(InvalidModel):  # refused when version 1's record was overwritten with garbage
                store.rollback_to(1)
                served.append(1)  # a signed rollback may take the scorer back
        in_use = scorer.check_model()  # must not raise, whatever Redis holds
        assert in_use is not None and in_use in good | copies
        assert in_use >= served[-1]  # never back to an older version without a signed rollback
        served.append(in_use)
    assert scorer.stats.model_rejections <= len(actions)  # each problem is logged once, not per check
    r.close()


def test_a_scorer_without_redis_waits_quietly_until_its_time_limit(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens on the Redis port: no exception, one warning, stopped at the time limit."""
    import logging

    from fedtwin.adapters.stack import free_port
    from fedtwin.streaming.scorer import Scorer

    s = Settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        redis_prefix="fedtwin-noredis:",
        signing_key=SecretStr("chaos-test-key"),
    )
    with caplog.at_level(logging.INFO, logger="fedtwin.streaming.scorer"):
        stats = Scorer(s, max_retry_delay_s=0.2).run(max_seconds=2.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert stats.stopped_by == "max_seconds" and stats.outages == {"Redis": 1, "Kafka": 0}
    assert len(warnings) == 1 and warnings[0].startswith("Redis unavailable while reading the model pointer")
    assert 1.9 <= stats.seconds < 4.0 and stats.messages == 0
