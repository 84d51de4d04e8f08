"""Scale-out figures: scorer processes sharing one topic in one consumer group, then site workers. Run
``python -m benchmarks.scale_out``; prints ``name=value`` lines ending with ``scorers=1 msgs_per_s=<f>``,
``scorers=2 msgs_per_s=<f>``, ``scaleout_2_over_1=<f>`` and ``site_workers=3 training_s=<f>
in_process_training_s=<f>`` (``--only NAME ...`` runs a part: ``scorer_scale_out``, ``site_workers``,
``drift_and_features``, ``training_per_site``).

Scorers: one topic is pre-filled once (``--messages`` chunks of 8 pumps, 2 per partition, alternating healthy
and leaking so alerts are raised and cleared); then one ``fedtwin score`` process drains it in a fresh
consumer group, then two processes drain it in another fresh group; ``--repeats`` times, alternating. The rate
is measured from outside, the same way for both: the group's committed offsets are polled every 20 ms, and
``msgs_per_s`` is the messages committed from the moment every scorer of the group held partitions (the first
``assigned`` line of each scorer's ``-v`` log) to the last commit: the steady state, with process start-up and
group join excluded. The rate from the first commit (which counts a member that joined late as if it had
drained all along) is printed too, with the join skew and the share of the messages the steady figure covers.

Also prints the sizes the README's sizing table uses: message bytes, Redis snapshot bytes per asset and per
feature row, and the seconds of one drift check (the monitor's Evidently comparison) on 240 windows (the
monitor's default) and on 5,000, and one site's share of a training run (simulating its data, its local
updates). Starts its own Tansu broker (unless ``--bootstrap``) and uses its own topics, groups and Redis key
prefix (deleted at the end) on the configured Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

#: One measurement: parsed arguments -> ``name=value`` lines. main() prints them in list order, so another
#: measurement (e.g. site workers) is added by appending its function to MEASUREMENTS.
Measurement = Callable[[argparse.Namespace], list[str]]

PUMPS = tuple(f"pump-{i}" for i in range(8))
PARTITIONS = 4


@contextmanager
def _scorer_env(args: argparse.Namespace) -> Iterator[Any]:
    """Settings of an own broker (or ``--bootstrap``), topics and Redis prefix, with a small real model
    published; everything under the prefix is deleted afterwards."""
    import redis

    from benchmarks.streaming import quick_model
    from fedtwin.adapters import stack
    from fedtwin.adapters.kafka_io import ensure_topics
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.settings import Settings

    proc, bootstrap = None, args.bootstrap
    if bootstrap is None:
        proc, bootstrap = stack.start_tansu(Path(tempfile.mkdtemp(prefix="bench-tansu-")) / "tansu.log")
    tag = uuid.uuid4().hex[:8]
    s = Settings(
        kafka_bootstrap_servers=bootstrap,
        redis_prefix=f"fedtwin-scale-{tag}:",
        sensor_topic=f"x{tag}.sensors",
        alert_topic=f"x{tag}.alerts",
        dlq_topic=f"x{tag}.dlq",
        truth_topic=f"x{tag}.truth",
        consumer_group=f"x{tag}-scorer",
        topic_partitions=PARTITIONS,
        signing_key=uuid.uuid4().hex,
    )
    r = redis.Redis.from_url(s.redis_url)
    try:
        ensure_topics(s)
        ModelStore.from_settings(s).publish(*quick_model())
        yield s
    finally:
        keys = list(r.scan_iter(match=s.redis_prefix + "*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()
        if proc is not None:
            stack.stop_pid(proc.pid)


def _messages(s: Any, n: int, pumps: int) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of ``n`` chunks of ``pumps`` pumps, as a plant sends them; pump i on partition
    i % 4 and with the simulated signals of PUMPS[i % 8]."""
    from benchmarks.streaming import _toggling_pools, encode_stream

    fs, chunk_n = s.sample_rate_hz, round(s.chunk_s * s.sample_rate_hz)
    pools = _toggling_pools(PUMPS, round(s.window_s * fs), 4)
    base = [encode_stream(p, pools[p], chunk_n, fs, 0.0) for p in PUMPS]
    out = []
    # Each pump's stream ends half-way through a window, so the state snapshots left in Redis hold the
    # average partial window (a snapshot taken on a window boundary holds no samples).
    per_window = round(s.window_s / s.chunk_s)
    per_pump = max(1, n // pumps // per_window) * per_window - per_window // 2
    for k in range(per_pump):
        for i in range(pumps):
            pool, name = base[i % len(PUMPS)], f"pump-{i}".encode()
            # The pool is re-used cyclically; seq and t0 keep counting (header rewritten, samples unchanged).
            rest = pool[k % len(pool)].partition(b',"fs":')[2]
            head = b'{"v":1,"asset":"%s","seq":%d,"t0":%r,"fs":' % (name, k, k * s.chunk_s)
            out.append((i % PARTITIONS, name, head + rest))
    return out


def _fill(s: Any, msgs: list[tuple[int, bytes, bytes]]) -> None:
    from fedtwin.adapters.kafka_io import make_producer

    prod = make_producer(s)
    for partition, key, value in msgs:
        while True:
            try:
                prod.produce(s.sensor_topic, value, key, partition=partition)
                break
            except BufferError:
                prod.poll(0.01)
    if prod.flush(120) != 0:
        raise RuntimeError("could not pre-fill the sensor topic")


def _env(s: Any, group: str) -> dict[str, str]:
    names = ("kafka_bootstrap_servers", "sensor_topic", "alert_topic", "dlq_topic", "truth_topic")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDTWIN_")}
    env.update({f"FEDTWIN_{n.upper()}": str(getattr(s, n)) for n in names})
    env.update(
        FEDTWIN_REDIS_URL=s.redis_url,
        FEDTWIN_REDIS_PREFIX=s.redis_prefix,
        FEDTWIN_CONSUMER_GROUP=group,
        FEDTWIN_SIGNING_KEY=s.signing_key.get_secret_value(),
    )
    return env


def _committed_total(consumer: Any, s: Any) -> int:
    from confluent_kafka import TopicPartition

    parts = [TopicPartition(s.sensor_topic, p) for p in range(PARTITIONS)]
    return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=5))


