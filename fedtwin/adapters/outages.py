"""How long-running processes (the scorer, the live plant) ride out a service that goes away.

Each process keeps one :class:`ServiceLink` per service: it logs each change of state once (away, then back)
instead of every attempt, and gives the next retry delay. librdkafka's own reconnect lines are filtered out
for the same reason (:func:`kafka_logger`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError

log = logging.getLogger(__name__)

#: Kafka errors that mean "the broker or topic is away for now": pause and retry, never give up.
KAFKA_DOWN_CODES = frozenset(
    {
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._RESOLVE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
    }
)

RECONNECT = {"reconnect.backoff.ms": 100, "reconnect.backoff.max.ms": 1000}


class DropReconnectNoise(logging.Filter):
    """librdkafka logs every failed (re)connect attempt (facility FAIL); a long-running process reports an
    outage once through its error callback instead, so those lines are dropped and every other line kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and args and args[0] == "FAIL")


def kafka_logger(name: str) -> logging.Logger:
    """A logger for librdkafka's lines (pass it as a client's ``logger``) without the reconnect noise."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, DropReconnectNoise) for f in logger.filters):
        logger.addFilter(DropReconnectNoise())
    return logger


class ServiceLink:
    """One service as a long-running process (scorer, live plant) sees it: logs each change of state once
    (away with the reason, back with the time it was away), never each attempt, and gives the next retry
    delay (exponential, capped)."""

    def __init__(
        self,
        name: str,
        base_delay_s: float = 0.1,
        max_delay_s: float = 2.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.log = logger or log
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.down_since: float | None = None
        self.back_at = float("-inf")
        self.failures = 0
        self.outages = 0
        self.down_seconds = 0.0

    @property
    def down(self) -> bool:
        """True between a failure and the next success."""
        return self.down_since is not None

    def failed(self, what: str, exc: object) -> float:
        """Record a failed attempt; return how long to wait before the next one (s)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.outages += 1
            self.log.warning(
                "%s unavailable while %s (%s): pausing, retrying with backoff", self.name, what, exc
            )
        self.failures += 1
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** min(self.failures - 1, 16)))

    def ok(self) -> None:
        """Record a success (logs the recovery once)."""
        if self.down_since is not None:
            away = time.monotonic() - self.down_since
            self.down_seconds += away
            self.log.warning("%s is back after %.1f s: resuming", self.name, away)
            self.down_since = None
            self.back_at = time.monotonic()
        self.failures = 0


def kafka_retriable(err: KafkaError) -> bool:
    """True when a Kafka error goes away by itself (broker or topic away, a timeout)."""
    return bool(err.code() in KAFKA_DOWN_CODES or err.retriable())


class RateLimitedLog:
    """At most ``per_interval`` lines per ``interval_s`` for one kind of event; the rest are counted and said
    in one line when the next interval opens, so a flood of alerts or bad messages cannot flood the log."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        per_interval: int = 20,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.per_interval = per_interval
        self.interval_s = interval_s
        self.clock = clock
        self._opened = -float("inf")
        self._emitted = 0
        self.suppressed = 0  # not yet reported

    def info(self, msg: str, *args: object) -> bool:
        """Log ``msg % args`` at INFO unless this interval's quota is used; True when it was logged."""
        now = self.clock()
        if now - self._opened >= self.interval_s:
            if self.suppressed:
                self.logger.info(
                    "... %d more %s not shown in the last %.0f s", self.suppressed, self.what, self.interval_s
                )
            self._opened, self._emitted, self.suppressed = now, 0, 0
        if self._emitted >= self.per_interval:
            self.suppressed += 1
            return False
        self._emitted += 1
        self.logger.info(msg, *args)
        return True
