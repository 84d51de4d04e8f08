"""Live plant: N simulated pumps streaming sensor chunks to Kafka, with runtime fault injection through Redis.

All assets advance together in one vectorised :class:`plant_models.LiveFleet` (asset ``i`` is seeded
``seed + i``; its chunks equal a ``LiveSimulator``'s). An asset whose simulation diverges loses that chunk,
which leaves a gap in its ``seq`` (the scorer restarts its window), and restarts; the others go on.

Control (Redis, under the key prefix ``P``):

- ``P control:<asset>``: hash of fault severities (``plant_models.spec.FAULTS``) in [0, 1], optional
  ``speed_rpm``/``load_area_factor`` (operating point) and ``rev``, a counter bumped by every change;
- ``inject``/``clear``/``set_operating_point`` write it; the plant reads the hashes of all its assets at most
  every ``control_poll_s`` of wall time (one pipelined round trip) and applies changes from the next chunk.

Ground truth: every applied change (and the initial state of each asset) is written as a ``truth_record`` to
the truth topic (key = asset) and the Redis stream ``P truth`` with the ``seq`` and ``t`` of the first chunk
it affects. ``P plant:cursor:<asset>`` keeps the next ``seq`` and ``t0``: a restarted plant continues the
sequence, and its time never goes back (it starts at the later of now and the cursor), so after a pause the
scorer sees a time jump and starts a new window.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import redis

from fedtwin.adapters.kafka_io import ensure_topics, make_producer
from fedtwin.adapters.outages import RECONNECT, ServiceLink, kafka_logger, kafka_retriable
from fedtwin.adapters.redis_io import redis_client
from fedtwin.data.schema import dumps, encode_chunk, loads, truth_record
from fedtwin.errors import FedtwinError
from plant_models import Faults, LiveFleet, OperatingPoint, SensorConfig
from plant_models.spec import FAULTS, SIGNALS

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from fedtwin.settings import Settings

log = logging.getLogger(__name__)

#: A chunk waits this long for an away broker before the producer gives up on it (ms); the default 30 s
#: dropped data in a broker restart.
MESSAGE_TIMEOUT_MS = 300_000

_OP_FIELDS = ("speed_rpm", "load_area_factor")
#: Sensor faults (not fault labels: the pump is healthy, a sensor lies): ``sensor_stuck`` and
#: ``sensor_drift`` hold 1 + the index of the signal in ``SENSOR_SIGNALS`` (0 = none; control values are
#: numbers), ``sensor_drift_rate`` the drift in the signal's units per second.
_SENSOR_FIELDS = ("sensor_stuck", "sensor_drift", "sensor_drift_rate")
SENSOR_SIGNALS: tuple[str, ...] = SIGNALS


def asset_ids(n: int) -> list[str]:
    """Default asset names ``pump-1`` .. ``pump-n``."""
    return [f"pump-{i + 1}" for i in range(n)]


def _redis(settings: Settings) -> Any:
    return redis_client(settings, socket_timeout=5)


def _control_key(settings: Settings, asset: str) -> str:
    return settings.key("control", asset)


def _write_control(
    settings: Settings, asset: str, fields: Mapping[str, float], client: Any = None
) -> dict[str, Any]:
    r = client or _redis(settings)
    key = _control_key(settings, asset)
    try:
        pipe = r.pipeline(transaction=True)
        pipe.hset(key, mapping={k: repr(float(v)) for k, v in fields.items()})
        pipe.hset(key, "requested_at", repr(time.time()))
        pipe.hincrby(key, "rev", 1)
        pipe.hgetall(key)
        out = pipe.execute()[-1]
    except (redis.RedisError, OSError) as exc:
        raise FedtwinError(f"cannot write plant control to Redis at {settings.redis_url}: {exc}") from exc
    return {k.decode(): v.decode() for k, v in out.items()}


def inject(
    settings: Settings, asset: str, fault: str, severity: float, *, client: Any = None
) -> dict[str, Any]:
    """Set ``fault`` on ``asset`` to ``severity`` in (0, 1] (0 removes it); other faults stay as they are.

    Returns the asset's control hash after the change. Takes effect at the plant's next chunk.
    """
    if fault not in FAULTS:
        raise FedtwinError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)}")
    if not (isinstance(severity, int | float) and math.isfinite(severity) and 0.0 <= severity <= 1.0):
        raise FedtwinError(f"severity must be in [0, 1], got {severity!r}")
    return _write_control(settings, asset, {fault: severity}, client)


def clear(settings: Settings, asset: str, *, client: Any = None) -> dict[str, Any]:
    """Remove every fault from ``asset``, sensor faults included (the operating point is kept)."""
    return _write_control(settings, asset, dict.fromkeys(FAULTS + _SENSOR_FIELDS, 0.0), client)


def set_sensor_fault(
    settings: Settings,
    asset: str,
    *,
    stuck: str | None = None,
    drift: str | None = None,
    drift_rate: float = 0.0,
    client: Any = None,
) -> dict[str, Any]:
    """Make a sensor of ``asset`` freeze (``stuck``) and/or drift (``drift``, ``drift_rate`` units per s).

    ``None`` repairs that kind. A sensor fault is not a fault label: the truth says the pump is healthy.
    """
    for name in (stuck, drift):
        if name is not None and name not in SENSOR_SIGNALS:
            raise FedtwinError(f"unknown sensor {name!r}: expected one of {', '.join(SENSOR_SIGNALS)}")
    if not (math.isfinite(drift_rate) and abs(drift_rate) <= 10.0):
        raise FedtwinError(f"drift_rate must be within +-10 units per second, got {drift_rate!r}")
    fields = {
        "sensor_stuck": 0.0 if stuck is None else 1.0 + SENSOR_SIGNALS.index(stuck),
        "sensor_drift": 0.0 if drift is None else 1.0 + SENSOR_SIGNALS.index(drift),
        "sensor_drift_rate": drift_rate if drift is not None else 0.0,
    }
    return _write_control(settings, asset, fields, client)


def set_operating_point(
    settings: Settings,
    asset: str,
    *,
    speed_rpm: float | None = None,
    load_area_factor: float | None = None,
    client: Any = None,
) -> dict[str, Any]:
    """Change the crank speed set-point and/or outlet load of ``asset`` (not a fault; may cause drift)."""
    fields = {
        k: v for k, v in (("speed_rpm", speed_rpm), ("load_area_factor", load_area_factor)) if v is not None
    }
    if not fields:
        raise FedtwinError("give speed_rpm and/or load_area_factor")
    try:
        OperatingPoint(**fields)  # validates ranges with a clear message
    except ValueError as exc:
        raise FedtwinError(str(exc)) from exc
    return _write_control(settings, asset, fields, client)


@dataclass
class PlantStats:
    """What one ``run_plant`` produced."""

    assets: list[str]
    chunks: int = 0
    samples: int = 0
    bytes: int = 0
    truth_events: int = 0
    sim_seconds: float = 0.0
    wall_seconds: float = 0.0
    delivered: int = 0  # sensor + truth messages the broker acknowledged
    failed: int = 0  # sensor + truth messages the producer gave up on (each logged, the first few in full)
    behind_s: float = 0.0  # how far pacing fell behind wall time at the end (simulation slower than speedup)
    lost_chunks: int = 0  # asset chunks without data: its simulation diverged (it restarts) or is down

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for Prefect results and logs)."""
        return asdict(self)


