"""Helpers and fixtures of the streaming integration tests: an own Tansu broker per module, per-test topics,
consumer group and Redis key prefix (only those keys are deleted), and a small real model trained once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from fedtwin.adapters import stack
from fedtwin.settings import Settings


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A memory-only Tansu on a free port for this module; yields bootstrap.servers."""
    proc, bootstrap = stack.start_tansu(tmp_path_factory.mktemp("tansu-streaming") / "tansu.log")
    yield bootstrap
    stack.stop_pid(proc.pid)


@pytest.fixture(scope="module")
def model_record() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, meta) of a small real model (plant sweep -> features -> FaultClassifier), once per module."""
    from benchmarks.streaming import quick_model

    return quick_model()


@pytest.fixture()
def stream_settings(broker: str, model_record: tuple[dict, dict]) -> Iterator[Settings]:
    """Own topics, group and Redis prefix; the model published as version 1; own keys removed after."""
    import redis

    from fedtwin.adapters.kafka_io import ensure_topics
    from fedtwin.adapters.model_store import ModelStore

    tag = uuid.uuid4().hex[:8]
    s = Settings(
        kafka_bootstrap_servers=broker,
        redis_prefix=f"fedtwin-stest-{tag}:",
        sensor_topic=f"s{tag}.sensors",
        alert_topic=f"s{tag}.alerts",
        dlq_topic=f"s{tag}.dlq",
        truth_topic=f"s{tag}.truth",
        decision_topic=f"s{tag}.decisions",
        consumer_group=f"s{tag}-scorer",
        kafka_session_timeout_ms=6000,
        signing_key=SecretStr(f"key-{tag}"),
    )
    r = redis.Redis.from_url(s.redis_url)
    if not stack._redis_ping(s.redis_url):
        pytest.fail(f"Redis is not reachable at {s.redis_url}")
    ensure_topics(s)
    ModelStore.from_settings(s).publish(*model_record)
    yield s
    keys = list(r.scan_iter(match=s.redis_prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


def settings_env(s: Settings) -> dict[str, str]:
    """FEDTWIN_* variables that reproduce ``s`` in a subprocess."""
    names = (
        "kafka_bootstrap_servers",
        "sensor_topic",
        "alert_topic",
        "dlq_topic",
        "truth_topic",
        "decision_topic",
        "consumer_group",
        "kafka_session_timeout_ms",
        "redis_url",
        "redis_prefix",
        "window_s",
        "sample_rate_hz",
        "chunk_s",
        "alert_raise_windows",
        "alert_clear_windows",
    )
    env = {f"FEDTWIN_{n.upper()}": str(getattr(s, n)) for n in names}
    env["FEDTWIN_SIGNING_KEY"] = s.signing_key.get_secret_value()
    return env


def read_topic(s: Settings, topic: str, *, idle_s: float = 1.0, timeout_s: float = 30.0) -> list[Any]:
    """Every message of ``topic`` (all partitions, from the beginning) without joining a group."""
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    from fedtwin.adapters.kafka_io import make_consumer

    c = make_consumer(s, group=f"reader-{uuid.uuid4().hex[:6]}")
    meta = c.list_topics(topic, timeout=10).topics[topic]
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions])
    out: list[Any] = []
    last = time.monotonic()
    deadline = last + timeout_s
    while time.monotonic() - last < idle_s and time.monotonic() < deadline:
        batch = [m for m in c.consume(1000, 0.2) if m.error() is None]
        if batch:
            out.extend(batch)
            last = time.monotonic()
    c.close()
    return out
