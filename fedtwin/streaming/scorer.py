"""Scoring service: Kafka sensor chunks -> ScoringEngine -> alerts on Kafka and a Redis stream, at least once.

One loop iteration handles one batch::

    consume(n, timeout) -> decode (invalid -> DLQ with reason) -> engine.process -> drop raises of faults
    already open -> produce alerts + DLQ -> flush (every delivery acknowledged) -> Redis (one transaction):
    XADD alerts, open alerts per asset, engine state snapshot with the next offsets -> store_offsets + commit

Nothing is committed before its alerts and state are written, so a crash replays at most one batch. The engine
state of each partition (partial window, sequence, de-bouncing) is saved in Redis with the offset it belongs
to; on assignment a snapshot is used when it is at or ahead of the group's committed offset (so a restarted
scorer continues the exact window grid and still clears faults raised before the crash), and also when the
broker has no committed offset at all (a memory-only broker restarted: the chunks read again from its new log
are dropped by their sequence numbers).

The open alerts of every asset live in Redis (``<prefix>scorer:open:<group>``, written in the same transaction
as the state), where a restarted broker cannot erase them: a raise for a fault that is already open is not
emitted again, and an asset met without engine state starts with its open faults active, so their clear is
still emitted.

Isolation: whatever one message raises (decode, features, model, serialising its state or alerts) sends that
message to the DLQ with the reason; the batch goes on and commits. The whole batch is scored in one vectorised
call first; only when that raises is the engine rewound and the batch scored message by message. DLQ records
are bounded (``dlq_max_value_bytes``), so a dead letter cannot exceed the producer's message limit. A window
with a non-finite feature or score is counted and never de-bounced as healthy, nor published as a feature row.

Outages: with Redis or the broker away the scorer pauses, retries with capped exponential backoff, logs once
when a service goes away and once when it is back, and resumes by itself. It stops only at its time limit,
``stop()``/SIGTERM/SIGINT, ``max_messages`` or ``idle_exit_s``; anything else raises.

The model is hot-reloaded between batches: the store's pointer is read at most every ``reload_interval_s``; a
new version is loaded, verified by the store and swapped in before the next batch (every window is scored by
exactly one model). Anything wrong with the pointer or a record (garbage, bad signature, a version lower than
the one in use) is logged once and the last good model stays in use.

Shadow models (``Settings.shadow_models``, see ``fedtwin.streaming.shadows``) are reloaded the same way from
their own
signed pointers and scored on the same feature matrix as the champion; they never raise or clear alerts. A
shadow that fails verification is dropped with one logged reason, and one failing at predict time loses its
decisions of that batch only. Every model's decision on every window (champion included) is produced to
``Settings.decision_topic`` with the batch's alerts, before the commit.
"""

from __future__ import annotations

import copy
import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import redis
from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

from federated.model import from_arrays
from fedtwin.adapters.kafka_io import ensure_topics, make_consumer, make_producer
from fedtwin.adapters.outages import RECONNECT, RateLimitedLog, ServiceLink, kafka_logger, kafka_retriable
from fedtwin.adapters.redis_io import redis_client
from fedtwin.data.features import extract_features
from fedtwin.data.schema import (
    MAX_DLQ_TEXT,
    SchemaError,
    SensorChunk,
    decode_chunk,
    dlq_record,
    dumps,
    encode_alert,
    encode_decision,
    loads,
)
from fedtwin.errors import FedtwinError, InvalidModel, ServiceUnavailable
from fedtwin.streaming.scoring import ActiveModel, BatchResult, FeatureFn, ScoringEngine
from fedtwin.streaming.serving import FIX_NO_MODEL
from fedtwin.streaming.shadows import ShadowSlots
from monitoring.metrics import ScorerMetrics
from plant_models.spec import SIGNAL_SPECS

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer

    from fedtwin.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``(arrays, meta) -> classifier`` (default: ``federated.model.from_arrays``).
ModelFactory = Callable[[dict[str, np.ndarray], dict[str, Any]], Any]

#: Errors of a Redis that is away (restart, network) rather than of a bad request: retried until it returns.
REDIS_DOWN: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)

#: Kafka errors that mean "broker, coordinator or topic away for now": retried, never fatal.
_TOPIC_GONE = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})

#: librdkafka waits up to 10 s between reconnects by default; 1 s resumes soon after a broker restart.
#: Where the scorer's Kafka clients log (librdkafka's own lines, minus reconnect noise).
KAFKA_LOG = kafka_logger("fedtwin.streaming.scorer.kafka")

#: A refused model version is tried again after this long (s); the refusal is logged once.
BAD_VERSION_RETRY_S = 30.0

#: Kafka's default message limit (``message.max.bytes``) that a dead letter must stay under.
KAFKA_MESSAGE_LIMIT = 1_000_000
#: Largest ``dlq_max_value_bytes``: its base64 (4/3) plus 32 KiB for the wrapper, the reason and key (1000
#: characters each, up to 6 bytes escaped) and the headers stays under KAFKA_MESSAGE_LIMIT.
MAX_DLQ_VALUE_BYTES = (KAFKA_MESSAGE_LIMIT - 32768) * 3 // 4


