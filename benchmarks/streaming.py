"""Streaming throughput and latency: raw consume+decode vs the full scorer on the same topic, then
produce->alert latency at a fixed input rate. Run ``python -m benchmarks.streaming``; prints ``name=value``.

Starts its own Tansu broker (unless ``--bootstrap``), uses its own topics, consumer groups and Redis key
prefix (deleted at the end), trains a small real model (plant_models sweep -> fedtwin.data.features ->
FaultClassifier) and publishes it through ModelStore, so the scorer path is the production one.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
import uuid
from typing import Any

import numpy as np

from fedtwin.data.schema import SIGNALS, decode_chunk, encode_chunk

ASSETS = ("pump-1", "pump-2", "pump-3", "pump-4")


def quick_model(
    seeds: tuple[int, ...] = (0, 1, 2), duration_s: float = 8.0, severities: tuple[float, ...] = (0.6, 1.0)
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A small real model for tests and benchmarks: single-fault sweep at the default operating point.

    Returns ``(arrays, meta)`` for ``ModelStore.publish``; ~10 s on one core.
    """
    from federated.model import FaultClassifier, to_arrays
    from fedtwin.data.features import FEATURE_NAMES, extract_features, windowize
    from fedtwin.training.recipe import PUMP_BASELINE
    from plant_models import FAULTS, simulate_batch, sweep

    scenarios = sweep(
        fault_sets=[(), ("leak",), ("blocked_inlet",), ("bearing",)],
        severities=severities,
        seeds=seeds,
        duration_s=duration_s,
    )
    X, Y = [], []
    for res in simulate_batch(scenarios):
        if res.signals is None:
            continue
        f = extract_features(windowize(res.signals, 1.0, 1000.0), 1000.0)
        X.append(f)
        Y.append(np.repeat(res.scenario.labels()[None, :], len(f), axis=0))
    model = FaultClassifier(
        hidden=16, epochs=150, learning_rate=0.01, fault_names=FAULTS, feature_names=FEATURE_NAMES
    )
    model.fit(np.concatenate(X), np.concatenate(Y), PUMP_BASELINE)
    arrays, meta = to_arrays(model)
    meta["name"] = "quick-test-model"
    return arrays, meta


def simulate_signals(faults: dict[str, float], seconds: float, seed: int) -> dict[str, np.ndarray]:
    """``seconds`` of one pump's sensor signals with fault severities ``faults`` (0..1 per fault name)."""
    from plant_models import FAULTS, Faults, Scenario, simulate

    f = Faults.from_severity(**{k: float(faults.get(k, 0.0)) for k in FAULTS}, leak_cylinder=0)
    return simulate(Scenario(faults=f, seed=seed, duration_s=seconds))


def encode_stream(
    asset: str, signals: dict[str, np.ndarray], chunk_n: int, fs: float, t0: float, seq0: int = 0
) -> list[bytes]:
    """Cut 1-D signals into consecutive v1 messages of ``chunk_n`` samples (drops a partial last chunk)."""
    n = len(signals[SIGNALS[0]]) // chunk_n
    out = []
    for k in range(n):
        part = {s: signals[s][k * chunk_n : (k + 1) * chunk_n] for s in SIGNALS}
        out.append(encode_chunk(asset, seq0 + k, t0 + k * chunk_n / fs, fs, part, decimals=4))
    return out


def _toggling_pools(assets: tuple[str, ...], window_n: int, blocks: int) -> dict[str, dict[str, np.ndarray]]:
    """Per asset: alternating 3-window blocks of healthy and leaking pump, so alerts keep being raised and
    cleared (all runs simulated in one vectorised batch)."""
    from plant_models import Faults, Scenario, simulate_batch

    secs = 3.0 * blocks * window_n / 1000.0
    runs = []
    for i in range(len(assets)):
        runs.append(Scenario(faults=Faults(), seed=i, duration_s=secs))
        runs.append(Scenario(faults=Faults.from_severity(leak=1.0), seed=100 + i, duration_s=secs))
    res = simulate_batch(runs)
    out = {}
    blk = 3 * window_n
    for i, a in enumerate(assets):
        healthy, leak = res[2 * i].signals, res[2 * i + 1].signals
        assert healthy is not None and leak is not None
        out[a] = {
            s: np.concatenate(
                [(leak if b % 2 else healthy)[s][b * blk : (b + 1) * blk] for b in range(blocks)]
            )
            for s in SIGNALS
        }
    return out


