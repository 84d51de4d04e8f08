"""Plant simulator speed: real-time factor per core, wall time of a 1000-run sweep, size of a live fleet.

Run from the repository root: ``python -m benchmarks.plant [--runs 1000] [--duration 2.0] [--workers 1]``.
Prints what it measured and ends with ``plant_realtime_factor=<float>`` (simulated seconds of 4 sensors at
1 kHz per CPU second of one core, warm-up excluded from the simulated seconds), ``sweep_1000_runs_s=<float>``
(wall seconds for the sweep) and ``live_fleet_pumps_realtime=<int>`` (the largest :class:`LiveFleet` one core
advances at >= 1x real time in 100 ms chunks, sensor noise included: fleets of doubling size, then bisection;
per size the median CPU time of several chunks), followed by ``live_fleet_realtime_factor=<float>`` at that
size. BLAS/OpenMP threads are pinned to 1 (numpy's element-wise kernels are single-threaded anyway).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported, or it is too late

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from plant_models import (  # noqa: E402
    ALL_FAULT_SETS,
    SIGNALS,
    LiveFleet,
    OperatingPoint,
    SensorConfig,
    simulate_batch,
    sweep,
)
from plant_models.runner import DEFAULT_BATCH, MAX_STEP_S  # noqa: E402

REFERENCE_1000_RUNS_S = 3600.0  # Simscape reference: about an hour for 1000 runs


def design(n_runs: int, duration_s: float) -> list:
    """A realistic DoE: 8 fault classes x 10 severities x 3 operating points x seeds, cut to n_runs."""
    ops = [
        OperatingPoint(),
        OperatingPoint(speed_rpm=900.0, load_area_factor=1.1),
        OperatingPoint(speed_rpm=1000.0, load_area_factor=0.9),
    ]
    n_seeds = max(1, -(-n_runs // (71 * len(ops))))
    scs = sweep(ALL_FAULT_SETS, np.linspace(0.1, 1.0, 10), ops, range(n_seeds), duration_s)
    return scs[:n_runs]


def fleet_chunk_cpu_s(n_assets: int, chunks: int = 5, chunk_s: float = 0.1) -> tuple[float, float]:
    """Median and worst CPU seconds per ``chunk_s`` chunk of a fleet of ``n_assets`` (noisy sensors).

    The fleet mixes the DoE's fault classes (severity 0.5) and operating points, as a real fleet would;
    its first chunk is not timed (first-touch allocations).
    """
    scs = design(71 * 3, 0.1)
    faults = [scs[i % len(scs)].faults for i in range(n_assets)]
    ops = [scs[i % len(scs)].op for i in range(n_assets)]
    fleet = LiveFleet(range(n_assets), ops, faults)
    fleet.step(chunk_s)
    times = []
    for _ in range(chunks):
        cpu0 = time.process_time()
        out = fleet.step(chunk_s)
        times.append(time.process_time() - cpu0)
        if out.failures:
            raise RuntimeError(f"fleet of {n_assets}: {len(out.failures)} assets failed: {out.failures}")
    return statistics.median(times), max(times)


def live_fleet_size(chunk_s: float = 0.1, start: int = 250, limit: int = 1 << 17) -> tuple[int, float]:
    """Largest fleet whose median chunk CPU time is <= ``chunk_s``, and its real-time factor.

    Sizes double from ``start`` until one falls behind, then bisect to 2 % of the size.
    """

    def factor(n: int) -> float:
        med, worst = fleet_chunk_cpu_s(n, chunk_s=chunk_s)
        rt = chunk_s / med
        print(
            f"live fleet n={n}: chunk cpu median={med * 1e3:.1f}ms max={worst * 1e3:.1f}ms realtime={rt:.2f}x"
        )
        return rt

    ok, ok_rt = 0, math.inf
    n = start
    while n <= limit:
        rt = factor(n)
        if rt < 1.0:
            break
        ok, ok_rt = n, rt
        n *= 2
    else:
        return ok, ok_rt
    bad = n
    while bad - ok > max(1, ok // 50):
        mid = (ok + bad) // 2
        rt = factor(mid)
        if rt >= 1.0:
            ok, ok_rt = mid, rt
        else:
            bad = mid
    return ok, ok_rt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=2.0, help="returned seconds per run")
    ap.add_argument("--workers", type=int, default=1, help="processes for the sweep (realtime is 1 core)")
    ap.add_argument("--repeat", type=int, default=2, help="repetitions of the single-process sweep")
    ap.add_argument("--skip-fleet", action="store_true", help="do not search the live fleet size")
    args = ap.parse_args()
    fs = SensorConfig().fs
    scenarios = design(args.runs, args.duration)
    warmup = scenarios[0].warmup_s
    print(
        f"signals={','.join(SIGNALS)} fs={fs:g}Hz duration={args.duration:g}s/run (+{warmup:g}s warm-up "
        f"simulated, discarded) runs={len(scenarios)} batch={DEFAULT_BATCH} step={MAX_STEP_S * 1e3:g}ms "
        f"cpus_available={os.cpu_count()} load_avg_1min={os.getloadavg()[0]:.2f}"
    )

    # Single-core throughput: the vectorised sweep in this process; CPU time of this process, best of
    # `--repeat` (other jobs on a shared machine inflate both wall and CPU time).
    walls, cpus = [], []
    failed: list[str | None] = []
    for _ in range(args.repeat):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        results = simulate_batch(scenarios)
        walls.append(time.perf_counter() - wall0)
        cpus.append(time.process_time() - cpu0)
        failed = [r.error for r in results if not r.ok]
    wall, cpu = min(walls), min(cpus)
    simulated = len(scenarios) * args.duration
    rt_cpu = simulated / cpu
    print(
        f"sweep single process (best of {args.repeat}): wall={wall:.2f}s cpu={cpu:.2f}s failed={len(failed)} "
        f"realtime_factor_cpu={rt_cpu:.0f}x realtime_factor_wall={simulated / wall:.0f}x "
        f"(counting warm-up too: {len(scenarios) * (args.duration + warmup) / cpu:.0f}x)"
    )
    sweep_wall = wall
    if args.workers > 1:
        wall0 = time.perf_counter()
        simulate_batch(scenarios, workers=args.workers)
        sweep_wall = time.perf_counter() - wall0
        print(f"sweep with workers={args.workers}: wall={sweep_wall:.2f}s")

    # Live mode: one pump in 100 ms chunks (the per-step Python overhead is not amortised here).
    from plant_models import LiveSimulator

    live = LiveSimulator(seed=0)
    cpu0 = time.process_time()
    for _ in range(20):
        live.step(0.1)
    print(f"live single pump, 100 ms chunks: realtime_factor_cpu={2.0 / (time.process_time() - cpu0):.0f}x")

    n = len(scenarios)
    scaled = sweep_wall * 1000.0 / n
    print(
        f"reference ~{REFERENCE_1000_RUNS_S:.0f}s for 1000 runs -> "
        f"speed-up {REFERENCE_1000_RUNS_S / scaled:.0f}x "
        f"({n} runs of {args.duration:g}s measured{'' if n == 1000 else ', scaled to 1000'})"
    )
    fleet_n, fleet_rt = (0, math.nan) if args.skip_fleet else live_fleet_size()
    print(f"plant_realtime_factor={rt_cpu:.1f}")
    print(f"sweep_1000_runs_s={scaled:.2f}")
    if not args.skip_fleet:
        print(f"live_fleet_pumps_realtime={fleet_n}")
        print(f"live_fleet_realtime_factor={fleet_rt:.2f}")


if __name__ == "__main__":
    main()
