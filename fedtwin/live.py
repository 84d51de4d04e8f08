"""Live plant: N simulated pumps streaming sensor chunks to Kafka, with runtime fault injection through Redis.

Control (Redis, under the key prefix ``P``):

- ``P control:<asset>``: hash of fault severities ``leak``/``blocked_inlet``/``bearing`` in [0, 1], optional
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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fedtwin.errors import FedtwinError
from fedtwin.schema import SIGNALS, dumps, encode_chunk, loads, truth_record

if TYPE_CHECKING:
    from confluent_kafka import Producer

    from fedtwin.settings import Settings

log = logging.getLogger(__name__)

FAULTS: tuple[str, ...] = ("leak", "blocked_inlet", "bearing")
_OP_FIELDS = ("speed_rpm", "load_area_factor")


def asset_ids(n: int) -> list[str]:
    """Default asset names ``pump-1`` .. ``pump-n``."""
    return [f"pump-{i + 1}" for i in range(n)]


def _redis(settings: Settings) -> Any:
    from fedtwin.redis_io import redis_client

    return redis_client(settings, socket_timeout=5)


def _control_key(settings: Settings, asset: str) -> str:
    return settings.key("control", asset)


def _write_control(
    settings: Settings, asset: str, fields: Mapping[str, float], client: Any = None
) -> dict[str, Any]:
    import redis

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
    """Remove every fault from ``asset`` (the operating point is kept)."""
    return _write_control(settings, asset, dict.fromkeys(FAULTS, 0.0), client)


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
    from plant_models import OperatingPoint

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

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for Prefect results and logs)."""
        return asdict(self)


class _Fleet:
    """N pumps, one ``plant_models.LiveSimulator`` each (4 assets at 1 kHz: ~60 ms per 0.1 s chunk, so a
    single process keeps real time with headroom)."""

    def __init__(self, n: int, seed: int, ops: list[Any], fs: float) -> None:
        from plant_models import Faults, LiveSimulator, SensorConfig

        self.sensors = SensorConfig(fs=fs)
        self._sims = [LiveSimulator(ops[i], Faults(), seed + i, sensors=self.sensors) for i in range(n)]

    def set(self, i: int, faults: Any, op: Any) -> None:
        self._sims[i].set_faults(faults)
        self._sims[i].set_operating_point(op)

    def step(self, n_samples: int) -> list[dict[str, np.ndarray]]:
        try:
            return [s.step(n_samples / self.sensors.fs) for s in self._sims]
        except RuntimeError as exc:  # the solver diverged
            raise FedtwinError(f"plant simulation failed: {exc}") from exc


