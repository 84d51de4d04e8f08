"""The scorer tells each raise/clear and each dead letter at INFO, and a flood of them at a bounded rate."""

from __future__ import annotations

import logging

import pytest

from fedtwin.adapters.outages import RateLimitedLog
from fedtwin.settings import Settings
from fedtwin.streaming.scorer import ScoredBatch, Scorer


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_rate_limit_counts_and_reports_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    lim = RateLimitedLog(logging.getLogger("t.rate"), "alerts", per_interval=2, interval_s=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="t.rate"):
        shown = [lim.info("a%d", i) for i in range(5)]
        clock.t = 9.99  # still the same interval
        shown.append(lim.info("late"))
        clock.t = 10.0  # a new interval: the held-back count first, then the line
        shown.append(lim.info("next"))
    assert shown == [True, True, False, False, False, False, True]
    assert [r.getMessage() for r in caplog.records] == [
        "a0",
        "a1",
        "... 4 more alerts not shown in the last 10 s",
        "next",
    ]


class FakeMessage:
    def topic(self) -> str:
        return "fedtwin.sensors"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 41


def test_scorer_logs_raise_clear_and_dead_letters(caplog: pytest.LogCaptureFixture) -> None:
    sc = Scorer(Settings(signing_key="k"))  # type: ignore[arg-type]
    out = ScoredBatch(
        alerts=[
            {
                "kind": "raise",
                "asset": "pump-1",
                "faults": ["leak"],
                "scores": {"leak": 0.875, "bearing": 0.0},
                "model_name": "m",
                "model_version": 3,
            },
            {
                "kind": "clear",
                "asset": "pump-2",
                "faults": [],
                "scores": {"leak": 0.0},
                "model_name": "m",
                "model_version": 3,
            },
        ]
    )
    with caplog.at_level(logging.INFO, logger="fedtwin.streaming.scorer"):
        sc._tell(out, [(FakeMessage(), "pressure sample 3 is 1e+308, outside [-1, 40]")])  # type: ignore[list-item]
    assert [r.getMessage() for r in caplog.records] == [
        "RAISE pump-1 leak (bearing=0.00, leak=0.88) model m v3",
        "CLEAR pump-2 - (leak=0.00) model m v3",
        "dead letter fedtwin.sensors[2]@41: pressure sample 3 is 1e+308, outside [-1, 40]",
    ]


def test_every_kafka_client_logs_through_the_reconnect_filter() -> None:
    """An unreachable broker printed ~290 librdkafka lines in 15 s; every client now logs to Python logging,
    where the per-attempt FAIL lines are dropped and the rest kept."""
    from fedtwin.adapters.kafka_io import client_config, consumer_config, producer_config
    from fedtwin.adapters.outages import DropReconnectNoise

    s = Settings(signing_key="k")  # type: ignore[arg-type]
    for conf in (client_config(s), producer_config(s), consumer_config(s)):
        logger = conf["logger"]
        assert any(isinstance(f, DropReconnectNoise) for f in logger.filters)
    noise = logging.LogRecord("x", logging.ERROR, "", 0, "%s", ("FAIL", "connect failed"), None)
    other = logging.LogRecord("x", logging.ERROR, "", 0, "%s", ("AUTH", "bad password"), None)
    assert DropReconnectNoise().filter(noise) is False
    assert DropReconnectNoise().filter(other) is True