def _parse_control(raw: Mapping[bytes, bytes]) -> dict[str, float]:
    """Numeric fields of a control hash (faults, operating point, ``rev``); other fields are skipped, and so
    are values that are not finite numbers (with a warning)."""
    out = {}
    for k, v in raw.items():
        name = k.decode()
        if name in FAULTS + _OP_FIELDS + _SENSOR_FIELDS + ("rev",):
            try:
                value = float(v)
            except ValueError:
                value = math.nan
            if math.isfinite(value):
                out[name] = value
            else:
                log.warning("ignoring bad control value %s=%r", name, v)
    return out


@dataclass(frozen=True)
class Conditions:
    """What a control hash asks of one asset.

    Attributes
    ----------
    severities : dict of str to float
        Per fault in ``FAULTS``, clipped to [0, 1] (absent = 0).
    faults : plant_models.Faults
        The plant's fault parameters for those severities.
    op : plant_models.OperatingPoint
        The operating point (absent fields at their nominal value).
    op_fields : dict of str to float
        The operating-point fields the hash sets.
    """

    severities: dict[str, float]
    faults: Faults
    op: OperatingPoint
    op_fields: dict[str, float]
    sensor_fields: dict[str, float] = field(default_factory=dict)

    def sensor(self) -> dict[str, Any] | None:
        """The sensor faults for the truth record (None: every sensor works)."""
        if self.faults.stuck_signal is None and self.faults.drift_signal is None:
            return None
        return {
            "stuck": self.faults.stuck_signal,
            "drift": self.faults.drift_signal,
            "drift_rate": self.faults.drift_rate,
        }