def _parse_control(raw: Mapping[bytes, bytes]) -> dict[str, float]:
    out = {}
    for k, v in raw.items():
        name = k.decode()
        if name in FAULTS + _OP_FIELDS + ("rev",):
            try:
                out[name] = float(v)
            except ValueError:
                log.warning("ignoring bad control value %s=%r", name, v)
    return out


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
) -> PlantStats:
    """Stream ``duration_s`` of simulated plant time for each asset, paced at ``speedup`` x real time.

    ``speedup`` <= 0 or inf means as fast as the simulation runs. Chunks of ``settings.chunk_s`` go to
    ``settings.sensor_topic`` keyed by asset; samples are rounded to ``decimals`` (None = full precision; the
    sensors are quantised to 1e-3 or coarser anyway). Stops early on ``stop_event``.
    """
    import redis

    from fedtwin.kafka_io import ensure_topics, make_producer
    from plant_models import Faults, OperatingPoint

    names = asset_ids(assets) if isinstance(assets, int) else list(assets)
    if not names:
        raise FedtwinError("no assets to simulate")
    fs = settings.sample_rate_hz
    n_chunk = round(settings.chunk_s * fs)
    chunk_dt = n_chunk / fs
    n_ticks = math.ceil(duration_s / chunk_dt - 1e-9)
    stats = PlantStats(assets=names)
    r = _redis(settings)
    ensure_topics(settings)
    prod = producer or make_producer(settings)
    fleet = _Fleet(len(names), seed, [OperatingPoint() for _ in names], fs)
    truth_stream = settings.key("truth")

    def on_delivery(err: Any, msg: Any) -> None:
        # Runs inside poll()/flush() on this thread: a message that expires or is refused is counted, not lost
        # silently.
        if err is None:
            stats.delivered += 1
            return
        stats.failed += 1
        if stats.failed <= 5:
            log.error("message to %s (key %s) not delivered: %s", msg.topic(), msg.key(), err)

    # Continue the sequence of an earlier run (one stream per asset); time resumes at the later of now and
    # the cursor, so it never goes back.
    cursors = r.mget([settings.key("plant", "cursor", a) for a in names])
    now = time.time()
    seqs = [0] * len(names)
    t_base = now
    for i, raw in enumerate(cursors):
        if raw is not None:
            c = loads(raw)
            seqs[i] = int(c["seq"])
            t_base = max(t_base, float(c["t"]))
    applied_rev: list[float | None] = [None] * len(names)
    state: list[dict[str, float]] = [{} for _ in names]

    def poll_control(tick: int) -> None:
        pipe = r.pipeline(transaction=False)
        for a in names:
            pipe.hgetall(_control_key(settings, a))
        for i, a in enumerate(names):
            cur = {"seq": seqs[i], "t": t_base + tick * chunk_dt}
            pipe.set(settings.key("plant", "cursor", a), dumps(cur))
        results = pipe.execute()[: len(names)]
        for i, raw in enumerate(results):
            ctl = _parse_control(raw)
            rev = ctl.get("rev", 0.0)
            if rev == applied_rev[i]:
                continue
            applied_rev[i] = rev
            sev = {f: min(1.0, max(0.0, ctl.get(f, 0.0))) for f in FAULTS}
            op_fields = {k: ctl[k] for k in _OP_FIELDS if k in ctl}
            try:
                faults = Faults.from_severity(
                    leak=sev["leak"], blocked_inlet=sev["blocked_inlet"], bearing=sev["bearing"]
                )
                op = OperatingPoint(**op_fields)
            except ValueError as exc:
                log.error("ignoring invalid control of %s: %s", names[i], exc)
                continue
            fleet.set(i, faults, op)
            state[i] = {**sev, **op_fields}
            t_eff = t_base + tick * chunk_dt
            op_dict = {"speed_rpm": op.speed_rpm, "load_area_factor": op.load_area_factor}
            rec = truth_record(names[i], sev, seqs[i], t_eff, operating_point=op_dict, rev=rev)
            prod.produce(settings.truth_topic, rec, names[i].encode(), on_delivery=on_delivery)
            r.xadd(truth_stream, {"truth": rec}, maxlen=100000, approximate=True)
            stats.truth_events += 1
            log.info("%s: faults %s from seq %d", names[i], state[i], seqs[i])

    start = time.monotonic()
    last_poll = -math.inf
    paced = speedup > 0 and math.isfinite(speedup)
    try:
        for tick in range(n_ticks):
            if stop_event is not None and stop_event.is_set():
                break
            if paced:
                delay = start + tick * chunk_dt / speedup - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if time.monotonic() - last_poll >= control_poll_s:
                last_poll = time.monotonic()
                try:
                    poll_control(tick)
                except (redis.RedisError, OSError) as exc:
                    log.warning("plant control poll failed (%s); keeping current faults", exc)
            chunks = fleet.step(n_chunk)
            t0 = t_base + tick * chunk_dt
            for i, a in enumerate(names):
                value = encode_chunk(
                    a, seqs[i], t0, fs, {s: chunks[i][s] for s in SIGNALS}, decimals=decimals
                )
                while True:
                    try:
                        prod.produce(settings.sensor_topic, value, a.encode(), on_delivery=on_delivery)
                        break
                    except BufferError:  # local queue full: let deliveries drain, then retry
                        prod.poll(0.05)
                seqs[i] += 1
                stats.bytes += len(value)
            stats.chunks += len(names)
            stats.samples += len(names) * n_chunk
            stats.sim_seconds = (tick + 1) * chunk_dt
            prod.poll(0)
        if paced:
            stats.behind_s = max(0.0, (time.monotonic() - start) - stats.sim_seconds / speedup)
    finally:
        end_t = t_base + stats.sim_seconds
        try:
            pipe = r.pipeline(transaction=False)
            for i, a in enumerate(names):
                pipe.set(settings.key("plant", "cursor", a), dumps({"seq": seqs[i], "t": end_t}))
            pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("could not save plant cursors: %s", exc)
        # A caller's producer is flushed too: the delivery counts cover every message this run produced.
        left = prod.flush(30)
        if left or stats.failed:
            log.error("%d messages failed and %d were still queued after 30 s", stats.failed, left)
        r.close()
    stats.wall_seconds = time.monotonic() - start
    return stats
