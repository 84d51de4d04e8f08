"""Scoring service: Kafka sensor chunks -> ScoringEngine -> alerts on Kafka and a Redis stream, at least once.

One loop iteration handles one batch::

    consume(n, timeout) -> decode (invalid -> DLQ with reason) -> engine.process -> produce alerts + DLQ
    -> flush (every delivery acknowledged) -> Redis: XADD alerts + engine state snapshot with the next offsets
    -> store_offsets + synchronous commit

Nothing is committed before its alerts are acknowledged, so a crash replays at most one batch (duplicates,
never losses). The engine state of each partition (partial window, sequence, de-bouncing) is saved in Redis
with the offset it belongs to; on assignment a snapshot is used when it is at or ahead of the group's
committed offset, so a restarted scorer continues the exact window grid and still clears faults raised
before the crash.

The model is hot-reloaded between batches: the store's pointer is read at most every ``reload_interval_s``; a
new version is loaded, verified by the store and swapped in before the next batch (every window is scored by
exactly one model). An invalid version is logged and skipped; the last good model stays in use.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fedtwin.errors import FedtwinError, InvalidModel, ServiceUnavailable
from fedtwin.schema import SchemaError, SensorChunk, decode_chunk, dlq_record, dumps, encode_alert, loads
from fedtwin.scoring import ActiveModel, FeatureFn, ScoringEngine

if TYPE_CHECKING:
    from confluent_kafka import Consumer, Message, Producer, TopicPartition

    from fedtwin.settings import Settings
    from monitoring.metrics import ScorerMetrics

log = logging.getLogger(__name__)

#: ``(arrays, meta) -> classifier`` (default: ``federated.model.from_arrays``).
ModelFactory = Callable[[dict[str, np.ndarray], dict[str, Any]], Any]


@dataclass
class ScorerStats:
    """What one ``Scorer.run`` did."""

    messages: int = 0
    scored: int = 0
    dlq: int = 0
    samples: int = 0
    windows: int = 0
    alerts: int = 0
    batches: int = 0
    gaps: int = 0
    duplicates: int = 0
    restored_assets: int = 0
    model_version: int | None = None
    model_reloads: int = 0
    seconds: float = 0.0
    active_seconds: float = 0.0  # first consumed message to the end (no model wait, no group join)
    stopped_by: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for Prefect results and logs)."""
        return asdict(self)


def _retry(what: str, fn: Callable[[], Any], attempts: int = 4, base_delay_s: float = 0.2) -> Any:
    """Run an I/O call, retrying with backoff; raise ServiceUnavailable after the last attempt."""
    import redis

    for i in range(attempts):
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if i == attempts - 1:
                raise ServiceUnavailable(f"{what} failed after {attempts} attempts: {exc}") from exc
            log.warning("%s failed (%s); retrying", what, exc)
            time.sleep(base_delay_s * 2**i)
    raise AssertionError("unreachable")


