"""Training and held-out designs per site, and their simulation into feature tables (pure: numpy + plant).

A *site* (federated client) holds healthy runs plus runs of exactly one fault across the reference study's
full severity range. The held-out design never reuses a training scenario: other severities, other operating
points, other seeds, and every fault combination (pairs and all three) that no site ever saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedtwin.features import FEATURE_NAMES, extract_features, windowize
from plant_models import ALL_FAULT_SETS, FAULTS, OperatingPoint, Scenario, simulate_batch, sweep


@dataclass(frozen=True)
class Profile:
    """Size of a training design; ``demo`` trains in about a minute, ``full`` is the benchmark size."""

    severities_train: tuple[float, ...]
    severities_test: tuple[float, ...]
    train_ops: tuple[tuple[float, float], ...]  # (speed factor, load factor) around the operating point
    test_ops: tuple[tuple[float, float], ...]
    seeds_train: tuple[int, ...]
    seeds_test: tuple[int, ...]
    healthy_repeats: int  # extra healthy seeds per site, so healthy is well covered
    duration_s: float
    leak_cylinders: tuple[int, ...] = (0, 1, 2)


_TEN_LEVELS = tuple(float(x) for x in np.round(np.linspace(0.1, 1.0, 10), 3))
# Held-out severities sit between the training levels, including the smallest faults (hardest to see).
_BETWEEN = tuple(float(x) for x in np.round(np.linspace(0.05, 0.95, 10), 3))

PROFILES: dict[str, Profile] = {
    "demo": Profile(
        severities_train=(*_TEN_LEVELS[::2], 1.0),
        severities_test=(0.15, 0.45, 0.75),
        train_ops=((1.0, 1.0), (0.92, 0.9), (1.06, 1.12)),
        test_ops=((0.97, 1.05),),
        seeds_train=(1,),
        seeds_test=(1001,),
        healthy_repeats=6,
        duration_s=2.0,
    ),
    "full": Profile(
        severities_train=_TEN_LEVELS,
        severities_test=_BETWEEN,
        train_ops=((1.0, 1.0), (0.9, 0.85), (1.1, 1.15), (0.95, 1.1), (1.05, 0.9)),
        test_ops=((0.97, 1.05), (1.03, 0.93)),
        seeds_train=(1, 2),
        seeds_test=(1001,),
        healthy_repeats=10,
        duration_s=3.0,
    ),
}


def get_profile(name: str) -> Profile:
    """Profile by name, with a clear error."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown training profile {name!r}; choose from {sorted(PROFILES)}") from None


def _ops(center: OperatingPoint, factors: Sequence[tuple[float, float]]) -> list[OperatingPoint]:
    return [
        OperatingPoint(
            speed_rpm=min(1500.0, center.speed_rpm * s),
            load_area_factor=min(5.0, center.load_area_factor * ld),
        )
        for s, ld in factors
    ]


def site_ids(faults: Sequence[str] = FAULTS) -> list[str]:
    """One site per fault."""
    return [f"site-{f}" for f in faults]


def site_design(fault: str, profile: Profile, center: OperatingPoint, site_index: int = 0) -> list[Scenario]:
    """Healthy plus one fault over its full severity range, at the training operating points."""
    if fault not in FAULTS:
        raise ValueError(f"fault {fault!r} must be one of {FAULTS}")
    ops = _ops(center, profile.train_ops)
    # Seeds differ per site: sites are different machines, and no run repeats across sites or the test set.
    seeds = [s * 100 + site_index for s in profile.seeds_train]
    faulty = sweep(
        [(fault,)],
        profile.severities_train,
        ops,
        seeds,
        profile.duration_s,
        leak_cylinders=profile.leak_cylinders,
    )
    healthy_seeds = [10_000 + site_index * 1000 + k for k in range(profile.healthy_repeats)]
    healthy = sweep([()], (1.0,), ops, healthy_seeds, profile.duration_s)
    return faulty + healthy


def holdout_design(profile: Profile, center: OperatingPoint) -> list[Scenario]:
    """All 8 classes at unseen severities, unseen operating points and unseen seeds."""
    ops = _ops(center, profile.test_ops)
    faulty = sweep(
        [fs for fs in ALL_FAULT_SETS if fs],
        profile.severities_test,
        ops,
        profile.seeds_test,
        profile.duration_s,
        leak_cylinders=profile.leak_cylinders,
    )
    n_per_class = len(profile.severities_test) * len(profile.leak_cylinders)
    healthy = sweep([()], (1.0,), ops, [50_000 + k for k in range(n_per_class)], profile.duration_s)
    return faulty + healthy


@dataclass(frozen=True)
class FeatureTable:
    """Per-window features and labels, with the scenario each window came from."""

    X: np.ndarray
    Y: np.ndarray
    severity: np.ndarray  # (n, len(FAULTS)) severity in [0, 1] per fault
    scenario: np.ndarray  # (n,) index into the design
    errors: tuple[str, ...] = ()

    def save(self, path: Path) -> Path:
        """Write as npz (numeric arrays only)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, X=self.X, Y=self.Y, severity=self.severity, scenario=self.scenario)
        return path

    @classmethod
    def load(cls, path: Path | str) -> FeatureTable:
        """Read a table written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            return cls(z["X"], z["Y"], z["severity"], z["scenario"])

    def frame(self):  # type: ignore[no-untyped-def]
        """As a pandas DataFrame (features by name, then one 0/1 column per fault)."""
        import pandas as pd

        df = pd.DataFrame(self.X, columns=list(FEATURE_NAMES))
        for k, f in enumerate(FAULTS):
            df[f] = self.Y[:, k].astype(int)
        return df


def simulate_table(scenarios: Sequence[Scenario], window_s: float = 1.0, workers: int = 1) -> FeatureTable:
    """Simulate a design, cut runs into windows and extract features; failed runs are listed, not fatal."""
    results = simulate_batch(scenarios, workers=workers)
    xs, ys, sev, idx, errors = [], [], [], [], []
    for i, res in enumerate(results):
        if res.signals is None:
            errors.append(str(res.error))
            continue
        fs = res.scenario.sensors.fs
        win = windowize({k: res.signals[k] for k in ("pressure", "flow", "speed", "current")}, window_s, fs)
        n = len(win["flow"])
        if n == 0:
            errors.append(f"scenario {res.scenario.id!r}: shorter than one window")
            continue
        xs.append(extract_features(win, fs))
        ys.append(np.repeat(res.scenario.labels()[None, :], n, axis=0))
        sev.append(np.repeat(res.scenario.faults.severities()[None, :], n, axis=0))
        idx.append(np.full(n, i))
    if not xs:
        raise RuntimeError(f"every scenario failed: {errors[:3]}")
    return FeatureTable(np.vstack(xs), np.vstack(ys), np.vstack(sev), np.concatenate(idx), tuple(errors))
