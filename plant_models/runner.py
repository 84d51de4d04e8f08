"""Batch and live simulation on top of the vectorised engine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from plant_models.engine import EngineState, PumpEngine
from plant_models.params import PumpParams, default_params
from plant_models.scenario import Faults, OperatingPoint, Scenario, SensorConfig
from plant_models.sensors import SensorModel, measure_batch

MAX_STEP_S = 1.0e-3
"""Largest integration step (s); a sample interval is split into equal substeps no longer than this."""

DEFAULT_BATCH = 1000
"""Runs integrated together per engine; larger amortises the per-step Python overhead."""


def substeps_for(fs: float, max_step_s: float = MAX_STEP_S) -> int:
    """Integration substeps per sample at sample rate ``fs`` so that no step exceeds ``max_step_s``."""
    if not 0.0 < max_step_s <= 2e-3:
        raise ValueError(f"max_step_s={max_step_s!r} is outside its valid range (0, 0.002] s")
    return max(1, math.ceil(1.0 / (fs * max_step_s) - 1e-9))


@dataclass
class RunResult:
    """Outcome of one scenario of a batch: ``signals`` on success, ``error`` (naming the scenario) if not."""

    scenario: Scenario
    signals: dict[str, np.ndarray] | None = None
    error: str | None = None
    truth: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.error is None


def _initial_rng(seed: int) -> tuple[np.random.Generator, float]:
    rng = np.random.default_rng(seed)
    return rng, float(rng.uniform(0.0, 2.0 * math.pi))


def _run_group(
    scenarios: Sequence[Scenario], params: PumpParams, truth: bool, max_step_s: float = MAX_STEP_S
) -> list[RunResult]:
    """Integrate scenarios sharing fs, length and warm-up as one vectorised engine."""
    sc0 = scenarios[0]
    fs = sc0.sensors.fs
    sub = substeps_for(fs, max_step_s)
    engine = PumpEngine(params, len(scenarios), 1.0 / (fs * sub))
    engine.set_conditions([s.faults for s in scenarios], [s.op for s in scenarios])
    rngs, thetas = zip(*(_initial_rng(int(s.seed)) for s in scenarios), strict=True)
    engine.state = engine.steady_guess(np.array(thetas))
    n_warm = round(sc0.warmup_s * fs)
    if n_warm:
        engine.advance(n_warm, sub, record=False)
    raw = engine.advance(sc0.n_samples, sub, truth=truth)
    signals: dict[int, dict[str, np.ndarray]] = {}
    # Runs without (stateful) sensor faults share a vectorised sensor model per sensor configuration.
    plain: dict[SensorConfig, list[int]] = {}
    for j, sc in enumerate(scenarios):
        if engine.failed[j]:
            continue
        if sc.faults.drift_signal is None and sc.faults.stuck_signal is None:
            plain.setdefault(sc.sensors, []).append(j)
        else:
            run_raw = {k: v[:, j] for k, v in raw.items()}
            signals[j] = SensorModel(sc.sensors, rngs[j]).measure(run_raw, sc.faults)
    for cfg, idx in plain.items():
        faults = [scenarios[j].faults for j in idx]
        for j, sig in zip(idx, measure_batch(raw, idx, cfg, faults, [rngs[j] for j in idx]), strict=True):
            signals[j] = sig
    results = []
    for j, sc in enumerate(scenarios):
        if engine.failed[j]:
            results.append(RunResult(sc, error=f"scenario {sc.id!r}: {engine.fail_reason[j]}"))
        else:
            run_truth = {k: np.ascontiguousarray(v[:, j]) for k, v in raw.items()} if truth else None
            results.append(RunResult(sc, signals=signals[j], truth=run_truth))
    return results


def _run_isolated(
    scenarios: Sequence[Scenario], params: PumpParams, truth: bool, max_step_s: float = MAX_STEP_S
) -> list[RunResult]:
    """Run a group; if the vectorised run raises, retry one by one so only the culprit fails."""
    try:
        return _run_group(scenarios, params, truth, max_step_s)
    except Exception:
        if len(scenarios) == 1:
            raise
    out = []
    for sc in scenarios:
        try:
            out.extend(_run_group([sc], params, truth, max_step_s))
        except Exception as exc:
            out.append(RunResult(sc, error=f"scenario {sc.id!r}: {type(exc).__name__}: {exc}"))
    return out


def _run_chunk(args: tuple[list[Scenario], PumpParams, bool, int, float]) -> list[RunResult]:
    scenarios, params, truth, batch_size, max_step_s = args
    groups: dict[tuple[float, int, int], list[int]] = {}
    for i, sc in enumerate(scenarios):
        key = (sc.sensors.fs, sc.n_samples, round(sc.warmup_s * sc.sensors.fs))
        groups.setdefault(key, []).append(i)
    out: list[RunResult | None] = [None] * len(scenarios)
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            part = idx[start : start + batch_size]
            for i, res in zip(
                part, _run_isolated([scenarios[i] for i in part], params, truth, max_step_s), strict=True
            ):
                out[i] = res
    return [r for r in out if r is not None]


def simulate_batch(
    scenarios: Sequence[Scenario],
    params: PumpParams | None = None,
    *,
    batch_size: int = DEFAULT_BATCH,
    workers: int = 1,
    truth: bool = False,
    max_step_s: float = MAX_STEP_S,
) -> list[RunResult]:
    """Simulate many scenarios, vectorised across runs (and across ``workers`` processes if > 1).

    Invalid or diverging scenarios come back with ``error`` naming the scenario; the others are unaffected.
    Results are in input order. ``truth=True`` also returns the physical per-sample means (see
    :meth:`PumpEngine.advance`) in ``RunResult.truth``.
    """
    params = params or default_params()
    substeps_for(1000.0, max_step_s)  # bad solver settings fail loudly, not per scenario
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size={batch_size} and workers={workers} must be in [1, inf)")
    results: list[RunResult | None] = [None] * len(scenarios)
    valid: list[int] = []
    for i, sc in enumerate(scenarios):
        try:
            sc.validate()
        except (ValueError, TypeError) as exc:
            results[i] = RunResult(sc, error=f"scenario {getattr(sc, 'id', '?')!r}: {exc}")
        else:
            valid.append(i)
    if workers > 1 and len(valid) > 1:
        n_chunks = min(workers, len(valid))
        parts = [valid[c::n_chunks] for c in range(n_chunks)]
        with ProcessPoolExecutor(max_workers=n_chunks) as pool:
            chunks = pool.map(
                _run_chunk,
                [([scenarios[i] for i in p], params, truth, batch_size, max_step_s) for p in parts],
            )
            for part, res in zip(parts, chunks, strict=True):
                for i, r in zip(part, res, strict=True):
                    results[i] = r
    else:
        for i, r in zip(
            valid,
            _run_chunk(([scenarios[i] for i in valid], params, truth, batch_size, max_step_s)),
            strict=True,
        ):
            results[i] = r
    return [r for r in results if r is not None]


def simulate(
    scenario: Scenario, params: PumpParams | None = None, *, max_step_s: float = MAX_STEP_S
) -> dict[str, np.ndarray]:
    """Sensor signals of one scenario after its warm-up: ``{signal: 1-D array of duration_s * fs}``.

    Raises
    ------
    ValueError
        Non-physical scenario (message names the parameter and its range).
    RuntimeError
        The solver diverged.
    """
    scenario.validate()
    res = _run_group([scenario], params or default_params(), False, max_step_s)[0]
    if res.signals is None:
        raise RuntimeError(res.error)
    return res.signals


def simulate_truth(
    scenario: Scenario, params: PumpParams | None = None, *, max_step_s: float = MAX_STEP_S
) -> RunResult:
    """Like :func:`simulate` but also returns the physical ground truth (``RunResult.truth``)."""
    scenario.validate()
    return _run_group([scenario], params or default_params(), True, max_step_s)[0]


class LiveSimulator:
    """One pump advanced in chunks; faults and operating point may change between chunks without jumps.

    The warm-up runs in the constructor. Chunked output equals one long :func:`simulate` run with the
    same seed, faults, operating point and sensors (same integrator path, noise drawn in sample order).

    Parameters
    ----------
    op : OperatingPoint
        Initial operating point.
    faults : Faults
        Initial faults.
    seed : int
        Seeds initial crank angle and sensor noise.
    sensors : SensorConfig
        Sampling and noise.
    params : PumpParams
        Physical parameters.
    warmup_s : float
        Simulated and discarded before ``t = 0``.
    max_step_s : float
        Largest integration step (s); see :mod:`plant_models.engine` for the accuracy it buys.
    """

    def __init__(
        self,
        op: OperatingPoint | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        sensors: SensorConfig | None = None,
        params: PumpParams | None = None,
        warmup_s: float = 0.3,
        max_step_s: float = MAX_STEP_S,
    ) -> None:
        self.op = op or OperatingPoint()
        self.faults = faults or Faults()
        self.sensors = sensors or SensorConfig()
        self.params = params or default_params()
        Scenario(faults=self.faults, op=self.op, seed=seed, sensors=self.sensors, warmup_s=warmup_s)
        self.seed = seed
        self._sub = substeps_for(self.sensors.fs, max_step_s)
        self._engine = PumpEngine(self.params, 1, 1.0 / (self.sensors.fs * self._sub))
        self._engine.set_conditions([self.faults], [self.op])
        rng, theta = _initial_rng(seed)
        self._engine.state = self._engine.steady_guess(np.array([theta]))
        self._sensor = SensorModel(self.sensors, rng)
        n_warm = round(warmup_s * self.sensors.fs)
        if n_warm:
            self._engine.advance(n_warm, self._sub, record=False)
        self._samples = 0
        self.last_truth: dict[str, np.ndarray] | None = None

    @property
    def t(self) -> float:
        """Time of the next sample (s since the end of warm-up)."""
        return self._samples / self.sensors.fs

    @property
    def state(self) -> EngineState:
        """Copy of the physical state."""
        assert self._engine.state is not None
        return self._engine.state.copy()

    def set_faults(self, faults: Faults) -> None:
        """Change faults from the next sample on."""
        faults.__post_init__()
        self.faults = faults
        self._engine.set_conditions([faults], [self.op])

    def set_operating_point(self, op: OperatingPoint) -> None:
        """Change the operating point (speed set-point, load) from the next sample on."""
        op.__post_init__()
        self.op = op
        self._engine.set_conditions([self.faults], [op])

    def step(self, duration_s: float = 0.1, truth: bool = False) -> dict[str, np.ndarray]:
        """Advance ``duration_s`` (rounded to whole samples, at least one) and return the sensor chunk."""
        n = round(duration_s * self.sensors.fs)
        if n < 1 or not math.isfinite(duration_s):
            raise ValueError(f"duration_s={duration_s!r} is outside its valid range [1/fs, inf) s")
        raw = self._engine.advance(n, self._sub, truth=truth)
        if self._engine.failed[0]:
            raise RuntimeError(f"live simulator (seed {self.seed}): {self._engine.fail_reason[0]}")
        run_raw = {k: v[:, 0] for k, v in raw.items()}
        self.last_truth = run_raw if truth else None
        self._samples += n
        return self._sensor.measure(run_raw, self.faults)