def _restamp(value: bytes, asset: str, seq: int, t0: float) -> bytes:
    """A v1 chunk message with a new ``seq``/``t0`` header (samples unchanged, no re-encoding)."""
    rest = value.partition(b',"fs":')[2]
    return b'{"v":1,"asset":"%s","seq":%d,"t0":%r,"fs":' % (asset.encode(), seq, t0) + rest


def _interleaved_messages(
    pools: dict[str, dict[str, np.ndarray]], per_asset: int, chunk_n: int, fs: float, chunk_s: float
) -> list[tuple[bytes, bytes]]:
    """``per_asset`` (key, value) messages per asset, each pool re-used cyclically, interleaved by seq."""
    pool_chunks = len(pools[ASSETS[0]]["flow"]) // chunk_n
    t_base = time.time()
    msgs: list[tuple[bytes, bytes]] = []
    for a in ASSETS:
        base = encode_stream(a, pools[a], chunk_n, fs, 0.0)
        for k in range(per_asset):
            # Re-use the pool cyclically; seq/t0 keep counting (rewrite header only, samples unchanged).
            msgs.append((a.encode(), _restamp(base[k % pool_chunks], a, k, t_base + k * chunk_s)))
    order = np.argsort(np.tile(np.arange(per_asset), len(ASSETS)), kind="stable")  # interleave like a plant
    return [msgs[i] for i in order]


def _produce_all(prod: Any, topic: str, msgs: list[tuple[bytes, bytes]]) -> float:
    """Produce every message (waiting out a full local queue), flush; messages per second."""
    t = time.perf_counter()
    for key, value in msgs:
        while True:
            try:
                prod.produce(topic, value, key)
                break
            except BufferError:
                prod.poll(0.01)
    prod.flush(60)
    return len(msgs) / (time.perf_counter() - t)


def _raw_consume_rate(consumer: Any, topic: str, n: int, batch_size: int) -> float:
    """Messages per second consumed and decoded from ``topic`` (up to ``n``, at most 120 s)."""
    consumer.subscribe([topic])
    got, t_first = 0, None
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        batch = consumer.consume(batch_size, 0.5)
        if batch and t_first is None:
            t_first = time.perf_counter()
        for m in batch:
            if m.error() is None:
                decode_chunk(m.value())
                got += 1
    return got / (time.perf_counter() - (t_first or time.perf_counter()))


def _read_alert_latencies(consumer: Any, since: float, lat: list[float], stop: threading.Event) -> None:
    """Append to ``lat`` the input-to-now latency (s) of every alert on the subscribed topic whose input
    arrived after ``since``, until ``stop`` is set."""
    while not stop.is_set():
        for m in consumer.consume(100, 0.05):
            if m.error() is None:
                a = json.loads(m.value() or b"{}")
                if a.get("input_ts") and a["input_ts"] > since:
                    lat.append(time.time() - a["input_ts"])
    consumer.close()


