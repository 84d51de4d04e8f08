"""Shadow scoring: what serving shadow models beside the champion costs the scorer.
Run ``python -m benchmarks.shadow``; prints ``name=value`` lines.

``main`` runs a list of measurement steps (:data:`STEPS`) on one shared :class:`Bench`: its own Tansu broker
(unless ``--bootstrap``), its own topics, consumer groups and Redis key prefix (deleted at the end), and a
small real model (plant sweep -> features -> FaultClassifier, ``benchmarks.streaming.quick_model``) published
as the champion and, with other thresholds, to two shadow slots, so the scorer path is the production one.

``shadow_throughput_ratio``: a topic is pre-filled once with plant chunks (4 assets, healthy and leaking
stretches), then drained by fresh consumer groups alternately without shadows and with the two shadows
(same run, same topic, same messages); the ratio is the median scorer messages/s with two shadows over the
median without (target >= 0.7). Both configurations produce the champion's decisions; the shadows add their
predict_proba on the same feature matrix and their decision records.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.shadow_campaign import campaign_step
from fedtwin.settings import Settings

ASSETS = ("pump-1", "pump-2", "pump-3", "pump-4")
#: The two shadow slots of the throughput measurement.
SHADOWS = ("shadow-a", "shadow-b")


@dataclass
class Bench:
    """What every step shares: settings (own topics and prefix), the model record and the parsed arguments."""

    settings: Settings
    args: argparse.Namespace
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    champion: int = 0
    shadows: dict[str, int] = field(default_factory=dict)  # slot -> Redis version
    proc: Any = None  # the Tansu process this benchmark started, if any
    prefilled: int = 0  # messages on the sensor topic


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", help="use this broker instead of starting a Tansu")
    ap.add_argument("--messages", type=int, default=20000, help="messages pre-filled for the throughput")
    ap.add_argument("--rounds", type=int, default=2, help="drains per configuration (alternating order)")
    ap.add_argument("--batch-size", type=int, default=1000)
    return ap.parse_args(argv)


def setup(args: argparse.Namespace) -> Bench:
    """Broker, settings with own names, topics, and the champion published."""
    from fedtwin.adapters import stack
    from fedtwin.adapters.kafka_io import ensure_topics

    proc, bootstrap = None, args.bootstrap
    if bootstrap is None:
        proc, bootstrap = stack.start_tansu(Path(tempfile.mkdtemp(prefix="bench-tansu-")) / "tansu.log")
    tag = uuid.uuid4().hex[:8]
    s = Settings(
        kafka_bootstrap_servers=bootstrap,
        redis_prefix=f"fedtwin-bench-shadow-{tag}:",
        sensor_topic=f"sh{tag}.sensors",
        alert_topic=f"sh{tag}.alerts",
        dlq_topic=f"sh{tag}.dlq",
        truth_topic=f"sh{tag}.truth",
        decision_topic=f"sh{tag}.decisions",
        consumer_group=f"sh{tag}-scorer",
        signing_key=uuid.uuid4().hex,  # its own models under its own prefix: a key of its own
        max_shadow_models=len(SHADOWS),
    )
    bench = Bench(settings=s, args=args, proc=proc)
    ensure_topics(s)
    return bench


def publish_models(bench: Bench) -> None:
    """Train the small model once; publish it as the champion and, with other thresholds, to each shadow."""
    from benchmarks.streaming import quick_model
    from fedtwin.adapters.model_store import ModelStore

    t = time.perf_counter()
    bench.arrays, bench.meta = quick_model()
    store = ModelStore.from_settings(bench.settings)
    bench.champion = store.publish(bench.arrays, bench.meta)
    for k, slot in enumerate(SHADOWS):
        thr = np.clip(bench.arrays["thresholds"] * (0.8 + 0.4 * k), 0.01, 0.99)
        version = store.put({**bench.arrays, "thresholds": thr}, {**bench.meta, "name": slot})
        store.promote(version, slot=slot)
        bench.shadows[slot] = version
    print(f"model_train_s={time.perf_counter() - t:.1f}")


def _asset_pools(seconds: float) -> dict[str, dict[str, np.ndarray]]:
    """Per asset: healthy then leaking pump signals (the scorer raises and clears alerts on the cycle), all
    runs simulated in one vectorised batch."""
    from plant_models import Faults, Scenario, simulate_batch

    runs = []
    for i in range(len(ASSETS)):
        runs.append(Scenario(faults=Faults(), seed=i, duration_s=seconds / 2))
        runs.append(Scenario(faults=Faults.from_severity(leak=1.0), seed=100 + i, duration_s=seconds / 2))
    res = [r.signals for r in simulate_batch(runs)]
    if any(sig is None for sig in res):
        raise RuntimeError("the plant simulation of the benchmark stream failed")
    return {
        a: {k: np.concatenate([res[2 * i][k], res[2 * i + 1][k]]) for k in res[2 * i]}  # type: ignore[index]
        for i, a in enumerate(ASSETS)
    }


def prefill(bench: Bench) -> None:
    """Produce ``--messages`` chunks (4 assets interleaved, seq and t0 counting on) to the sensor topic."""
    from fedtwin.adapters.kafka_io import make_producer
    from fedtwin.data.schema import SIGNALS, encode_chunk

    s = bench.settings
    n = round(s.chunk_s * s.sample_rate_hz)
    pools = _asset_pools(24.0)
    pool_chunks = len(pools[ASSETS[0]][SIGNALS[0]]) // n
    t_base = time.time()
    prod = make_producer(s)
    per_asset = bench.args.messages // len(ASSETS)
    for k in range(per_asset):
        j = k % pool_chunks
        for a in ASSETS:
            part = {sig: pools[a][sig][j * n : (j + 1) * n] for sig in SIGNALS}
            value = encode_chunk(a, k, t_base + k * s.chunk_s, s.sample_rate_hz, part, decimals=4)
            _produce(prod, s.sensor_topic, value, a.encode())
    prod.flush(60)
    bench.prefilled = per_asset * len(ASSETS)


def _produce(prod: Any, topic: str, value: bytes, key: bytes) -> None:
    while True:
        try:
            prod.produce(topic, value, key)
            return
        except BufferError:
            prod.poll(0.01)


def drain_rate(bench: Bench, shadows: tuple[str, ...]) -> float:
    """Scorer messages/s draining the whole pre-filled topic with a fresh consumer group and ``shadows``."""
    from fedtwin.streaming.scorer import Scorer

    s = bench.settings.model_copy(update={"shadow_models": list(shadows)})
    group = f"{bench.settings.consumer_group}-{uuid.uuid4().hex[:6]}"
    scorer = Scorer(s, group=group, batch_size=bench.args.batch_size)
    st = scorer.run(max_messages=bench.prefilled, max_seconds=600)
    if st.messages != bench.prefilled or st.shadow_versions != {k: bench.shadows[k] for k in shadows}:
        raise RuntimeError(f"drain incomplete: {st.messages}/{bench.prefilled}, shadows {st.shadow_versions}")
    return st.messages / max(st.active_seconds, 1e-9)


def measure_shadow_throughput(bench: Bench) -> None:
    """Print the scorer's messages/s without and with two shadows and their ratio (median over rounds)."""
    if not bench.prefilled:
        prefill(bench)
    rates: dict[tuple[str, ...], list[float]] = {(): [], SHADOWS: []}
    for r in range(bench.args.rounds):
        order = [(), SHADOWS] if r % 2 == 0 else [SHADOWS, ()]
        for shadows in order:
            rates[shadows].append(drain_rate(bench, shadows))
    base, shadowed = statistics.median(rates[()]), statistics.median(rates[SHADOWS])
    print(f"shadow_bench_messages={bench.prefilled}")
    print(f"scorer_msgs_per_s_no_shadow={base:.1f}")
    print(f"scorer_msgs_per_s_two_shadows={shadowed:.1f}")
    print(f"shadow_throughput_ratio={shadowed / base:.3f}")


def teardown(bench: Bench) -> None:
    """Delete this run's Redis keys and stop the broker it started."""
    import redis

    from fedtwin.adapters import stack

    r = redis.Redis.from_url(bench.settings.redis_url)
    keys = list(r.scan_iter(match=bench.settings.redis_prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()
    if bench.proc is not None:
        stack.stop_pid(bench.proc.pid)


#: Measurement steps in print order; each takes the shared Bench (add new ones here).
STEPS: list[Callable[[Bench], None]] = [campaign_step, publish_models, measure_shadow_throughput]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    bench = setup(args)
    try:
        for step in STEPS:
            step(bench)
    finally:
        teardown(bench)


if __name__ == "__main__":
    main()
