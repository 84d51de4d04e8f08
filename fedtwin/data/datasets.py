"""Simulated data sets for training and evaluation: per-site sweeps, the held-out sweep, feature windows.

Data design (extreme label skew, as at real sites): every site holds healthy runs plus ONE fault type over
the full reference severity range (10 levels, 0.1..1.0 of the range, so small faults are included), on
operating points drawn from an envelope and its own seeds. The held-out sweep never reuses a training scenario
or seed: unseen severities (0.05..0.95, including one below the smallest trained level), unseen operating
points inside the trained envelope, all 8 fault sets including the combinations no site has seen, and leaks in
every cylinder. Pure: numpy, the plant model and the features; no Prefect, Kafka, Redis or MLflow.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from federated.client import ClientData
from fedtwin.data.features import extract_features, windowize
from plant_models import ALL_FAULT_SETS, Faults, OperatingPoint, Scenario, simulate_batch
from plant_models.spec import FAULTS, OPERATING_POINT

logger = logging.getLogger(__name__)

TRAIN_SEVERITIES: tuple[float, ...] = tuple(float(x) for x in np.round(np.linspace(0.1, 1.0, 10), 3))
TEST_SEVERITIES: tuple[float, ...] = tuple(float(x) for x in np.round(np.arange(0.05, 1.0, 0.1), 3))
TRAIN_SPEEDS: tuple[float, ...] = (800.0, 958.0, 1100.0)
TRAIN_LOADS: tuple[float, ...] = (0.8, 1.0, 1.25)
TEST_SPEEDS: tuple[float, ...] = (870.0, 1040.0)
TEST_LOADS: tuple[float, ...] = (0.9, 1.12)
_TEST_SEED_OFFSET = 1_000_000  # test seeds live in a disjoint range from training seeds


@dataclass(frozen=True)
class SweepConfig:
    """Sizes of the train and test sweeps (defaults run in a few minutes on 2 cores)."""

    seed: int = 20240601
    duration_s: float = 3.0
    warmup_s: float = 0.5
    window_s: float = 1.0
    clients_per_fault: int = 2
    train_seeds_per_site: int = 1
    healthy_runs_per_op_per_site: int = 4
    test_healthy_runs_per_op: int = 40
    test_runs_per_cell: int = 1
    train_severities: tuple[float, ...] = TRAIN_SEVERITIES
    test_severities: tuple[float, ...] = TEST_SEVERITIES
    train_speeds: tuple[float, ...] = TRAIN_SPEEDS
    train_loads: tuple[float, ...] = TRAIN_LOADS
    test_speeds: tuple[float, ...] = TEST_SPEEDS
    test_loads: tuple[float, ...] = TEST_LOADS


@dataclass
class LabelledWindows:
    """Feature rows with labels and the scenario facts needed for per-severity reporting."""

    X: np.ndarray
    Y: np.ndarray
    severity: np.ndarray  # (n, n_faults) in [0, 1]
    speed_rpm: np.ndarray
    load: np.ndarray
    scenario_id: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def _ops(speeds: Sequence[float], loads: Sequence[float]) -> list[Any]:
    return [OperatingPoint(speed_rpm=float(s), load_area_factor=float(lo)) for s in speeds for lo in loads]


def train_scenarios(cfg: SweepConfig = SweepConfig()) -> dict[str, list[Any]]:
    """Scenarios per client id (``<fault>-site<j>``): healthy runs + that single fault on every severity.

    Every run gets its own operating point drawn uniformly from the training envelope (sites do not run at a
    handful of set points), its own seed and, for leaks, a cycling cylinder.
    """
    rng = np.random.default_rng([cfg.seed, 1])
    lo_s, hi_s = min(cfg.train_speeds), max(cfg.train_speeds)
    lo_l, hi_l = min(cfg.train_loads), max(cfg.train_loads)

    def op() -> Any:
        return OperatingPoint(
            speed_rpm=float(rng.uniform(lo_s, hi_s)), load_area_factor=float(rng.uniform(lo_l, hi_l))
        )

    n_ops = len(cfg.train_speeds) * len(cfg.train_loads)
    out: dict[str, list[Any]] = {}
    next_seed = cfg.seed % _TEST_SEED_OFFSET
    for fault in FAULTS:
        for site in range(cfg.clients_per_fault):
            runs = []
            for _ in range(n_ops * cfg.healthy_runs_per_op_per_site):
                runs.append(
                    Scenario(
                        faults=Faults(),
                        op=op(),
                        seed=next_seed % _TEST_SEED_OFFSET,
                        duration_s=cfg.duration_s,
                        warmup_s=cfg.warmup_s,
                    )
                )
                next_seed += 1
            for sev in cfg.train_severities:
                for _ in range(n_ops * cfg.train_seeds_per_site):
                    faults = Faults.from_severity(**{fault: sev}, leak_cylinder=next_seed % 3)
                    runs.append(
                        Scenario(
                            faults=faults,
                            op=op(),
                            seed=next_seed % _TEST_SEED_OFFSET,
                            duration_s=cfg.duration_s,
                            warmup_s=cfg.warmup_s,
                        )
                    )
                    next_seed += 1
            out[f"{fault}-site{site}"] = runs
    return out


def test_scenarios(cfg: SweepConfig = SweepConfig()) -> list[Any]:
    """Held-out scenarios: all 8 fault sets x unseen severities x unseen operating points x fresh seeds."""
    ops = _ops(cfg.test_speeds, cfg.test_loads)
    seed = _TEST_SEED_OFFSET + cfg.seed % _TEST_SEED_OFFSET
    out = []
    for fset in ALL_FAULT_SETS:
        for op in ops:
            if not fset:
                for _ in range(cfg.test_healthy_runs_per_op):
                    out.append(
                        Scenario(
                            faults=Faults(),
                            op=op,
                            seed=seed,
                            duration_s=cfg.duration_s,
                            warmup_s=cfg.warmup_s,
                        )
                    )
                    seed += 1
                continue
            for sev in cfg.test_severities:
                for _ in range(cfg.test_runs_per_cell):
                    faults = Faults.from_severity(**{f: sev for f in fset}, leak_cylinder=seed % 3)
                    out.append(
                        Scenario(
                            faults=faults, op=op, seed=seed, duration_s=cfg.duration_s, warmup_s=cfg.warmup_s
                        )
                    )
                    seed += 1
    return out


def scenario_windows(scenarios: Sequence[Any], window_s: float = 1.0, workers: int = 1) -> LabelledWindows:
    """Simulate scenarios into labelled feature windows; failed runs are logged and skipped."""
    results = simulate_batch(list(scenarios), workers=workers)
    Xs, Ys, sev, spd, load, sid = [], [], [], [], [], []
    failed = 0
    for j, res in enumerate(results):
        if not res.ok or res.signals is None:
            failed += 1
            logger.warning("simulation failed, run skipped: %s", res.error)
            continue
        fs = res.scenario.sensors.fs
        F = extract_features(windowize(res.signals, window_s, fs), fs)
        n = len(F)
        Xs.append(F)
        Ys.append(np.tile(res.scenario.labels(), (n, 1)))
        sev.append(np.tile(res.scenario.faults.severities(), (n, 1)))
        spd.append(np.full(n, res.scenario.op.speed_rpm))
        load.append(np.full(n, res.scenario.op.load_area_factor))
        sid.append(np.full(n, j))
    if not Xs:
        raise RuntimeError("every simulation failed")
    return LabelledWindows(
        np.vstack(Xs),
        np.vstack(Ys).astype(np.int64),
        np.vstack(sev),
        np.concatenate(spd),
        np.concatenate(load),
        np.concatenate(sid),
        {"n_scenarios": len(results), "n_failed": failed},
    )


def build_clients(cfg: SweepConfig = SweepConfig(), workers: int = 1) -> dict[str, ClientData]:
    """Per-fault client datasets from the training sweep (one simulation batch for all sites)."""
    per_client = train_scenarios(cfg)
    flat = [(cid, sc) for cid, scs in per_client.items() for sc in scs]
    lw = scenario_windows([sc for _, sc in flat], cfg.window_s, workers)
    owner = np.array([flat[j][0] for j in lw.scenario_id])
    return {cid: ClientData(lw.X[owner == cid], lw.Y[owner == cid], cid) for cid in per_client}


def build_test_set(cfg: SweepConfig = SweepConfig(), workers: int = 1) -> LabelledWindows:
    """Held-out windows (see module docstring)."""
    return scenario_windows(test_scenarios(cfg), cfg.window_s, workers)


NOMINAL_SPEED_RPM, NOMINAL_LOAD = OPERATING_POINT.speed_rpm, OPERATING_POINT.load_area_factor

PROFILES: dict[str, SweepConfig] = {
    # About a minute on 2 cores: one site per fault, fewer runs; same ranges and held-out rules as "full".
    "demo": SweepConfig(
        duration_s=2.0,
        clients_per_fault=1,
        healthy_runs_per_op_per_site=2,
        test_healthy_runs_per_op=12,
        test_severities=(0.05, 0.25, 0.45, 0.65, 0.85),
    ),
    "full": SweepConfig(),
}


def get_profile(
    name: str, speed_rpm: float = NOMINAL_SPEED_RPM, load_area_factor: float = NOMINAL_LOAD
) -> SweepConfig:
    """A named sweep size, its operating envelope scaled to centre on the given operating point."""
    try:
        cfg = PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown training profile {name!r}; choose from {sorted(PROFILES)}") from None
    ks, kl = speed_rpm / NOMINAL_SPEED_RPM, load_area_factor / NOMINAL_LOAD

    def speeds(v: Sequence[float]) -> tuple[float, ...]:
        return tuple(float(min(1500.0, x * ks)) for x in v)

    def loads(v: Sequence[float]) -> tuple[float, ...]:
        return tuple(float(np.clip(x * kl, 0.2, 5.0)) for x in v)

    return replace(
        cfg,
        train_speeds=speeds(cfg.train_speeds),
        test_speeds=speeds(cfg.test_speeds),
        train_loads=loads(cfg.train_loads),
        test_loads=loads(cfg.test_loads),
    )


def save_windows(lw: LabelledWindows, path: Path) -> Path:
    """Write labelled windows as npz (numeric arrays only, read back without pickle); returns the file
    written (``path`` with ``.npz`` appended when it has another suffix, as :func:`numpy.savez` does)."""
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        X=lw.X,
        Y=lw.Y,
        severity=lw.severity,
        speed_rpm=lw.speed_rpm,
        load=lw.load,
        scenario_id=lw.scenario_id,
    )
    return path


def load_windows(path: Path | str) -> LabelledWindows:
    """Inverse of :func:`save_windows`."""
    with np.load(path, allow_pickle=False) as z:
        return LabelledWindows(z["X"], z["Y"], z["severity"], z["speed_rpm"], z["load"], z["scenario_id"])


def windows_frame(lw: LabelledWindows, feature_names: Sequence[str]) -> Any:
    """Features by name, then one 0/1 column per fault (the table the GX validation checks)."""
    df = pd.DataFrame(lw.X, columns=list(feature_names))
    for k, f in enumerate(FAULTS):
        df[f] = lw.Y[:, k].astype(int)
    return df


def reference_scenarios(
    speed_rpm: float, load_area_factor: float, runs: int = 30, duration_s: float = 2.0, seed: int = 7_000_000
) -> list[Any]:
    """Healthy runs at exactly the design operating point: what the drift monitor compares the stream with."""
    op = OperatingPoint(speed_rpm=speed_rpm, load_area_factor=load_area_factor)
    return [Scenario(faults=Faults(), op=op, seed=seed + k, duration_s=duration_s) for k in range(runs)]


def reference_windows(speed_rpm: float, load_area_factor: float, window_s: float) -> np.ndarray:
    """Feature windows of :func:`reference_scenarios`: the drift reference a served model is stored with."""
    return scenario_windows(reference_scenarios(speed_rpm, load_area_factor), window_s).X