def _paced_produce(
    prod: Any,
    topic: str,
    src: dict[str, list[bytes]],
    seqs: dict[str, int],
    rate: float,
    n: int,
    chunk_s: float,
) -> None:
    """Produce ``n`` messages round-robin over the assets at ``rate`` per second, seq/t0 counting on."""
    t0 = time.perf_counter()
    base_t = time.time()
    for k in range(n):
        a = ASSETS[k % len(ASSETS)]
        seq = seqs[a]
        seqs[a] += 1
        value = _restamp(src[a][seq % len(src[a])], a, seq, base_t + seq * chunk_s)
        delay = t0 + k / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        prod.produce(topic, value, a.encode())
        prod.poll(0)
    prod.flush(30)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", help="use this broker instead of starting a Tansu")
    ap.add_argument("--messages", type=int, default=20000, help="messages for the throughput part")
    ap.add_argument("--rate", type=float, default=400.0, help="input msgs/s for the latency part")
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    ap.add_argument("--batch-size", type=int, default=1000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import redis

    from fedtwin.adapters import stack
    from fedtwin.adapters.kafka_io import ensure_topics, make_consumer, make_producer
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.settings import Settings
    from fedtwin.streaming.scorer import Scorer
    from monitoring.metrics import ScorerMetrics

    proc = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        import tempfile
        from pathlib import Path

        proc, bootstrap = stack.start_tansu(Path(tempfile.mkdtemp(prefix="bench-tansu-")) / "tansu.log")
    tag = uuid.uuid4().hex[:8]
    s = Settings(
        kafka_bootstrap_servers=bootstrap,
        redis_prefix=f"fedtwin-bench-{tag}:",
        sensor_topic=f"b{tag}.sensors",
        alert_topic=f"b{tag}.alerts",
        dlq_topic=f"b{tag}.dlq",
        truth_topic=f"b{tag}.truth",
        consumer_group=f"b{tag}-scorer",
        signing_key=uuid.uuid4().hex,  # its own model under its own prefix: a key of its own
    )
    r = redis.Redis.from_url(s.redis_url)
    try:
        ensure_topics(s)
        t = time.perf_counter()
        arrays, meta = quick_model()
        version = ModelStore.from_settings(s).publish(arrays, meta)
        print(f"model_train_s={time.perf_counter() - t:.1f}")
        print(f"model_version={version}")

        # ---------------------------------------------------------- data: 4 assets, toggling leak
        fs = s.sample_rate_hz
        chunk_n = round(s.chunk_s * fs)
        window_n = round(s.window_s * fs)
        pools = _toggling_pools(ASSETS, window_n, 8)
        per_asset = args.messages // len(ASSETS)
        msgs = _interleaved_messages(pools, per_asset, chunk_n, fs, s.chunk_s)
        decode_chunk(msgs[0][1])
        msg_bytes = float(np.mean([len(v) for _, v in msgs]))

        prod = make_producer(s)
        produce_rate = _produce_all(prod, s.sensor_topic, msgs)

        # ---------------------------------------------------------- raw consume + decode
        c = make_consumer(s, group=f"b{tag}-raw")
        raw_rate = _raw_consume_rate(c, s.sensor_topic, len(msgs), args.batch_size)
        c.close()

        # ---------------------------------------------------------- scorer, same topic
        metrics = ScorerMetrics()
        scorer = Scorer(s, metrics=metrics, batch_size=args.batch_size)
        st = scorer.run(max_messages=len(msgs), max_seconds=300)
        scorer_rate = st.messages / max(st.active_seconds, 1e-9)

        # ---------------------------------------------------------- latency at a fixed rate
        lat: list[float] = []
        stop = threading.Event()

        t_lat_start = time.time()
        ac = make_consumer(s, group=f"b{tag}-alerts", **{"fetch.wait.max.ms": 5})
        ac.subscribe([s.alert_topic])
        reader = threading.Thread(
            target=_read_alert_latencies, args=(ac, t_lat_start, lat, stop), daemon=True
        )
        reader.start()
        scorer2 = Scorer(s, batch_size=args.batch_size)
        runner = threading.Thread(
            target=lambda: scorer2.run(stop_event=stop, max_seconds=args.latency_seconds + 30)
        )
        runner.start()
        time.sleep(4.0)  # group joins (Tansu holds JoinGroup for session.timeout/2)
        n_lat = int(args.rate * args.latency_seconds)
        src = {a: encode_stream(a, pools[a], chunk_n, fs, 0.0) for a in ASSETS}
        _paced_produce(
            prod, s.sensor_topic, src, dict.fromkeys(ASSETS, per_asset), args.rate, n_lat, s.chunk_s
        )
        time.sleep(2.0)
        stop.set()
        runner.join(60)
        reader.join(10)
        p50, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 99)) if lat else (float("nan"),) * 2

        print(f"message_bytes={msg_bytes:.0f}")
        print(f"samples_per_message={chunk_n * len(SIGNALS)}")
        print(f"batch_size={args.batch_size}")
        print(f"scorer_mean_batch_messages={st.messages / max(st.batches, 1):.1f}")
        print(f"produce_msgs_per_s={produce_rate:.0f}")
        print(f"scorer_windows={st.windows}")
        print(f"scorer_alerts={st.alerts}")
        print(f"scorer_samples_per_s={scorer_rate * chunk_n * len(SIGNALS):.0f}")
        print(f"raw_samples_per_s={raw_rate * chunk_n * len(SIGNALS):.0f}")
        print(f"latency_input_msgs_per_s={args.rate:.0f}")
        print(f"latency_alerts={len(lat)}")
        print(f"raw_msgs_per_s={raw_rate:.1f}")
        print(f"scorer_msgs_per_s={scorer_rate:.1f}")
        print(f"scorer_to_raw_ratio={scorer_rate / raw_rate:.3f}")
        print(f"p50_latency_ms={p50:.1f}")
        print(f"p99_latency_ms={p99:.1f}")
    finally:
        keys = list(r.scan_iter(match=s.redis_prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
        if proc is not None:
            stack.stop_pid(proc.pid)


if __name__ == "__main__":
    main()