@dataclass(frozen=True)
class Drain:
    """One drain of the pre-filled topic by ``n`` scorers: the steady rate (from the moment every scorer holds
    partitions to the last commit), the rate from the first commit (includes a late joiner's join), and how
    long after the first commit the last scorer joined."""

    steady_msgs_per_s: float
    first_commit_msgs_per_s: float
    join_skew_s: float
    steady_share: float  # share of the messages committed after every scorer held partitions


def _assigned_at(log: str) -> float | None:
    """Epoch seconds of the scorer's first ``assigned`` log line (its ``-v`` log), or None."""
    for line in log.splitlines():
        if " fedtwin.streaming.scorer: assigned " in line:
            stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    return None


def _rate_between(samples: list[tuple[float, int]], t_from: float, total: int) -> tuple[float, int]:
    """Messages/s from ``t_from`` (the committed count then, interpolated from the samples) to the sample
    where ``total`` was reached; and that starting count."""
    done_t = next(t for t, c in samples if c >= total)
    before = [(t, c) for t, c in samples if t <= t_from]
    after = [(t, c) for t, c in samples if t >= t_from]
    if not before:
        start_c = 0
    elif not after or after[0][0] == before[-1][0]:
        start_c = before[-1][1]
    else:
        (t0, c0), (t1, c1) = before[-1], after[0]
        start_c = round(c0 + (c1 - c0) * (t_from - t0) / (t1 - t0))
    if done_t <= t_from:
        return float("nan"), start_c
    return (total - start_c) / (done_t - t_from), start_c


def _drain(s: Any, n_scorers: int, total: int, timeout_s: float) -> Drain:
    """``n_scorers`` scorer processes draining the topic in a fresh group, watched from outside: the group's
    committed offsets sampled every 20 ms, and each scorer's ``-v`` log for when it first held partitions."""
    from fedtwin.adapters.kafka_io import make_consumer

    group = f"{s.consumer_group}-{n_scorers}-{uuid.uuid4().hex[:4]}"
    argv = [
        sys.executable,
        "-m",
        "fedtwin.app.cli_stream",
        "score",
        "--idle-exit",
        "3",
        "--seconds",
        str(timeout_s),
        "-v",
    ]
    logs = [tempfile.TemporaryFile() for _ in range(n_scorers)]  # noqa: SIM115 - closed below
    procs = [
        subprocess.Popen(argv, env=_env(s, group), stdout=subprocess.DEVNULL, stderr=log) for log in logs
    ]
    watcher = make_consumer(s, group=group)  # reads the group's commits; never subscribes
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        samples.append((time.time(), _committed_total(watcher, s)))
        if samples[-1][1] >= total:
            break
        time.sleep(0.02)
    watcher.close()
    for p in procs:
        p.wait(60)
    joined = []
    for log in logs:
        log.seek(0)
        joined.append(_assigned_at(log.read().decode(errors="replace")))
        log.close()
    started = [(t, c) for t, c in samples if c > 0]
    if samples[-1][1] < total or not started or None in joined:
        raise RuntimeError(f"{n_scorers} scorer(s) did not drain {total} messages within {timeout_s:.0f} s")
    t_first = started[0][0]
    first_rate, _ = _rate_between(samples, t_first, total)
    t_all = max(t for t in joined if t is not None)
    steady, at_all = _rate_between(samples, max(t_all, t_first), total)
    return Drain(steady, first_rate, max(0.0, t_all - t_first), (total - at_all) / total)