class Scorer:
    """Consumer-group member that scores sensor chunks and emits alerts.

    Parameters
    ----------
    settings : Settings
        Topics, group, Redis, window and de-bouncing settings.
    model_store : object, optional
        ``load_serving(current_version)`` like ``fedtwin.model_store.ModelStore``
        (default: from settings).
    features : FeatureFn, optional
        Default ``fedtwin.features.extract_features``.
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
    ) -> None:
        self.settings = settings
        self.group = group or settings.consumer_group
        self.batch_size = batch_size
        self.batch_timeout_s = batch_timeout_s
        self.reload_interval_s = reload_interval_s
        self.snapshot_state = snapshot_state
        self.publish_features = publish_features
        self.metrics = metrics
        self._store = model_store
        self._factory = model_factory
        if features is None:
            from fedtwin.features import extract_features

            features = extract_features
        self.engine = ScoringEngine.from_settings(settings, features)
        self._stop = threading.Event()
        self._redis: Any = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._asset_partition: dict[str, tuple[str, int]] = {}
        self._bad_versions: set[int] = set()
        self._last_reload_check = 0.0
        self._first_msg: float | None = None
        self._assigned_at: float | None = None
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
        group.

        Raises
        ------
        InvalidModel
            When no valid model is available within ``model_wait_s`` (None = wait up to ``max_seconds``).
        ServiceUnavailable
            When Kafka or Redis fail beyond the retries; nothing unacknowledged is committed.
        """
        from fedtwin.kafka_io import ensure_topics, make_consumer, make_producer
        from fedtwin.redis_io import redis_client

        t_start = time.monotonic()
        deadline = t_start + max_seconds if max_seconds is not None else float("inf")
        restore = self._install_signals() if handle_signals else None
        try:
            self._redis = redis_client(self.settings)
            if self._store is None:
                from fedtwin.model_store import ModelStore

                self._store = ModelStore.from_settings(self.settings)
            wait_until = min(deadline, t_start + model_wait_s) if model_wait_s is not None else deadline
            if not self._wait_for_model(wait_until, stop_event):
                self.stats.stopped_by = "stop" if self._stopped(stop_event) else "no-model"
                if self.stats.stopped_by == "no-model":
                    raise InvalidModel(
                        f"no valid model in Redis under {self.settings.redis_prefix!r}: "
                        "promote one (training flow)"
                    )
                return self._finish(t_start)
            ensure_topics(self.settings)
            self._producer = make_producer(self.settings)
            self._consumer = make_consumer(self.settings, self.group)
            self._consumer.subscribe(
                [self.settings.sensor_topic], on_assign=self._on_assign, on_revoke=self._on_revoke
            )
            self._loop(deadline, max_messages, stop_event, idle_exit_s)
        finally:
            self._close()
            if restore is not None:
                restore()
        return self._finish(t_start)

    def _finish(self, t_start: float) -> ScorerStats:
        self.stats.seconds = time.monotonic() - t_start
        if self._first_msg is not None:
            self.stats.active_seconds = time.monotonic() - self._first_msg
        e = self.engine.stats
        self.stats.gaps, self.stats.duplicates = e.gaps, e.duplicates
        log.info("scorer stopped (%s): %s", self.stats.stopped_by, self.stats.as_dict())
        return self.stats

    def _stopped(self, stop_event: threading.Event | None) -> bool:
        return self._stop.is_set() or (stop_event is not None and stop_event.is_set())

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

    # ------------------------------------------------------------------ model
    def _wait_for_model(self, until: float, stop_event: threading.Event | None) -> bool:
        last_log = 0.0
        while not self._stopped(stop_event):
            self._last_reload_check = 0.0
            self._maybe_reload(force=True)
            if self.engine.model is not None:
                return True
            if time.monotonic() >= until:
                return False
            if time.monotonic() - last_log > 5:
                log.info("waiting for a model to be promoted in Redis")
                last_log = time.monotonic()
            time.sleep(0.2)
        return False

    def _maybe_reload(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_reload_check < self.reload_interval_s:
            return
        self._last_reload_check = now
        store = self._store
        current = self.engine.model.version if self.engine.model is not None else None
        try:  # verifies the signed pointer (no downgrade without a signed rollback) and the record
            stored = _retry("loading the serving model", lambda: store.load_serving(current))
        except InvalidModel as exc:
            if str(exc) != getattr(self, "_store_error", None):  # once per distinct problem
                log.error("model store refused, keeping version %s: %s", current, exc)
            self._store_error = str(exc)
            return
        if stored is None or stored.version in self._bad_versions:
            return
        version = stored.version
        try:
            clf = self._model_factory()(stored.arrays, stored.meta)
            name = str(
                stored.meta.get("name")
                or stored.meta.get("registered_model")
                or self.settings.registered_model
            )
            active = ActiveModel.wrap(clf, name, stored.version)
            self._check_model(active)
        except (InvalidModel, ValueError, KeyError, TypeError) as exc:
            self._bad_versions.add(version)
            log.error("model version %s rejected, keeping version %s: %s", version, current, exc)
            if self.metrics is not None:
                self.metrics.model_reloads.labels("invalid").inc()
            return
        self.engine.set_model(active)
        self.stats.model_version = active.version
        self.stats.model_reloads += 1
        log.info("scoring with model %s version %d (was %s)", active.name, active.version, current)
        if self.metrics is not None:
            self.metrics.model_reloads.labels("ok").inc()
            self.metrics.model_version.set(active.version)

    def _model_factory(self) -> ModelFactory:
        if self._factory is None:
            from federated.model import from_arrays

            self._factory = from_arrays
        return self._factory

    def _check_model(self, active: ActiveModel) -> None:
        """Score one synthetic window, so a model that does not fit these features is refused before use."""
        w = self.engine.window_samples
        rng = np.random.default_rng(0)
        # Plausible magnitudes (bar, L/min, rpm, A); only the output shape is checked.
        level = {"pressure": 100.0, "flow": 30.0, "speed": 1500.0, "current": 10.0}
        probe = {s: v * rng.normal(1.0, 0.01, size=(1, w)) for s, v in level.items()}
        p = np.asarray(active.model.predict_proba(self.engine.features(probe, self.engine.fs)))
        if p.shape != (1, len(active.faults)):
            raise ValueError(
                f"model output has shape {p.shape} on one window, expected (1, {len(active.faults)})"
            )

    # ------------------------------------------------------------------ partitions and state
    def _state_key(self, topic: str, partition: int) -> str:
        return self.settings.key("scorer", "state", self.group, topic, str(partition))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.snapshot_state and partitions:
            committed = consumer.committed(partitions, timeout=10)
            keys = [self._state_key(tp.topic, tp.partition) for tp in committed]
            raws = _retry("reading scorer state", lambda: self._redis.mget(keys))
            for tp, raw in zip(committed, raws, strict=True):
                if raw is None:
                    continue
                snap = loads(raw)
                offset = int(snap["offset"])
                # Valid only if the group committed before (the broker kept its offsets) and the snapshot is
                # not older than that commit; it may be one batch ahead when a crash fell between the writes.
                if tp.offset < 0 or offset < tp.offset:
                    log.warning(
                        "ignoring scorer state of %s[%d]: offset %d, committed %d",
                        tp.topic,
                        tp.partition,
                        offset,
                        tp.offset,
                    )
                    continue
                try:
                    restored = self.engine.restore(snap["engine"])
                except (ValueError, KeyError) as exc:
                    log.warning("ignoring scorer state of %s[%d]: %s", tp.topic, tp.partition, exc)
                    continue
                for a in restored:
                    self._asset_partition[a] = (tp.topic, tp.partition)
                self.stats.restored_assets += len(restored)
                for p in partitions:
                    if p.topic == tp.topic and p.partition == tp.partition:
                        p.offset = offset
                log.info(
                    "restored %d assets of %s[%d] at offset %d", len(restored), tp.topic, tp.partition, offset
                )
        consumer.assign(partitions)
        if self._assigned_at is None:
            self._assigned_at = time.monotonic()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every processed batch is already committed (revocation happens inside consume, between batches).
        gone = {(tp.topic, tp.partition) for tp in partitions}
        assets = [a for a, tp in self._asset_partition.items() if tp in gone]
        self.engine.drop(assets)
        for a in assets:
            del self._asset_partition[a]

    # ------------------------------------------------------------------ main loop
    def _loop(
        self,
        deadline: float,
        max_messages: int | None,
        stop_event: threading.Event | None,
        idle_exit_s: float | None,
    ) -> None:
        assert self._consumer is not None
        last_msg = time.monotonic()
        last_lag = 0.0
        while True:
            if self._stopped(stop_event):
                self.stats.stopped_by = "stop"
                return
            now = time.monotonic()
            if now >= deadline:
                self.stats.stopped_by = "max_seconds"
                return
            if max_messages is not None and self.stats.messages >= max_messages:
                self.stats.stopped_by = "max_messages"
                return
            # Idle time counts from the first assignment: the group join alone takes session.timeout/2.
            if self._assigned_at is not None:
                last_msg = max(last_msg, self._assigned_at)
            if idle_exit_s is not None and self._assigned_at is not None and now - last_msg >= idle_exit_s:
                self.stats.stopped_by = "idle"
                return
            self._maybe_reload()
            n = (
                self.batch_size
                if max_messages is None
                else min(self.batch_size, max_messages - self.stats.messages)
            )
            msgs = self._consumer.consume(n, self.batch_timeout_s)
            if msgs:
                last_msg = time.monotonic()
                if self._first_msg is None:
                    self._first_msg = last_msg
                self._handle(msgs)
            if self.metrics is not None and now - last_lag > 5.0:
                last_lag = now
                self._update_lag()

    def _handle(self, msgs: list[Message]) -> None:
        assert self._producer is not None and self._consumer is not None
        chunks: list[SensorChunk] = []
        ts: list[float] = []
        origin: list[Message] = []
        dlq: list[tuple[Message, str]] = []
        next_offsets: dict[tuple[str, int], int] = {}
        for m in msgs:
            err = m.error()
            if err is not None:
                log.warning("consume error: %s", err)
                continue
            topic, part, off = m.topic(), m.partition(), m.offset()
            assert topic is not None and part is not None and off is not None
            next_offsets[(topic, part)] = off + 1  # a batch is in offset order within a partition
            try:
                chunk = decode_chunk(m.value())
            except SchemaError as exc:
                dlq.append((m, exc.reason))
                continue
            key = m.key()
            if key is not None and key != chunk.asset.encode():
                dlq.append((m, f"key {key!r} differs from asset {chunk.asset!r}"))
                continue
            chunks.append(chunk)
            ts_type, ts_ms = m.timestamp()
            ts.append(ts_ms / 1000.0 if ts_type != 0 and ts_ms > 0 else float("nan"))
            origin.append(m)
            self._asset_partition[chunk.asset] = (topic, part)
        result = self.engine.process(chunks, ts)
        for idx, reason in result.rejected:
            dlq.append((origin[idx], reason))
        n_msgs = sum(1 for m in msgs if m.error() is None)

        # 1. Kafka: alerts and dead letters, then wait for every acknowledgement.
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        s = self.settings
        payloads = [(a["asset"].encode(), encode_alert(a)) for a in result.alerts]
        for key, value in payloads:
            self._producer.produce(s.alert_topic, value, key, on_delivery=on_delivery)
        for m, reason in dlq:
            self._producer.produce(
                s.dlq_topic,
                dlq_record(
                    m.value(),
                    reason,
                    topic=m.topic() or "",
                    partition=m.partition() or 0,
                    offset=m.offset() or 0,
                    key=m.key(),
                ),
                m.key(),
                headers=[
                    ("reason", reason.encode()),
                    ("source_topic", (m.topic() or "").encode()),
                    ("source_partition", str(m.partition()).encode()),
                    ("source_offset", str(m.offset()).encode()),
                ],
                on_delivery=on_delivery,
            )
        if payloads or dlq:
            remaining = self._producer.flush(30)
            if remaining or failures:
                raise ServiceUnavailable(
                    f"Kafka did not acknowledge {remaining} alert/DLQ messages ({failures[:3]}); "
                    "offsets not committed, the batch will be replayed"
                )

        # 2. Redis: alert stream, optional feature stream, engine state next to the offsets it belongs to.
        pipe = self._redis.pipeline(transaction=True)
        stream = s.key("alerts")
        for _, value in payloads:
            pipe.xadd(stream, {"alert": value}, maxlen=10000, approximate=True)
        if self.publish_features and len(result.window_assets):
            fstream = s.key("features")
            version = self.engine.model.version if self.engine.model else -1
            for k, asset in enumerate(result.window_assets):
                pipe.xadd(
                    fstream,
                    {
                        "asset": asset,
                        "window_start": float(result.window_starts[k]),
                        "model_version": version,
                        "x": dumps(result.features[k]),
                    },
                    maxlen=50000,
                    approximate=True,
                )
        if self.snapshot_state:
            by_part: dict[tuple[str, int], list[str]] = defaultdict(list)
            for a, tp in self._asset_partition.items():
                by_part[tp].append(a)
            for tp, off in next_offsets.items():
                snap = {"offset": off, "engine": self.engine.snapshot(by_part.get(tp, []))}
                pipe.set(self._state_key(*tp), dumps(snap))
        if len(pipe):
            _retry("writing alerts and state to Redis", pipe.execute)

        # 3. Offsets last: a crash before this line replays the batch.
        if next_offsets:
            from confluent_kafka import TopicPartition

            self._consumer.store_offsets(
                offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
            )
            self._consumer.commit(asynchronous=False)
        self._account(msgs, n_msgs, chunks, result, dlq)

    def _account(
        self, msgs: list[Message], n_msgs: int, chunks: list[SensorChunk], result: Any, dlq: list
    ) -> None:
        st = self.stats
        st.messages += n_msgs
        st.dlq += len(dlq)
        st.scored += n_msgs - len(dlq)
        st.samples += sum(c.n for c in chunks)
        st.windows += len(result.window_assets)
        st.alerts += len(result.alerts)
        st.batches += 1
        m = self.metrics
        if m is None:
            return
        now = time.time()
        m.messages.labels("scored").inc(n_msgs - len(dlq))
        m.messages.labels("dlq").inc(len(dlq))
        m.samples.inc(sum(c.n for c in chunks))
        m.windows.inc(len(result.window_assets))
        m.batches.inc()
        m.batch_size.observe(len(msgs))
        lat = now - result.window_source_ts
        for x in lat[np.isfinite(lat)]:
            m.window_latency.observe(float(x))
        for a in result.alerts:
            for f in a["faults"]:
                m.alerts.labels(f, a["kind"]).inc()
            if a.get("input_ts") is not None:
                m.alert_latency.observe(now - a["input_ts"])
        e = self.engine.stats
        m.gaps.inc(max(0, e.gaps - int(m.value("fedtwin_scorer_sequence_gaps_total"))))
        m.duplicates.inc(max(0, e.duplicates - int(m.value("fedtwin_scorer_duplicate_chunks_total"))))

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
        from monitoring.metrics import ScorerMetrics

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


__all__ = ["FedtwinError", "ModelFactory", "Scorer", "ScorerStats", "run_scorer"]