def conditions_from_control(ctl: Mapping[str, float]) -> Conditions:
    """Faults and operating point asked for by a parsed control hash.

    Raises
    ------
    ValueError
        An operating-point field outside its range (the message names it).
    """
    sev = {f: min(1.0, max(0.0, ctl.get(f, 0.0))) for f in FAULTS}
    op_fields = {k: ctl[k] for k in _OP_FIELDS if k in ctl}
    faults = Faults.from_severity(**sev, leak_cylinder=0)  # the reference leaks from cylinder 1
    sensor_fields = {k: ctl[k] for k in _SENSOR_FIELDS if k in ctl}
    stuck, drift = (_sensor_name(ctl.get(k, 0.0)) for k in ("sensor_stuck", "sensor_drift"))
    if stuck is not None or drift is not None:
        rate = min(10.0, max(-10.0, ctl.get("sensor_drift_rate", 0.0))) if drift is not None else 0.0
        faults = replace(faults, stuck_signal=stuck, drift_signal=drift, drift_rate=rate)
    return Conditions(sev, faults, OperatingPoint(**op_fields), op_fields, sensor_fields)


def _sensor_name(code: float) -> str | None:
    """Signal named by a control code (1 + index; anything else means no sensor fault)."""
    k = int(code) - 1 if float(code).is_integer() else -1
    return SENSOR_SIGNALS[k] if 0 <= k < len(SENSOR_SIGNALS) else None


