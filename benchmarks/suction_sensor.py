"""What-if: the federated benchmark with a fifth sensor, the suction-stroke pressure of cylinder 1.

Run from the repo root: ``python -m benchmarks.suction_sensor``. On the faithful plant a mildly blocked inlet
(one cylinder's inlet valve, atmospheric suction) barely moves the four reference sensors, which caps exact
match well below the issue's 95 %. A pressure transducer in cylinder 1 (the one the reference blocks) sees
its inlet valve's drop directly. This measures what one would add, on the same sweeps, seeds and recipe as
``benchmarks.federated``: the plant's physical cylinder-1 pressure (gauge, bar) plus noise like the outlet
pressure sensor's (0.02 bar, 1 kHz), its minimum per window (the deepest suction) is appended as one
feature; the healthy baseline models it like the other
residuals and a fifth head (voting for the blocked inlet) reads its residual and the operating point. The
streaming contract is not changed here: this measures the case for adding the sensor; it is not the
production path.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmarks.federated import SEED, figures

NOISE_BAR = 0.02  # same as the outlet pressure sensor (plant_models.scenario.SensorConfig.noise_pressure)
FEATURE = "cylinder1_suction_min_bar"


def _windows(scenarios: Sequence[Any], window_s: float, workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of the four sensors plus the noisy suction pressure mean per window, and labels."""
    from fedtwin.data.features import extract_features, windowize
    from plant_models import simulate_batch
    from plant_models.params import P_ATM

    Xs, Ys = [], []
    for res in simulate_batch(list(scenarios), workers=workers, truth=True):
        if not res.ok or res.signals is None or res.truth is None:
            raise RuntimeError(f"simulation failed: {res.error}")
        fs = res.scenario.sensors.fs
        F = extract_features(windowize(res.signals, window_s, fs), fs)
        rng = np.random.default_rng([res.scenario.seed, 55])
        p_cyl = res.truth["p_cyl0"]
        p_cyl = (p_cyl - P_ATM) / 1e5 + NOISE_BAR * rng.standard_normal(len(p_cyl))
        suction = windowize({"suction": p_cyl}, window_s, fs)["suction"].min(axis=1)
        if len(suction) != len(F):
            raise AssertionError("suction windows do not line up with the feature windows")
        Xs.append(np.column_stack([F, suction]))
        Ys.append(np.tile(res.scenario.labels(), (len(F), 1)))
    return np.vstack(Xs), np.vstack(Ys).astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    """Build both sweeps with the suction sensor, train the best strategies, print measurements."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--strategies", default="fedadam,fedavg,centralised")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from federated.client import ClientData
    from federated.evaluate import evaluate_predictions
    from fedtwin.data.datasets import SweepConfig, test_scenarios, train_scenarios
    from fedtwin.data.features import FEATURE_NAMES
    from fedtwin.training.recipe import (
        _OPERATING_POINT,
        BASELINE_TARGETS,
        PHYSICS_HEAD_GROUPS,
        PHYSICS_HEADS,
        train_strategy,
    )
    from plant_models.spec import FAULTS as FAULT_NAMES

    cfg = SweepConfig(seed=args.seed)
    t0 = time.perf_counter()
    clients = {}
    for cid, runs in train_scenarios(cfg).items():
        X, Y = _windows(runs, cfg.window_s, args.workers)
        clients[cid] = ClientData(X, Y, cid)
    Xt, Yt = _windows(test_scenarios(cfg), cfg.window_s, args.workers)
    print(
        f"seed={args.seed} sensor=suction_pressure noise_bar={NOISE_BAR} train_windows="
        f"{sum(len(c.X) for c in clients.values())} test_windows={len(Xt)} "
        f"sim_seconds={time.perf_counter() - t0:.1f} (same sweeps as benchmarks.federated)"
    )
    model_kwargs = {
        "feature_names": (*FEATURE_NAMES, FEATURE),
        "baseline_targets": (*BASELINE_TARGETS, FEATURE),
        "head_inputs": (*PHYSICS_HEADS, (f"resid_{FEATURE}", *_OPERATING_POINT)),
        "head_groups": (*PHYSICS_HEAD_GROUPS, FAULT_NAMES.index("blocked_inlet")),
    }
    for name in args.strategies.split(","):
        for sensors, kwargs in (("4", {}), ("5", model_kwargs)):
            X_test = Xt if sensors == "5" else Xt[:, : len(FEATURE_NAMES)]
            data = (
                clients
                if sensors == "5"
                else {k: ClientData(c.X[:, : len(FEATURE_NAMES)], c.Y, k) for k, c in clients.items()}
            )
            model, _ = train_strategy(
                name, data, rounds=args.rounds, seed=args.seed % 10_000, model_kwargs=kwargs
            )
            r = evaluate_predictions(Yt, model.predict(X_test), FAULT_NAMES)
            per_class = " ".join(f"{n}={r[f'acc_{n}']:.3f}" for n in r["subset_names"])
            print(f"detail sensors={sensors} strategy={name} per_class_exact {per_class}")
            print(f"sensors={sensors} strategy={name} {figures(r)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