def _state_sizes(s: Any) -> list[str]:
    """Bytes of the scorer's Redis state: snapshot per asset (partial window, sequence, de-bouncing)."""
    import redis

    r = redis.Redis.from_url(s.redis_url)
    with r:
        keys = list(r.scan_iter(match=s.key("scorer", "state") + "*", count=1000))
        raw = [r.get(k) or b"" for k in keys]
        memory = [int(r.memory_usage(k) or 0) for k in keys]
    assets = sum(len(json.loads(v)["engine"].get("assets", {})) for v in raw)
    return [
        f"snapshot_json_bytes_per_asset={sum(map(len, raw)) / max(assets, 1):.0f}",
        f"snapshot_redis_bytes_per_asset={sum(memory) / max(assets, 1):.0f}",
    ]


def scorer_scale_out(args: argparse.Namespace) -> list[str]:
    """One scorer process, then two, draining the same pre-filled topic in fresh consumer groups."""
    with _scorer_env(args) as s:
        msgs = _messages(s, args.messages, args.pumps)
        _fill(s, msgs)
        # Alternating 1, 2, 1, 2, ...: slow drifts of a shared machine hit both setups alike; medians are
        # reported, and every repeat's ratio as well.
        runs: dict[int, list[Drain]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for n in (1, 2):
                runs[n].append(_drain(s, n, len(msgs), args.timeout))

        def med(n: int, field: str) -> float:
            return float(np.median([getattr(r, field) for r in runs[n]]))

        ratios = [b.steady_msgs_per_s / a.steady_msgs_per_s for a, b in zip(runs[1], runs[2], strict=True)]
        return [
            f"messages={len(msgs)}",
            f"pumps={args.pumps}",
            f"partitions={PARTITIONS}",
            f"msg_bytes={float(np.mean([len(v) for _, _, v in msgs])):.0f}",
            f"samples_per_msg={round(s.chunk_s * s.sample_rate_hz)}",
            *_state_sizes(s),
            f"cpu_count={os.cpu_count()}",
            f"repeats={args.repeats}",
            # From the first commit: a scorer that joined late counts as if it had been draining all along.
            *(
                f"scorers={n} first_commit_msgs_per_s={med(n, 'first_commit_msgs_per_s'):.1f} "
                f"join_skew_s_max={max(r.join_skew_s for r in runs[n]):.2f} "
                f"steady_share_min={min(r.steady_share for r in runs[n]):.2f}"
                for n in (1, 2)
            ),
            f"scaleout_2_over_1_from_first_commit="
            f"{med(2, 'first_commit_msgs_per_s') / med(1, 'first_commit_msgs_per_s'):.2f}",
            "scaleout_2_over_1_each_repeat=" + ",".join(f"{r:.2f}" for r in ratios),
            # Steady state: from the moment every scorer of the group held partitions (medians).
            f"scorers=1 msgs_per_s={med(1, 'steady_msgs_per_s'):.1f}",
            f"scorers=2 msgs_per_s={med(2, 'steady_msgs_per_s'):.1f}",
            f"scaleout_2_over_1={med(2, 'steady_msgs_per_s') / med(1, 'steady_msgs_per_s'):.2f}",
        ]


def _feature_rows(n: int) -> np.ndarray:
    """``n`` real feature rows: windows of PUMPS' simulated pools, tiled with 1 % jitter (seed 0)."""
    from benchmarks.streaming import _toggling_pools
    from fedtwin.data.features import extract_features, windowize

    pools = _toggling_pools(PUMPS, 1000, 4)
    base = np.concatenate([extract_features(windowize(pools[p], 1.0, 1000.0), 1000.0) for p in PUMPS])
    rng = np.random.default_rng(0)
    rows = base[np.arange(n) % len(base)]
    return np.asarray(rows * (1.0 + 0.01 * rng.standard_normal(rows.shape)))


def drift_and_features(args: argparse.Namespace) -> list[str]:
    """Cost of one drift check (the monitor's Evidently comparison) and Redis bytes per feature row."""
    import pandas as pd
    import redis

    from fedtwin.data.features import FEATURE_NAMES
    from fedtwin.data.schema import dumps
    from fedtwin.settings import Settings
    from monitoring.drift import EvidentlyDriftDetector

    out = []
    rows = _feature_rows(2 * max(args.drift_rows))
    frame = pd.DataFrame(rows, columns=list(FEATURE_NAMES))
    EvidentlyDriftDetector().fit(frame[:100]).check(frame[100:200])  # imports and first-call costs
    for n in args.drift_rows:
        t = time.perf_counter()
        EvidentlyDriftDetector().fit(frame[:n]).check(frame[n : 2 * n])
        out.append(f"drift_check_rows={n} seconds={time.perf_counter() - t:.2f}")
    s = Settings(redis_prefix=f"fedtwin-scale-{uuid.uuid4().hex[:8]}:")
    r = redis.Redis.from_url(s.redis_url)
    with r:
        key = s.key("features")
        for k, x in enumerate(rows[:1000]):  # what the scorer XADDs per window with --features-stream
            fields = {"asset": PUMPS[k % 8], "window_start": float(k), "model_version": 1, "x": dumps(x)}
            r.xadd(key, fields)
        out.append(f"feature_row_redis_bytes={int(r.memory_usage(key) or 0) / 1000:.0f}")
        r.delete(key)
    return out


def training_per_site(args: argparse.Namespace) -> list[str]:
    """Seconds of one site's share of a training run (the ``demo`` profile, in process, one core): simulating
    its data and its local updates over the production number of rounds, fedadam."""
    from fedtwin.data.datasets import build_clients, get_profile
    from fedtwin.settings import Settings
    from fedtwin.training.recipe import train_strategy

    rounds = Settings(signing_key="unused").federated_rounds
    t = time.perf_counter()
    clients = build_clients(get_profile(args.profile))
    sim_s = time.perf_counter() - t
    t = time.perf_counter()
    train_strategy("fedadam", clients, rounds=rounds, seed=0)
    train_s = time.perf_counter() - t
    n = len(clients)
    windows = sum(len(c.X) for c in clients.values())
    return [
        f"training_profile={args.profile} sites={n} rounds={rounds} windows_per_site={windows / n:.0f}",
        f"site_simulate_s={sim_s / n:.2f} site_training_s={train_s / n:.2f}",
    ]


def site_workers(args: argparse.Namespace) -> list[str]:
    """The same training run with three site workers (Prefect deployments on their own pools), then in
    process: :func:`benchmarks.scale_out_sites.measure_site_workers`."""
    from benchmarks.scale_out_sites import measure_site_workers

    return measure_site_workers(args)


MEASUREMENTS: list[Measurement] = [drift_and_features, training_per_site, scorer_scale_out, site_workers]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", help="use this broker instead of starting a Tansu")
    ap.add_argument(
        "--messages", type=int, default=120000, help="chunks pre-filled for the scorer part (4-8 s per drain)"
    )
    ap.add_argument("--profile", default="demo", help="training profile of the per-site training figure")
    ap.add_argument("--pumps", type=int, default=8, help="pumps (keys) the pre-filled chunks belong to")
    ap.add_argument("--timeout", type=float, default=600.0, help="longest drain of one scorer setup (s)")
    ap.add_argument(
        "--repeats", type=int, default=3, help="drains of each setup, alternating 1 and 2 scorers"
    )
    ap.add_argument(
        "--drift-rows", type=int, nargs="+", default=[240, 5000], help="window counts of the drift checks"
    )
    ap.add_argument("--sites-profile", default="demo", help="site_workers: training profile of both runs")
    ap.add_argument("--sites-rounds", type=int, default=3, help="site_workers: federated rounds of both runs")
    ap.add_argument("--sites-strategy", default="fedavg", help="site_workers: aggregation rule of both runs")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these measurements (function names)")
    args = ap.parse_args(argv)
    for measure in MEASUREMENTS:
        if args.only and measure.__name__ not in args.only:
            continue
        for line in measure(args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