class _Plant:
    """One ``run_plant``: the fleet, its Kafka producer and Redis connection, and the per-asset cursors."""

    def __init__(
        self,
        settings: Settings,
        names: list[str],
        seed: int,
        decimals: int | None,
        producer: Producer | None,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.names = names
        self.decimals = decimals
        self.fs = settings.sample_rate_hz
        self.n_chunk = round(settings.chunk_s * self.fs)
        self.chunk_dt = self.n_chunk / self.fs
        self.stats = PlantStats(assets=names)
        self.stop_event = stop_event or threading.Event()
        self.redis_link = ServiceLink("Redis", base_delay_s=0.1, max_delay_s=5.0, logger=log)
        self.kafka_link = ServiceLink("Kafka", logger=log)
        self.redis_retry_at = -math.inf
        self.pending_truth: list[bytes] = []  # truth records not yet in the Redis stream (Redis was away)
        self.r = _redis(settings)
        ensure_topics(settings)
        self.prod = producer or make_producer(
            settings,
            **RECONNECT,
            **{"message.timeout.ms": MESSAGE_TIMEOUT_MS},
            logger=kafka_logger("fedtwin.streaming.live.kafka"),
            error_cb=self._kafka_error,
        )
        self.fleet = LiveFleet([seed + i for i in range(len(names))], sensors=SensorConfig(fs=self.fs))
        self.seqs, self.t_base = self._load_cursors()
        self.applied_rev: list[float | None] = [None] * len(names)
        self.applied_ctl: list[dict[str, float]] = [{} for _ in names]
        self.lost_reason: list[str | None] = [None] * len(names)  # logged once per new reason
        self.start = time.monotonic()

    def _kafka_error(self, err: Any) -> None:
        """librdkafka's error callback: a broker away is one outage, logged once (not every reconnect)."""
        if kafka_retriable(err):
            self.kafka_link.failed("producing", err)
        else:
            log.error("Kafka: %s", err)

    def _load_cursors(self) -> tuple[list[int], float]:
        """Continue the sequence of an earlier run (one stream per asset); time resumes at the later of now
        and the cursors, so it never goes back. Waits (with backoff, logged once) while Redis is away."""
        keys = [self.settings.key("plant", "cursor", a) for a in self.names]
        while True:
            try:
                cursors = self.r.mget(keys)
                self.redis_link.ok()
                break
            except (redis.RedisError, OSError) as exc:
                delay = self.redis_link.failed("reading the plant cursors", exc)
                if self.stop_event.wait(delay):
                    raise FedtwinError("stopped while waiting for Redis") from exc
        seqs = [0] * len(self.names)
        t_base = time.time()
        for i, raw in enumerate(cursors):
            if raw is not None:
                c = loads(raw)
                seqs[i] = int(c["seq"])
                t_base = max(t_base, float(c["t"]))
        return seqs, t_base

    def t0(self, tick: int) -> float:
        """Epoch time of the first sample of chunk ``tick``."""
        return self.t_base + tick * self.chunk_dt

    def on_delivery(self, err: Any, msg: Any) -> None:
        """Count acknowledged and failed messages (runs inside poll()/flush() on this thread)."""
        if err is None:
            self.stats.delivered += 1
            if self.kafka_link.down:
                self.kafka_link.ok()
            return
        self.stats.failed += 1
        if self.stats.failed <= 5:
            log.error("message to %s (key %s) not delivered: %s", msg.topic(), msg.key(), err)

    def produce(self, topic: str, value: bytes, key: str) -> None:
        """Produce one message; a full local queue is drained (deliveries served) and retried."""
        while True:
            try:
                self.prod.produce(topic, value, key.encode(), on_delivery=self.on_delivery)
                return
            except BufferError:
                self.prod.poll(0.05)

    def poll_control(self, tick: int) -> None:
        """Read every asset's control hash and save the cursors in one round trip; apply what changed.

        With Redis away the current faults stay, the attempt is retried with backoff and the outage is logged
        once; truth records written meanwhile reach the Redis stream when it is back.
        """
        if time.monotonic() < self.redis_retry_at:
            return
        try:
            pipe = self.r.pipeline(transaction=False)
            for a in self.names:
                pipe.hgetall(_control_key(self.settings, a))
            for i, a in enumerate(self.names):
                pipe.set(
                    self.settings.key("plant", "cursor", a), dumps({"seq": self.seqs[i], "t": self.t0(tick)})
                )
            raws = pipe.execute()[: len(self.names)]
            # Inside the try: Redis may go away between the read and a write-back (truth, restored control);
            # what was not written is retried at the next poll.
            for i, raw in enumerate(raws):
                self._apply_control(i, _parse_control(raw), tick)
            self._flush_truth()  # this poll's truth records, after any an outage held back (in order)
        except (redis.RedisError, OSError) as exc:
            delay = self.redis_link.failed("polling plant control (current faults kept)", exc)
            self.redis_retry_at = time.monotonic() + delay
            return
        self.redis_link.ok()

    def _flush_truth(self) -> None:
        while self.pending_truth:
            self.r.xadd(
                self.settings.key("truth"), {"truth": self.pending_truth[0]}, maxlen=100000, approximate=True
            )
            self.pending_truth.pop(0)

    def _restore_control(self, i: int) -> None:
        """Write back what this asset runs with: its control hash vanished (Redis restarted empty), and an
        absent hash must not silently clear an injected fault."""
        name = self.names[i]
        key = _control_key(self.settings, name)
        self.r.hset(key, mapping={k: repr(float(v)) for k, v in self.applied_ctl[i].items()})
        log.warning("%s: its control hash was gone (Redis restarted?); restored the running faults", name)

    def _apply_control(self, i: int, ctl: dict[str, float], tick: int) -> None:
        if "rev" not in ctl and self.applied_rev[i]:
            self._restore_control(i)
            return
        rev = ctl.get("rev", 0.0)
        if rev == self.applied_rev[i]:
            return
        self.applied_rev[i] = rev
        name = self.names[i]
        try:
            cond = conditions_from_control(ctl)
        except ValueError as exc:
            log.error("ignoring invalid control of %s: %s", name, exc)
            return
        self.applied_ctl[i] = {**cond.severities, **cond.op_fields, **cond.sensor_fields, "rev": rev}
        self.fleet.set_faults(i, cond.faults)
        self.fleet.set_operating_point(i, cond.op)
        op_dict = {"speed_rpm": cond.op.speed_rpm, "load_area_factor": cond.op.load_area_factor}
        rec = truth_record(
            name,
            cond.severities,
            self.seqs[i],
            self.t0(tick),
            operating_point=op_dict,
            rev=rev,
            sensor=cond.sensor(),
        )
        self.produce(self.settings.truth_topic, rec, name)
        self.pending_truth.append(rec)  # written to the Redis stream by the caller's _flush_truth
        self.stats.truth_events += 1
        log.info("%s: faults %s from seq %d", name, {**cond.severities, **cond.op_fields}, self.seqs[i])

    def step(self, tick: int) -> None:
        """Simulate one chunk of every asset and produce it; an asset without data leaves a ``seq`` gap."""
        try:
            chunk = self.fleet.step(self.chunk_dt)
        except RuntimeError as exc:  # even a healthy nominal pump diverges: the parameters are broken
            raise FedtwinError(f"plant simulation failed: {exc}") from exc
        t0 = self.t0(tick)
        for i, (name, signals) in enumerate(zip(self.names, chunk.signals, strict=True)):
            if signals is None:
                self._lost(i, chunk.failures[i])
            else:
                value = encode_chunk(name, self.seqs[i], t0, self.fs, signals, decimals=self.decimals)
                self.produce(self.settings.sensor_topic, value, name)
                self.stats.chunks += 1
                self.stats.samples += self.n_chunk
                self.stats.bytes += len(value)
            self.seqs[i] += 1
        self.stats.sim_seconds = (tick + 1) * self.chunk_dt
        self.prod.poll(0)

    def _lost(self, i: int, reason: str) -> None:
        self.stats.lost_chunks += 1
        if reason != self.lost_reason[i]:
            self.lost_reason[i] = reason
            log.error("%s: no data from seq %d: %s", self.names[i], self.seqs[i], reason)

    def close(self) -> None:
        """Save the cursors, flush the producer (a caller's too, so the delivery counts are complete)."""
        end_t = self.t_base + self.stats.sim_seconds
        try:
            pipe = self.r.pipeline(transaction=False)
            for i, a in enumerate(self.names):
                pipe.set(self.settings.key("plant", "cursor", a), dumps({"seq": self.seqs[i], "t": end_t}))
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("could not save plant cursors: %s", exc)
        left = self.prod.flush(30)
        if left or self.stats.failed:
            log.error("%d messages failed and %d were still queued after 30 s", self.stats.failed, left)
        self.r.close()
        self.stats.wall_seconds = time.monotonic() - self.start


def pace_delay(start: float, tick: int, chunk_dt: float, speedup: float, now: float) -> float:
    """Seconds to wait before chunk ``tick`` to run at ``speedup`` x real time (<= 0: no wait)."""
    return start + tick * chunk_dt / speedup - now


def run_plant(
    settings: Settings,
    *,
    assets: int | Sequence[str] = 4,
    duration_s: float = 60.0,
    speedup: float = 1.0,
    seed: int = 0,
    stop_event: threading.Event | None = None,
    decimals: int | None = 4,
    control_poll_s: float = 0.05,
    producer: Producer | None = None,
    before_tick: Callable[[int, float], bool] | None = None,
) -> PlantStats:
    """Stream ``duration_s`` of simulated plant time for each asset, paced at ``speedup`` x real time.

    ``speedup`` <= 0 or inf means as fast as the simulation runs. Chunks of ``settings.chunk_s`` go to
    ``settings.sensor_topic`` keyed by asset; samples are rounded to ``decimals`` (None = full precision; the
    sensors are quantised to 1e-3 or coarser anyway). Stops early on ``stop_event``. All assets run in one
    vectorised :class:`plant_models.LiveFleet` (asset ``i`` has seed ``seed + i``); an asset whose simulation
    diverges loses that chunk (a ``seq`` gap, counted in ``lost_chunks``) and restarts.

    ``before_tick(tick, sim_t)`` runs before each chunk (``sim_t``: plant seconds since the start); when it
    returns True (it wrote control, e.g. a scripted campaign) the control is read before that chunk, so the
    change takes effect exactly there instead of at the next poll.
    """
    names = asset_ids(assets) if isinstance(assets, int) else list(assets)
    if not names:
        raise FedtwinError("no assets to simulate")
    plant = _Plant(settings, names, seed, decimals, producer, stop_event)
    try:
        _run_ticks(plant, duration_s, speedup, stop_event, control_poll_s, before_tick)
    finally:
        plant.close()
    return plant.stats


def _run_ticks(
    plant: _Plant,
    duration_s: float,
    speedup: float,
    stop_event: threading.Event | None,
    control_poll_s: float,
    before_tick: Callable[[int, float], bool] | None = None,
) -> None:

    n_ticks = math.ceil(duration_s / plant.chunk_dt - 1e-9)
    paced = speedup > 0 and math.isfinite(speedup)
    last_poll = -math.inf
    plant.start = time.monotonic()
    for tick in range(n_ticks):
        if stop_event is not None and stop_event.is_set():
            break
        if paced:
            delay = pace_delay(plant.start, tick, plant.chunk_dt, speedup, time.monotonic())
            if delay > 0:
                time.sleep(delay)
        forced = before_tick is not None and before_tick(tick, tick * plant.chunk_dt)
        if forced or time.monotonic() - last_poll >= control_poll_s:
            last_poll = time.monotonic()
            plant.poll_control(tick)
        plant.step(tick)
    if paced:
        plant.stats.behind_s = max(0.0, (time.monotonic() - plant.start) - plant.stats.sim_seconds / speedup)