@dataclass
class ScorerStats:
    """What one ``Scorer.run`` did."""

    messages: int = 0
    scored: int = 0
    dlq: int = 0
    dlq_truncated: int = 0
    scoring_failures: int = 0  # messages sent to the DLQ because scoring or serialising their window raised
    isolated_batches: int = 0  # batches scored message by message after the vectorised call raised
    samples: int = 0
    windows: int = 0
    invalid_windows: int = 0  # a NaN/inf feature or score: not de-bounced, not published
    alerts: int = 0
    suppressed_alerts: int = 0  # raises of a fault that was already open (a replay), not emitted again
    batches: int = 0
    gaps: int = 0
    duplicates: int = 0
    restored_assets: int = 0
    assignments: int = 0  # partition assignments received (the first join and every rebalance)
    foreign_dropped: int = 0  # fetched messages of partitions a rebalance moved away (left to the new owner)
    model_version: int | None = None
    model_reloads: int = 0
    model_rejections: int = 0
    decisions: int = 0  # decision records produced (every model, every valid window)
    shadow_versions: dict[str, int] = field(default_factory=dict)  # slot -> version scoring at the end
    shadow_reloads: int = 0
    shadow_rejections: int = 0  # shadows dropped because a pointer/record/probe failed
    shadow_failures: int = 0  # (slot, batch) pairs whose predict failed: those decisions are lost
    outages: dict[str, int] = field(default_factory=dict)
    paused_seconds: float = 0.0
    commit_failures: int = 0
    seconds: float = 0.0
    active_seconds: float = 0.0  # first consumed message to the end (no model wait, no group join)
    stopped_by: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for Prefect results and logs)."""
        return asdict(self)


class _Interrupted(Exception):
    """Stop requested or time limit reached while waiting for a service: leave without committing."""


@dataclass
class DecodedBatch:
    """One consume batch after decoding: what is scored, what goes to the DLQ, where to commit."""

    chunks: list[SensorChunk] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    origin: list[Message] = field(default_factory=list)
    dlq: list[tuple[Message, str]] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    n_msgs: int = 0

    def assets(self) -> list[str]:
        """Assets of the decoded chunks, in first-seen order."""
        return list(dict.fromkeys(c.asset for c in self.chunks))


@dataclass
class ScoredBatch:
    """Everything a scored batch writes, already serialised (so writing cannot fail on the data)."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    feature_rows: list[dict[str, Any]] = field(default_factory=list)
    snapshots: dict[tuple[str, int], bytes] = field(default_factory=dict)
    payloads: list[tuple[bytes, bytes]] = field(
        default_factory=list
    )  # (key, alert JSON) after de-duplication
    open_changed: set[str] = field(default_factory=set)
    decisions: list[tuple[bytes, bytes]] = field(default_factory=list)  # (asset key, decision JSON)
    model_errors: dict[str, str] = field(default_factory=dict)  # shadow slot -> why its predict failed
    windows: int = 0
    invalid: int = 0
    latency_ts: list[float] = field(default_factory=list)


