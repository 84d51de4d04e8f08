"""Plant simulator speed: real-time factor per core and wall time of a 1000-run sweep.

Run from the repository root: ``python -m benchmarks.plant [--runs 1000] [--duration 2.0] [--workers 1]``.
Prints what it measured and ends with ``plant_realtime_factor=<float>`` (simulated seconds of 4 sensors at
1 kHz per CPU second of one core, warm-up excluded from the simulated seconds) and
``sweep_1000_runs_s=<float>`` (wall seconds for the sweep).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from plant_models import ALL_FAULT_SETS, SIGNALS, OperatingPoint, SensorConfig, simulate_batch, sweep
from plant_models.runner import DEFAULT_BATCH, MAX_STEP_S

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=2.0, help="returned seconds per run")
    ap.add_argument("--workers", type=int, default=1, help="processes for the sweep (realtime is 1 core)")
    ap.add_argument("--repeat", type=int, default=2, help="repetitions of the single-process sweep")
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
    print(f"plant_realtime_factor={rt_cpu:.1f}")
    print(f"sweep_1000_runs_s={scaled:.2f}")


if __name__ == "__main__":
    main()