class Scorer:
    """Consumer-group member that scores sensor chunks and emits alerts.

    Parameters
    ----------
    settings : Settings
        Topics, group, Redis, window and de-bouncing settings.
    model_store : object, optional
        ``current_version()`` and ``load(version)`` like ``fedtwin.adapters.model_store.ModelStore``
        (default: from settings).
    features : FeatureFn, optional
        Default ``fedtwin.data.features.extract_features``.
    model_factory : ModelFactory, optional
        Default ``federated.model.from_arrays``.
    metrics : ScorerMetrics, optional
        Prometheus metrics to update (serving them is the caller's choice).
    group : str, optional
        Consumer group (default ``settings.consumer_group``).
    batch_size, batch_timeout_s :
        Arguments of ``consume``; the timeout bounds how late a stop or model swap is noticed.
    reload_interval_s : float
        Minimum time between reads of the model pointer.
    snapshot_state : bool
        Save/restore engine state in Redis next to the committed offsets (see module docstring).
    publish_features : bool
        Also XADD every scored window's features to ``<prefix>features`` (for the drift monitor).
    dlq_max_value_bytes : int
        A dead letter keeps at most this many bytes of the rejected value (with its size and sha256); base64
        and the wrapper must stay under Kafka's 1 MB message limit, so at most ``MAX_DLQ_VALUE_BYTES``.
    max_retry_delay_s : float
        Longest pause between two attempts to reach Redis or Kafka during an outage.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        model_store: Any = None,
        features: FeatureFn | None = None,
        model_factory: ModelFactory | None = None,
        metrics: ScorerMetrics | None = None,
        group: str | None = None,
        batch_size: int = 1000,
        batch_timeout_s: float = 0.02,
        reload_interval_s: float = 0.2,
        snapshot_state: bool = True,
        publish_features: bool = False,
        dlq_max_value_bytes: int = 65536,
        max_retry_delay_s: float = 2.0,
    ) -> None:
        if not 0 <= dlq_max_value_bytes <= MAX_DLQ_VALUE_BYTES:
            raise ValueError(
                f"dlq_max_value_bytes must be 0..{MAX_DLQ_VALUE_BYTES} (a dead letter must fit Kafka's 1 MB "
                f"message limit), got {dlq_max_value_bytes}"
            )
        self.settings = settings
        self.group = group or settings.consumer_group
        self.batch_size = batch_size
        self.batch_timeout_s = batch_timeout_s
        self.reload_interval_s = reload_interval_s
        self.snapshot_state = snapshot_state
        self.publish_features = publish_features
        self.dlq_max_value_bytes = dlq_max_value_bytes
        self.metrics = metrics
        self._store = model_store
        self._factory = model_factory
        if features is None:
            features = extract_features
        self.engine = ScoringEngine.from_settings(settings, features)
        self.shadows = ShadowSlots(
            list(settings.shadow_sources()), self.engine, self._activate, log, BAD_VERSION_RETRY_S
        )
        self._stop = threading.Event()
        self._stop_event: threading.Event | None = None
        self._deadline = float("inf")
        self._redis: Any = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._asset_partition: dict[str, tuple[str, int]] = {}
        self._owned: set[tuple[str, int]] = set()  # (topic, partition) assigned to this scorer now
        self._cooperative = settings.kafka_assignment_strategy == "cooperative-sticky"
        self._open: dict[str, set[str]] = {}  # open faults per asset (mirror of Redis, this scorer's assets)
        self._bad_versions: dict[int, float] = {}  # version -> when it was refused
        self._model_problem: str | None = None
        self._warned: dict[str, str] = {}
        self._last_reload_check = 0.0
        self._topics_checked = 0.0
        self._first_msg: float | None = None
        self._assigned_at: float | None = None
        self.redis_link = ServiceLink("Redis", max_delay_s=max_retry_delay_s, logger=log)
        self._alert_log = RateLimitedLog(log, "alerts")
        self._dlq_log = RateLimitedLog(log, "dead letters")
        self.kafka_link = ServiceLink("Kafka", max_delay_s=max_retry_delay_s, logger=log)
        self.stats = ScorerStats()

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        """Ask the loop to finish its current batch, commit and return (thread- and signal-safe)."""
        self._stop.set()

    def run(
        self,
        *,
        max_seconds: float | None = None,
        max_messages: int | None = None,
        stop_event: threading.Event | None = None,
        idle_exit_s: float | None = None,
        handle_signals: bool = False,
        model_wait_s: float | None = 60.0,
    ) -> ScorerStats:
        """Score until ``max_seconds``, ``max_messages``, ``stop_event``/``stop()``, SIGTERM/SIGINT (when
        ``handle_signals`` in the main thread) or ``idle_exit_s`` without messages; then commit and leave the
        group. Outages of Redis or Kafka pause it (see the module docstring); they never end it.

        Raises
        ------
        InvalidModel
            When Redis answers but has no valid model within ``model_wait_s`` (None: up to ``max_seconds``).
        ServiceUnavailable
            On a fatal Kafka error or one that retrying cannot fix (e.g. not authorised).
        """
        t_start = time.monotonic()
        self._deadline = t_start + max_seconds if max_seconds is not None else float("inf")
        self._stop_event = stop_event
        restore = self._install_signals() if handle_signals else None
        try:
            self._redis = redis_client(self.settings)
            if self._store is None:
                from fedtwin.adapters.model_store import ModelStore

                self._store = ModelStore.from_settings(self.settings)
            wait_until = min(self._deadline, t_start + model_wait_s) if model_wait_s is not None else None
            if not self._wait_for_model(wait_until):
                self.stats.stopped_by = "stop" if self._stopped() else "no-model"
                if self.stats.stopped_by == "no-model":
                    raise InvalidModel(
                        f"no valid model in Redis under {self.settings.redis_prefix!r}: {FIX_NO_MODEL}"
                    )
                return self._finish(t_start)
            self._connect()
            self._loop(max_messages, idle_exit_s)
        except _Interrupted:
            self.stats.stopped_by = "stop" if self._stopped() else "max_seconds"
        finally:
            self._close()
            if restore is not None:
                restore()
        return self._finish(t_start)

    def _connect(self) -> None:
        self._until_ok(
            self.kafka_link,
            "creating topics",
            lambda: ensure_topics(self.settings, timeout_s=5.0),
            transient=(ServiceUnavailable,),
        )
        clients = {**RECONNECT, "logger": KAFKA_LOG, "error_cb": self._client_error}
        self._producer = make_producer(self.settings, **clients)
        self._consumer = make_consumer(
            self.settings,
            self.group,
            **clients,
            **{"partition.assignment.strategy": self.settings.kafka_assignment_strategy},
        )
        self._consumer.subscribe(
            [self.settings.sensor_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )

    def _finish(self, t_start: float) -> ScorerStats:
        self.stats.seconds = time.monotonic() - t_start
        if self._first_msg is not None:
            self.stats.active_seconds = time.monotonic() - self._first_msg
        e = self.engine.stats
        self.stats.gaps, self.stats.duplicates = e.gaps, e.duplicates
        self.stats.invalid_windows = e.invalid_windows
        self.stats.outages = {link.name: link.outages for link in (self.redis_link, self.kafka_link)}
        self.stats.paused_seconds = self.redis_link.down_seconds + self.kafka_link.down_seconds
        sh = self.shadows
        self.stats.shadow_versions = sh.versions()
        self.stats.shadow_reloads, self.stats.shadow_rejections = sh.reloads, sh.rejections
        self.stats.shadow_failures = sh.predict_failures
        log.info("scorer stopped (%s): %s", self.stats.stopped_by, self.stats.as_dict())
        return self.stats

    def _stopped(self) -> bool:
        return self._stop.is_set() or (self._stop_event is not None and self._stop_event.is_set())

    def _install_signals(self) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum: int, frame: Any) -> None:
            log.info("signal %d: draining and committing", signum)
            self._stop.set()

        for s in previous:
            signal.signal(s, handler)

        def restore() -> None:
            for s, h in previous.items():
                signal.signal(s, h)

        return restore

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()  # leaves the group so a successor is assigned at once
            except Exception as exc:  # closing is best effort; offsets are already committed
                log.warning("consumer close: %s", exc)
            self._consumer = None
        if self._producer is not None:
            self._producer.flush(10)
            self._producer = None
        if self._redis is not None:
            self._redis.close()

    # ------------------------------------------------------------------ outages
    def _pause(self, delay_s: float) -> None:
        """Sleep ``delay_s`` in short steps; raise _Interrupted on a stop or at the time limit."""
        end = time.monotonic() + delay_s
        while True:
            if self._stopped() or time.monotonic() >= self._deadline:
                raise _Interrupted
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.05, left))

    def _until_ok(
        self,
        link: ServiceLink,
        what: str,
        fn: Callable[[], T],
        transient: tuple[type[BaseException], ...] = REDIS_DOWN,
    ) -> T:
        """Call ``fn`` until it succeeds; ``transient`` errors pause with backoff (logged once per outage)."""
        while True:
            try:
                result = fn()
            except transient as exc:
                self._pause(link.failed(what, exc))
                continue
            link.ok()
            return result

    def _warn_once(self, topic: str, text: str) -> None:
        """Log ``text`` unless it is what ``topic`` said last (cleared by ``_warn_clear``)."""
        if self._warned.get(topic) != text:
            self._warned[topic] = text
            log.warning("%s", text)

    def _warn_clear(self, topic: str) -> None:
        self._warned.pop(topic, None)

    # ------------------------------------------------------------------ model
    def _wait_for_model(self, until: float | None) -> bool:
        """Wait for a first valid model. ``until`` bounds the wait while Redis answers; an outage waits up to
        the time limit."""
        last_log = 0.0
        while not self._stopped():
            self._last_reload_check = 0.0
            self._maybe_reload(force=True)
            if self.engine.model is not None:
                return True
            now = time.monotonic()
            if now >= self._deadline:
                raise _Interrupted
            if until is not None and now >= until and not self.redis_link.down:
                return False
            if now - last_log > 5 and not self.redis_link.down:
                log.info("waiting for a model to be promoted in Redis")
                last_log = now
            self._pause(0.2 if not self.redis_link.down else self.redis_link.max_delay_s / 2)
        return False

    def check_model(self) -> int | None:
        """Read the model pointer now and swap in a new valid version; return the version in use."""
        self._maybe_reload(force=True)
        return self.engine.model.version if self.engine.model is not None else None

    def _maybe_reload(self, force: bool = False) -> None:
        """Swap in a newly promoted model; nothing the store raises stops the scorer."""
        now = time.monotonic()
        if not force and now - self._last_reload_check < self.reload_interval_s:
            return
        self._last_reload_check = now
        try:
            self._reload()
        except REDIS_DOWN as exc:
            self.redis_link.failed("reading the model pointer", exc)
        except Exception as exc:  # last resort: store errors of any type keep the last good model serving
            self._reject_model(f"serving model refused ({type(exc).__name__}: {exc})")
        self._reload_shadows()

    def _reload_shadows(self) -> None:
        """Follow the shadow slots' pointers; no shadow problem reaches the champion."""
        if not self.shadows.slots:
            return
        try:
            self.shadows.reload(self._store)
        except REDIS_DOWN as exc:
            self.redis_link.failed("reading the shadow model pointers", exc)
        except Exception as exc:  # last resort: the champion keeps scoring whatever a shadow's store raises
            log.error("shadow reload failed (%s: %s); the champion keeps serving", type(exc).__name__, exc)

    def _reload(self) -> None:
        current = self.engine.model.version if self.engine.model is not None else None
        stored = self._next_model(current)
        self.redis_link.ok()
        if stored is None:
            return
        version = int(stored.version)
        try:
            active = self._activate(stored, version)
        except Exception as exc:  # a record the store accepted but this scorer cannot use
            self._bad_versions[version] = time.monotonic()
            self._reject_model(f"model version {version} rejected ({type(exc).__name__}: {exc})")
            return
        self.engine.set_model(active)
        self._model_problem = None
        self.stats.model_version = active.version
        self.stats.model_reloads += 1
        log.info("scoring with model %s version %d (was %s)", active.name, active.version, current)
        if self.metrics is not None:
            self.metrics.model_reloads.labels("ok").inc()
            self.metrics.model_version.set(active.version)

    def _next_model(self, current: int | None) -> Any:
        """The verified record to switch to, or None (nothing new, or refused and logged once).

        A store with ``load_serving(current)`` (a signed pointer) decides about downgrades and rollbacks
        itself; with only ``current_version()``/``load(version)`` a lower version is always refused here.
        """
        serving = getattr(self._store, "load_serving", None)
        if callable(serving):
            stored = serving(current)
            if stored is None:
                self._model_problem = None
            elif (
                time.monotonic() - self._bad_versions.get(int(stored.version), float("-inf"))
                < BAD_VERSION_RETRY_S
            ):
                return None
            return stored
        raw = self._store.current_version()
        if raw is None:
            if current is not None:
                self._reject_model(f"no model pointer in Redis; keeping version {current}")
            return None
        version = _as_version(raw)
        if version == current:
            self._model_problem = None
            return None
        # Records are immutable, but a pointer can name a version before its record exists: retry later.
        if time.monotonic() - self._bad_versions.get(version, float("-inf")) < BAD_VERSION_RETRY_S:
            return None
        if current is not None and version < current:
            self._reject_model(
                f"pointer names version {version}, lower than version {current} in use: ignored"
            )
            return None
        try:
            stored = self._store.load(version)
        except REDIS_DOWN:
            raise
        except Exception:
            self._bad_versions[version] = time.monotonic()
            raise
        if int(stored.version) != version:
            raise InvalidModel(f"store returned version {stored.version} for version {version}")
        return stored

    def _reject_model(self, reason: str) -> None:
        """Log a model problem once (until the next good model); the model in use stays."""
        if reason == self._model_problem:
            return
        self._model_problem = reason
        current = self.engine.model.version if self.engine.model is not None else None
        log.error("%s; scoring continues with version %s", reason, current)
        self.stats.model_rejections += 1
        if self.metrics is not None:
            self.metrics.model_reloads.labels("invalid").inc()

    def _activate(self, stored: Any, version: int) -> ActiveModel:
        """Build the classifier of a verified record and probe it on one plausible window."""
        meta = stored.meta if isinstance(stored.meta, dict) else {}
        clf = self._model_factory()(stored.arrays, meta)
        name = str(meta.get("name") or meta.get("registered_model") or self.settings.registered_model)
        active = ActiveModel.wrap(clf, name, version)
        self._check_model(active)
        return active

    def _model_factory(self) -> ModelFactory:
        if self._factory is None:
            self._factory = from_arrays
        return self._factory

    def _check_model(self, active: ActiveModel) -> None:
        """Score one synthetic window, so a model that does not fit these features is refused before use."""
        w = self.engine.window_samples
        rng = np.random.default_rng(0)
        # Each signal at its nominal level (asset spec); only the output shape and finiteness are checked.
        probe = {s.name: s.nominal * rng.normal(1.0, 0.01, size=(1, w)) for s in SIGNAL_SPECS}
        p = np.asarray(active.model.predict_proba(self.engine.features(probe, self.engine.fs)))
        if p.shape != (1, len(active.faults)):
            raise ValueError(
                f"model output has shape {p.shape} on one window, expected (1, {len(active.faults)})"
            )
        if not np.isfinite(p).all():
            raise ValueError("model output is not finite on a plausible window")

    # ------------------------------------------------------------------ partitions and state
    def _state_key(self, topic: str, partition: int) -> str:
        return self.settings.key("scorer", "state", self.group, topic, str(partition))

    def _open_key(self) -> str:
        return self.settings.key("scorer", "open", self.group)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions handed to this scorer: restore each one's state from its snapshot, then start reading.

        Under the cooperative protocol ``partitions`` are only the added ones (``incremental_assign``);
        under the eager one they are the whole new assignment (``assign``).
        """
        if self.snapshot_state and partitions:
            committed = self._committed(consumer, partitions)
            keys = [self._state_key(tp.topic, tp.partition) for tp in committed]
            raws = self._until_ok(self.redis_link, "reading scorer state", lambda: self._redis.mget(keys))
            for tp, raw in zip(committed, raws, strict=True):
                if raw is not None:
                    self._restore_partition(tp, raw, partitions)
        if self._cooperative:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
        self._owned.update((tp.topic, tp.partition) for tp in partitions)
        self.stats.assignments += 1
        if partitions:  # operators (and the scale-out test) see which member took which partitions
            log.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        if self._assigned_at is None:
            self._assigned_at = time.monotonic()

    @staticmethod
    def _committed(consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The group's committed offsets; unknown (negative) when the broker cannot say right now."""
        try:
            return list(consumer.committed(partitions, timeout=10))
        except KafkaException as exc:
            log.warning("committed offsets unavailable (%s): restoring state without seeking", exc)
            return [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID) for tp in partitions]

    def _restore_partition(self, tp: TopicPartition, raw: bytes, partitions: list[TopicPartition]) -> None:
        where = f"{tp.topic}[{tp.partition}]"
        try:
            snap = loads(raw)
            offset = int(snap["offset"])
            # Older than the group's commit: stale. No commit at all: the broker lost its offsets (a memory-
            # only broker restarted); the state still holds, and chunks read again are dropped by sequence.
            if tp.offset >= 0 and offset < tp.offset:
                log.warning("ignoring scorer state of %s: offset %d, committed %d", where, offset, tp.offset)
                return
            restored = self.engine.restore(snap["engine"])
        except Exception as exc:  # a damaged snapshot costs a partial window, never the scorer
            log.warning("ignoring scorer state of %s: %s", where, exc)
            return
        for a in restored:
            self._asset_partition[a] = (tp.topic, tp.partition)
        self.stats.restored_assets += len(restored)
        if tp.offset >= 0:
            for p in partitions:
                if p.topic == tp.topic and p.partition == tp.partition:
                    p.offset = offset
        log.info(
            "restored %d assets of %s (state offset %d, committed %d)",
            len(restored),
            where,
            offset,
            tp.offset,
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away (or lost): forget their assets; their next owner restores the snapshot.

        Nothing needs saving here: every processed batch wrote its partitions' state and open alerts to Redis
        before its commit, and revocation happens inside ``consume``, between batches. Also serves as
        ``on_lost`` (librdkafka calls on_revoke when none is given).
        """
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._owned.difference_update(gone)
        assets = [a for a, tp in self._asset_partition.items() if tp in gone]
        self.engine.drop(assets)
        for a in assets:
            del self._asset_partition[a]
            self._open.pop(a, None)

    def _owned_only(self, msgs: list[Message]) -> list[Message]:
        """Drop messages of partitions this scorer no longer owns (fetched before a rebalance moved them):
        scoring them would overwrite the new owner's snapshot and emit its alerts a second time."""
        kept = [m for m in msgs if m.error() is not None or (m.topic(), m.partition()) in self._owned]
        if len(kept) < len(msgs):
            self.stats.foreign_dropped += len(msgs) - len(kept)
        return kept

    # ------------------------------------------------------------------ main loop
    def _loop(self, max_messages: int | None, idle_exit_s: float | None) -> None:
        assert self._consumer is not None
        last_msg = time.monotonic()
        last_lag = 0.0
        while True:
            stop = self._stop_reason(max_messages, idle_exit_s, last_msg)
            if stop:
                self.stats.stopped_by = stop
                return
            self._maybe_reload()
            n = (
                self.batch_size
                if max_messages is None
                else min(self.batch_size, max_messages - self.stats.messages)
            )
            msgs = self._owned_only(self._consumer.consume(n, self.batch_timeout_s))
            if msgs:
                last_msg = time.monotonic()
                if self._first_msg is None:
                    self._first_msg = last_msg
                self._handle(msgs)
            now = time.monotonic()
            if self.metrics is not None and now - last_lag > 5.0:
                last_lag = now
                self._update_lag()

    def _stop_reason(self, max_messages: int | None, idle_exit_s: float | None, last_msg: float) -> str:
        if self._stopped():
            return "stop"
        now = time.monotonic()
        if now >= self._deadline:
            return "max_seconds"
        if max_messages is not None and self.stats.messages >= max_messages:
            return "max_messages"
        # Idle time counts from the first assignment: the group join alone takes session.timeout/2.
        assigned = self._assigned_at
        if idle_exit_s is not None and assigned is not None and now - max(last_msg, assigned) >= idle_exit_s:
            return "idle"
        return ""

    def _handle(self, msgs: list[Message]) -> None:
        """Score one batch and write its results; offsets are committed last."""
        batch = self.decode_batch(msgs)
        self._load_open(batch.assets())
        out = self.score_batch(batch)
        self._deliver(self.kafka_records(out, batch.dlq))
        self._until_ok(self.redis_link, "writing alerts and state", lambda: self._write_redis(out))
        self._commit(batch.next_offsets)
        self._account(len(msgs), batch, out)
        self._tell(out, batch.dlq)

    def _tell(self, out: ScoredBatch, dlq: list[tuple[Message, str]]) -> None:
        """Each raise/clear and each dead-lettered message at INFO, rate-limited (after they are durable)."""
        for a in out.alerts:
            scores = ", ".join(f"{k}={float(v):.2f}" for k, v in sorted(a["scores"].items()))
            self._alert_log.info(
                "%s %s %s (%s) model %s v%s",
                a["kind"].upper(),
                a["asset"],
                "+".join(a["faults"]) or "-",
                scores,
                a.get("model_name"),
                a.get("model_version"),
            )
        for m, reason in dlq:
            self._dlq_log.info("dead letter %s[%s]@%s: %s", m.topic(), m.partition(), m.offset(), reason)

    # ------------------------------------------------------------------ decode
    def decode_batch(self, msgs: list[Message]) -> DecodedBatch:
        """Decode consumed messages (invalid ones to ``dlq`` with the reason); no I/O."""
        batch = DecodedBatch()
        for m in msgs:
            err = m.error()
            if err is not None:
                self._consumer_error(err)
                continue
            topic, part, off = m.topic(), m.partition(), m.offset()
            assert topic is not None and part is not None and off is not None
            batch.next_offsets[(topic, part)] = off + 1  # a batch is in offset order within a partition
            batch.n_msgs += 1
            try:
                chunk = self._decode_one(m)
            except SchemaError as exc:
                batch.dlq.append((m, exc.reason))
                continue
            except Exception as exc:  # a decoder bug must cost one message, not the partition
                batch.dlq.append((m, f"undecodable ({type(exc).__name__}: {exc})"))
                continue
            batch.chunks.append(chunk)
            ts_type, ts_ms = m.timestamp()
            batch.ts.append(ts_ms / 1000.0 if ts_type != 0 and ts_ms > 0 else float("nan"))
            batch.origin.append(m)
            self._asset_partition[chunk.asset] = (topic, part)
        if batch.n_msgs:
            self.kafka_link.ok()
        return batch

    @staticmethod
    def _decode_one(m: Message) -> SensorChunk:
        chunk = decode_chunk(m.value())
        key = m.key()
        if key is not None and key != chunk.asset.encode():
            raise SchemaError(f"key {key[:200]!r} differs from asset {chunk.asset!r}")
        return chunk

    def _client_error(self, err: KafkaError) -> None:
        """librdkafka's error callback (runs inside consume/flush): broker away -> an outage, logged once."""
        if err.fatal():
            raise ServiceUnavailable(f"Kafka client failed: {err}")
        link = self.kafka_link
        if kafka_retriable(err):
            # An error queued before the recovery can arrive just after it: not a new outage.
            if link.down or time.monotonic() - link.back_at > 1.0:
                link.failed("talking to the broker", err)
        else:
            self._warn_once("kafka", f"Kafka: {err}")

    def _consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            raise ServiceUnavailable(f"Kafka consumer failed: {err}")
        if err.code() in _TOPIC_GONE:
            self._recreate_topics(err)
        elif kafka_retriable(err):
            self.kafka_link.failed("consuming", err)
        else:
            self._warn_once("consume", f"consume error: {err}")

    def _recreate_topics(self, err: KafkaError) -> None:
        """A broker that lost its topics (memory-only restart): create them with the configured partitions."""
        if time.monotonic() - self._topics_checked < 5.0:
            return
        self._topics_checked = time.monotonic()
        self.kafka_link.failed("consuming", err)
        try:
            created = ensure_topics(self.settings, timeout_s=3.0)
        except (ServiceUnavailable, KafkaException) as exc:
            log.debug("re-creating topics failed: %s", exc)
            return
        if created:
            log.warning("topics %s were missing (broker restarted?) and were created again", created)

    # ------------------------------------------------------------------ score
    def _load_open(self, assets: list[str]) -> None:
        """Read the open alerts of assets this scorer has not met (waits for Redis during an outage)."""
        missing = [a for a in assets if a not in self._open]
        if not missing:
            return
        raws = self._until_ok(
            self.redis_link, "reading open alerts", lambda: self._redis.hmget(self._open_key(), missing)
        )
        for a, raw in zip(missing, raws, strict=True):
            self._open[a] = _parse_open(raw, a)

    def _seed_open(self, batch: DecodedBatch) -> None:
        """An asset without engine state starts with its open faults active, so their clear is emitted and
        their raise is not repeated (its first chunk is taken as the start of its stream)."""
        seed: dict[str, Any] = {}
        for c in batch.chunks:
            if c.asset not in seed and self._open.get(c.asset) and c.asset not in self.engine.assets:
                seed[c.asset] = {
                    "fill": 0,
                    "start": c.t0,
                    "next_seq": c.seq,
                    "last_t_end": c.t0,
                    "buf": "",
                    "faults": {f: [0, 0, 1] for f in sorted(self._open[c.asset])},
                }
        if seed:
            e = self.engine
            e.restore({"window_samples": e.window_samples, "fs": e.fs, "assets": seed})
            log.info("assets start with their open alerts: %s", {a: sorted(self._open[a]) for a in seed})

    def _save(self, assets: Sequence[str]) -> tuple[list[str], dict[str, Any], Any]:
        """What ``_rewind`` needs to undo processing of ``assets``."""
        return list(assets), self.engine.snapshot(assets), copy.copy(self.engine.stats)

    def _rewind(self, saved: tuple[list[str], dict[str, Any], Any]) -> None:
        assets, snap, stats = saved
        self.engine.drop(assets)
        self.engine.restore(snap)
        self.engine.stats = stats

    def score_batch(self, batch: DecodedBatch) -> ScoredBatch:
        """Score a decoded batch and serialise what it writes; no I/O (open alerts come from ``_open``).

        The batch is scored in one vectorised call; if anything in it raises, the engine is rewound and the
        batch scored message by message, each failing message going to ``batch.dlq`` with the reason. Raises
        of faults already open are dropped. Nothing a decoded message holds makes this raise.
        """
        self._seed_open(batch)
        out = self._score(batch)
        self._dedupe(out)
        if out.model_errors:
            self.shadows.predict_failed(out.model_errors)
        return out

    def _score(self, batch: DecodedBatch) -> ScoredBatch:
        saved = self._save(batch.assets())
        try:
            result = self.engine.process(batch.chunks, batch.ts)
            out = self._outputs([result])
            out.snapshots = self._snapshots(batch.next_offsets, strict=True)
        except Exception as exc:
            self._rewind(saved)
            self.stats.isolated_batches += 1
            log.warning(
                "a batch of %d chunks failed to score as a whole (%s: %s); scoring message by message",
                len(batch.chunks),
                type(exc).__name__,
                exc,
            )
            return self._score_each(batch)
        batch.dlq.extend((batch.origin[i], reason) for i, reason in result.rejected)
        return out

    def _score_each(self, batch: DecodedBatch) -> ScoredBatch:
        parts: list[BatchResult] = []
        for i, chunk in enumerate(batch.chunks):
            saved = self._save([chunk.asset])
            try:
                res = self.engine.process([chunk], [batch.ts[i]])
                self._outputs([res])  # serialises this chunk's alerts and feature rows
                dumps(self.engine.snapshot([chunk.asset]))
            except Exception as exc:
                self._rewind(saved)
                self.stats.scoring_failures += 1
                reason = f"scoring failed on the window this message completes ({type(exc).__name__}: {exc})"
                batch.dlq.append((batch.origin[i], reason))
                continue
            parts.append(res)
            batch.dlq.extend((batch.origin[i], reason) for _, reason in res.rejected)
        out = self._outputs(parts)
        out.snapshots = self._snapshots(batch.next_offsets, strict=False)
        return out

    def _outputs(self, parts: Iterable[BatchResult]) -> ScoredBatch:
        out = ScoredBatch()
        version = self.engine.model.version if self.engine.model is not None else -1
        for res in parts:
            for a in res.alerts:
                encode_alert(a)
            out.alerts.extend(res.alerts)
            out.decisions.extend((d["asset"].encode(), encode_decision(d)) for d in res.decisions)
            out.model_errors.update(res.model_errors)
            invalid = res.invalid if res.invalid.shape == (len(res.window_assets),) else None
            out.windows += len(res.window_assets)
            for k, asset in enumerate(res.window_assets):
                if invalid is not None and invalid[k]:
                    out.invalid += 1
                    continue  # a NaN row would be stored as null and poison the drift monitor's data set
                out.latency_ts.append(float(res.window_source_ts[k]))
                if self.publish_features:
                    out.feature_rows.append(
                        {
                            "asset": asset,
                            "window_start": float(res.window_starts[k]),
                            "model_version": version,
                            "x": dumps(res.features[k]),
                        }
                    )
        return out

    def _snapshots(
        self, next_offsets: dict[tuple[str, int], int], strict: bool
    ) -> dict[tuple[str, int], bytes]:
        """Engine state of each partition of the batch, serialised with the offset it belongs to."""
        if not self.snapshot_state:
            return {}
        by_part: dict[tuple[str, int], list[str]] = defaultdict(list)
        for a, tp in self._asset_partition.items():
            by_part[tp].append(a)
        out = {}
        for tp, off in next_offsets.items():
            try:
                out[tp] = dumps({"offset": off, "engine": self.engine.snapshot(by_part.get(tp, []))})
            except Exception as exc:
                if strict:
                    raise
                # Only an asset restored from an earlier snapshot can get here; its partition's state is not
                # saved this batch (a restart then replays from the committed offset).
                log.error("state of %s[%d] not serialisable, not saved: %s", tp[0], tp[1], exc)
        return out

    def _dedupe(self, out: ScoredBatch) -> None:
        """Drop raises of faults already open (a replay after a restart); keep the open set current."""
        kept = []
        for a in out.alerts:
            asset, faults = a["asset"], list(a["faults"])
            opened = self._open.setdefault(asset, set())
            if a["kind"] == "raise":
                new = [f for f in faults if f not in opened]
                if not new:
                    self.stats.suppressed_alerts += 1
                    if self.metrics is not None:
                        self.metrics.suppressed_alerts.inc()
                    continue
                a = {**a, "faults": new}
                opened.update(new)
            else:
                opened.difference_update(faults)
            out.open_changed.add(asset)
            kept.append(a)
        out.alerts = kept
        out.payloads = [(a["asset"].encode(), encode_alert(a)) for a in kept]

    # ------------------------------------------------------------------ write
    def kafka_records(
        self, out: ScoredBatch, dlq: list[tuple[Message, str]]
    ) -> list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]] | None]]:
        """(topic, value, key, headers) of the batch's alerts and bounded dead letters."""
        s = self.settings
        records: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]] | None]] = [
            (s.alert_topic, value, key, None) for key, value in out.payloads
        ]
        records.extend((s.decision_topic, value, key, None) for key, value in out.decisions)
        for m, reason in dlq:
            raw = m.value()
            key = m.key()
            key = key[:MAX_DLQ_TEXT] if key is not None else None
            if raw is not None and len(raw) > self.dlq_max_value_bytes:
                self.stats.dlq_truncated += 1
                if self.metrics is not None:
                    self.metrics.dlq_truncated.inc()
            value = dlq_record(
                raw,
                reason,
                topic=m.topic() or "",
                partition=m.partition() or 0,
                offset=m.offset() or 0,
                key=key,
                max_value_bytes=self.dlq_max_value_bytes,
            )
            headers = [
                ("reason", reason[:MAX_DLQ_TEXT].encode()),
                ("source_topic", (m.topic() or "").encode()),
                ("source_partition", str(m.partition()).encode()),
                ("source_offset", str(m.offset()).encode()),
            ]
            records.append((s.dlq_topic, value, key, headers))
        return records

    def _deliver(
        self, records: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]] | None]]
    ) -> None:
        """Produce ``records`` and wait until Kafka acknowledged every one; while the broker is away, retry
        the failed ones with backoff. Raises ServiceUnavailable on an error that retrying cannot fix."""
        assert self._producer is not None
        pending = records
        while pending:
            failed: list[tuple[Any, KafkaError]] = []
            for rec in pending:
                self._produce(rec, failed)
            self._flush()
            fatal = [(r, e) for r, e in failed if not kafka_retriable(e)]
            if fatal:
                raise ServiceUnavailable(
                    f"Kafka refused {len(fatal)} alert/DLQ messages ({fatal[0][1]}); offsets not committed"
                )
            if not failed:
                self.kafka_link.ok()
                return
            if any(e.code() in _TOPIC_GONE for _, e in failed):
                self._topics_checked = 0.0
                self._recreate_topics(failed[0][1])
            self._pause(self.kafka_link.failed("delivering alerts", failed[0][1]))
            pending = [r for r, _ in failed]

    def _produce(
        self, rec: tuple[str, bytes, bytes | None, Any], failed: list[tuple[Any, KafkaError]]
    ) -> None:
        assert self._producer is not None
        topic, value, key, headers = rec

        def on_delivery(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failed.append((rec, err))

        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:  # local queue full: let deliveries drain
                self._producer.poll(0.1)
            except KafkaException as exc:
                failed.append((rec, exc.args[0]))
                return

    def _flush(self) -> None:
        """Wait until every produced message is acknowledged or failed (librdkafka gives up on one after its
        ``message.timeout.ms``); a long wait is reported once as an outage."""
        assert self._producer is not None
        started = time.monotonic()
        while self._producer.flush(0.5) > 0:
            if time.monotonic() - started > 5.0 and not self.kafka_link.down:
                self.kafka_link.failed("delivering alerts", "no acknowledgement for 5 s")
            if self._stopped() or time.monotonic() >= self._deadline:
                raise _Interrupted

    def _write_redis(self, out: ScoredBatch) -> None:
        """Alerts, feature rows, open alerts and partition state in one transaction (all or nothing)."""
        s = self.settings
        pipe = self._redis.pipeline(transaction=True)
        for _, value in out.payloads:
            pipe.xadd(s.key("alerts"), {"alert": value}, maxlen=10000, approximate=True)
        for row in out.feature_rows:
            pipe.xadd(s.key("features"), row, maxlen=50000, approximate=True)
        for tp, raw in out.snapshots.items():
            pipe.set(self._state_key(*tp), raw)
        for a in out.open_changed:
            faults = sorted(self._open.get(a, ()))
            if faults:
                pipe.hset(self._open_key(), a, dumps(faults))
            else:
                pipe.hdel(self._open_key(), a)
        if len(pipe):
            pipe.execute()

    def _commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        """Commit after everything is written. A failed commit (broker away, partitions moved) is logged and
        left: the state snapshot already holds these offsets, and the next commit covers them."""
        assert self._consumer is not None
        if not next_offsets:
            return
        try:
            self._consumer.store_offsets(
                offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
            )
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            self.stats.commit_failures += 1
            self._warn_once(
                "commit", f"offset commit failed ({exc}); results are written, the next commit covers them"
            )
            return
        self._warn_clear("commit")

    def _account(self, n_consumed: int, batch: DecodedBatch, out: ScoredBatch) -> None:
        st = self.stats
        n_msgs, n_dlq = batch.n_msgs, len(batch.dlq)
        st.messages += n_msgs
        st.dlq += n_dlq
        st.scored += n_msgs - n_dlq
        st.samples += sum(c.n for c in batch.chunks)
        st.windows += out.windows
        st.alerts += len(out.alerts)
        st.decisions += len(out.decisions)
        st.batches += 1
        m = self.metrics
        if m is None:
            return
        now = time.time()
        m.messages.labels("scored").inc(n_msgs - n_dlq)
        m.messages.labels("dlq").inc(n_dlq)
        m.samples.inc(sum(c.n for c in batch.chunks))
        m.windows.inc(out.windows)
        m.invalid_windows.inc(out.invalid)
        m.batches.inc()
        m.batch_size.observe(n_consumed)
        for t in out.latency_ts:
            if np.isfinite(t):
                m.window_latency.observe(now - t)
        for a in out.alerts:
            for f in a["faults"]:
                m.alerts.labels(f, a["kind"]).inc()
            if a.get("input_ts") is not None:
                m.alert_latency.observe(now - a["input_ts"])
        e = self.engine.stats
        m.gaps.inc(max(0, e.gaps - int(m.value("fedtwin_scorer_sequence_gaps_total"))))
        m.duplicates.inc(max(0, e.duplicates - int(m.value("fedtwin_scorer_duplicate_chunks_total"))))
        for link in (self.redis_link, self.kafka_link):
            seen = int(m.value("fedtwin_scorer_outages_total", service=link.name))
            m.outages.labels(link.name).inc(max(0, link.outages - seen))

    def _update_lag(self) -> None:
        assert self._consumer is not None and self.metrics is not None
        try:
            assignment = self._consumer.assignment()
            if not assignment:
                return
            committed = self._consumer.committed(assignment, timeout=2)
            for tp in committed:
                _, high = self._consumer.get_watermark_offsets(tp, timeout=2, cached=False)
                lag = max(0, high - tp.offset) if tp.offset >= 0 else max(0, high)
                self.metrics.lag.labels(str(tp.partition)).set(lag)
        except Exception as exc:  # lag is advisory; never stop scoring for it
            log.debug("lag update failed: %s", exc)


def _as_version(raw: Any) -> int:
    """A model pointer's version as a positive int; ValueError (with the value) for anything else."""
    if isinstance(raw, bool) or not isinstance(raw, int | str | bytes):
        raise ValueError(f"model pointer is not a version number: {raw!r:.80}")
    try:
        version = int(raw)
    except ValueError:
        raise ValueError(f"model pointer is not a version number: {raw!r:.80}") from None
    if version < 1:
        raise ValueError(f"model pointer names version {version}; versions start at 1")
    return version


def _parse_open(raw: bytes | None, asset: str) -> set[str]:
    """Open faults of ``asset`` as stored in Redis (a JSON list of names); garbage counts as none open."""
    if raw is None:
        return set()
    try:
        faults = loads(raw)
    except ValueError:
        faults = None
    if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
        log.warning("ignoring unreadable open alerts of %s: %r", asset, raw[:80])
        return set()
    return set(faults)


def run_scorer(
    settings: Settings,
    *,
    max_seconds: float | None = None,
    max_messages: int | None = None,
    idle_exit_s: float | None = None,
    metrics_port: int | None = None,
    handle_signals: bool = False,
    stop_event: threading.Event | None = None,
    **scorer_kwargs: Any,
) -> dict[str, Any]:
    """Run one bounded Scorer (what a Prefect task or the CLI calls); returns ScorerStats as a dict."""
    metrics = None
    if metrics_port is not None:
        metrics = ScorerMetrics()
        metrics.serve(metrics_port)
    scorer = Scorer(settings, metrics=metrics, **scorer_kwargs)
    try:
        stats = scorer.run(
            max_seconds=max_seconds,
            max_messages=max_messages,
            idle_exit_s=idle_exit_s,
            handle_signals=handle_signals,
            stop_event=stop_event,
        )
    finally:
        if metrics is not None:
            metrics.shutdown()
    return stats.as_dict()


__all__ = ["FedtwinError", "ModelFactory", "Scorer", "ScorerStats", "kafka_retriable", "run_scorer"]
