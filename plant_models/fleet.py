"""Live fleet: many pumps advanced in chunks by one vectorised engine.

:class:`LiveFleet` is :class:`~plant_models.runner.LiveSimulator` for ``N`` assets at once: one
:class:`~plant_models.engine.PumpEngine` holds a run per asset, so the per-step Python overhead is paid once
per fleet instead of once per pump. Each asset keeps its own faults, operating point, seed (initial crank
angle and sensor-noise stream) and sensor-fault state.

Asset ``i``'s chunks are bit-identical to those of a ``LiveSimulator`` with the same seed, faults,
operating point and sensors (hence to one long run), whatever the other assets do, because

- the engine computes each run from its own column: its fleet-wide branches (``if x.max() > ...``) only
  skip work whose result is neutral for the runs that do not need it, which holds while every run is finite;
- warm-up, substeps and the initial state are built exactly as ``LiveSimulator`` builds them;
- each asset draws its noise from its own generator, in sample order, through the same sensor code
  (:func:`~plant_models.sensors.measure_batch` for assets without sensor faults, their own
  :class:`~plant_models.sensors.SensorModel` for the stateful drift/stuck faults and vibration).

Changes of faults or operating point are queued and reach the engine in one ``set_conditions`` call before
the next chunk, however many assets changed. An asset whose solution diverges loses that chunk (reported in
:attr:`FleetChunk.failures`) and restarts from a fresh warm-up; the chunk is re-run for every asset from a
checkpoint taken before it, so a non-finite run never reaches the others through those fleet-wide branches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from plant_models.engine import EngineState, PumpEngine
from plant_models.params import PumpParams, default_params
from plant_models.runner import MAX_STEP_S, _initial_rng, substeps_for
from plant_models.scenario import Faults, OperatingPoint, Scenario, SensorConfig
from plant_models.sensors import SensorModel, measure_batch

Chunk = dict[str, np.ndarray]


@dataclass
class FleetChunk:
    """One chunk of every asset of a :class:`LiveFleet`.

    Attributes
    ----------
    signals : list of (dict of str to numpy.ndarray) or None
        Per asset, in asset order: ``{signal: 1-D array}`` exactly as :meth:`LiveSimulator.step` returns
        it, or None when the asset has no data for this chunk (``failures`` says why).
    failures : dict of int to str
        Asset index -> reason, for every asset without data: its solution diverged in this chunk (it then
        restarts from a fresh warm-up with its seed, faults and operating point), or it is down (its
        restart diverged too; it tries again when its faults or operating point change).
    """

    signals: list[Chunk | None]
    failures: dict[int, str] = field(default_factory=dict)


class LiveFleet:
    """``N`` pumps advanced together in chunks; per asset the output of a :class:`LiveSimulator`.

    Parameters
    ----------
    seeds : sequence of int
        One seed per asset (initial crank angle and sensor noise); their number is the fleet size.
    ops : sequence of OperatingPoint, optional
        Initial operating point per asset (default: nominal).
    faults : sequence of Faults, optional
        Initial faults per asset (default: healthy).
    sensors : SensorConfig
        Sampling and noise, shared by the fleet (one engine means one sample rate).
    params : PumpParams
        Physical parameters, shared by the fleet.
    warmup_s : float
        Simulated and discarded before ``t = 0`` (and after a restart).
    max_step_s : float
        Largest integration step (s).
    """

    def __init__(
        self,
        seeds: Sequence[int],
        ops: Sequence[OperatingPoint] | None = None,
        faults: Sequence[Faults] | None = None,
        sensors: SensorConfig | None = None,
        params: PumpParams | None = None,
        warmup_s: float = 0.3,
        max_step_s: float = MAX_STEP_S,
    ) -> None:
        n = len(seeds)
        if n < 1:
            raise ValueError("seeds must hold one seed per asset, got none")
        ops = list(ops) if ops is not None else [OperatingPoint()] * n
        faults = list(faults) if faults is not None else [Faults()] * n
        if len(ops) != n or len(faults) != n:
            raise ValueError(
                f"ops and faults need one entry per seed ({n}), got {len(ops)} and {len(faults)}"
            )
        self.sensors = sensors or SensorConfig()
        self.params = params or default_params()
        for i, (seed, f, o) in enumerate(zip(seeds, faults, ops, strict=True)):
            try:  # the checks LiveSimulator makes, naming the asset
                Scenario(faults=f, op=o, seed=seed, sensors=self.sensors, warmup_s=warmup_s)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"asset {i}: {exc}") from exc
        self.seeds: tuple[int, ...] = tuple(int(s) for s in seeds)
        self.warmup_s = warmup_s
        self._sub = substeps_for(self.sensors.fs, max_step_s)
        self._dt = 1.0 / (self.sensors.fs * self._sub)
        self._faults = faults
        self._ops = ops
        self._stateful = np.array([self._needs_sensor_state(f) for f in faults], dtype=bool)
        self._models: list[SensorModel | None] = [None] * n  # only while an asset needs sensor state
        self._prev: list[Chunk | None] = [None] * n  # last chunk: hands its last values to a new SensorModel
        self._down: dict[int, str] = {}
        self._retry: set[int] = set()  # down assets whose conditions changed
        self._dirty = False  # conditions changed since the engine last got them
        self._samples = 0
        self._engine, self._rngs = self._warm(faults, ops, self.seeds)
        diverged = np.flatnonzero(self._engine.failed)
        if diverged.size:  # rare: warm the others again without them, so they cannot disturb the rest
            for j in diverged:
                self._down[int(j)] = self._down_reason(f"warm-up diverged: {self._engine.fail_reason[j]}")
            self._engine, self._rngs = self._warm(self._engine_faults(), self._engine_ops(), self.seeds)
            if self._engine.failed.any():
                raise RuntimeError(f"live fleet: warm-up diverged: {self._engine.fail_reason}")

    # ----------------------------------------------------------------- state and configuration
    @property
    def n(self) -> int:
        """Number of assets."""
        return len(self.seeds)

    @property
    def t(self) -> float:
        """Time of the next sample (s since the end of warm-up)."""
        return self._samples / self.sensors.fs

    @property
    def faults(self) -> tuple[Faults, ...]:
        """Current faults per asset (as set; a down asset keeps its requested faults here)."""
        return tuple(self._faults)

    @property
    def ops(self) -> tuple[OperatingPoint, ...]:
        """Current operating point per asset."""
        return tuple(self._ops)

    @property
    def down(self) -> dict[int, str]:
        """Assets without data until their faults or operating point change: index -> reason."""
        return dict(self._down)

    def set_faults(self, asset: int, faults: Faults) -> None:
        """Change ``asset``'s faults from the next chunk on (the other assets are not touched)."""
        self._check_asset(asset)
        faults.__post_init__()
        if faults == self._faults[asset]:
            return
        self._faults[asset] = faults
        self._stateful[asset] = self._needs_sensor_state(faults)
        self._changed(asset)

    def set_operating_point(self, asset: int, op: OperatingPoint) -> None:
        """Change ``asset``'s operating point (speed set-point, load) from the next chunk on."""
        self._check_asset(asset)
        op.__post_init__()
        if op == self._ops[asset]:
            return
        self._ops[asset] = op
        self._changed(asset)

    # ----------------------------------------------------------------- stepping
    def step(self, duration_s: float = 0.1) -> FleetChunk:
        """Advance every asset ``duration_s`` (rounded to whole samples, at least one); return the chunk."""
        n = round(duration_s * self.sensors.fs) if math.isfinite(duration_s) else 0
        if n < 1:
            raise ValueError(f"duration_s={duration_s!r} is outside its valid range [1/fs, inf) s")
        self._apply_changes()
        failures = dict(self._down)
        restarted: set[int] = set()
        checkpoint = self._state().copy()
        raw = self._engine.advance(n, self._sub)
        while (diverged := np.flatnonzero(self._engine.failed)).size:
            # Re-run the chunk from the checkpoint with fresh columns for the diverged assets: their
            # non-finite values must not steer the engine's fleet-wide branches for the others.
            state = checkpoint.copy()
            for j in map(int, diverged):
                why = f"solver diverged in the chunk from t={self.t:.3f} s: {self._engine.fail_reason[j]}"
                _put_column(state, j, self._restart(j, why, give_up=j in restarted))
                restarted.add(j)
                failures[j] = self._down.get(j, f"{why}; restarted from a fresh warm-up")
                self._engine.failed[j] = False
                self._engine.fail_reason[j] = ""
            self._push_conditions()
            self._engine.state = state
            raw = self._engine.advance(n, self._sub)
        self._samples += n
        signals = self._measure(raw, failures)
        self._prev = signals
        return FleetChunk(signals, failures)

    # ----------------------------------------------------------------- internals
    def _check_asset(self, asset: int) -> None:
        if not (isinstance(asset, int | np.integer) and 0 <= asset < self.n):
            raise IndexError(f"asset={asset!r} is outside its valid range [0, {self.n})")

    @staticmethod
    def _needs_sensor_state(faults: Faults) -> bool:
        return faults.drift_signal is not None or faults.stuck_signal is not None

    @staticmethod
    def _down_reason(why: str) -> str:
        return f"down until its faults or operating point change ({why})"

    def _changed(self, asset: int) -> None:
        if asset in self._down:
            self._retry.add(asset)
        self._dirty = True

    def _state(self) -> EngineState:
        return _engine_state(self._engine)

    def _engine_faults(self) -> list[Faults]:
        """What the engine integrates: a down asset runs a healthy placeholder (its output is dropped)."""
        return [Faults() if j in self._down else f for j, f in enumerate(self._faults)]

    def _engine_ops(self) -> list[OperatingPoint]:
        return [OperatingPoint() if j in self._down else o for j, o in enumerate(self._ops)]

    def _push_conditions(self) -> None:
        # set_conditions takes every run at once (O(N)); queued changes make that one call per chunk.
        if self._dirty:
            self._engine.set_conditions(self._engine_faults(), self._engine_ops())
            self._dirty = False

    def _apply_changes(self) -> None:
        if self._retry:
            state = self._state().copy()
            for j in sorted(self._retry):
                _put_column(state, j, self._restart(j, "restart at new conditions diverged", give_up=False))
            self._retry.clear()
            self._engine.state = state
        self._push_conditions()

    def _warm(
        self, faults: Sequence[Faults], ops: Sequence[OperatingPoint], seeds: Sequence[int]
    ) -> tuple[PumpEngine, list[np.random.Generator]]:
        """A warmed-up engine of these runs, built exactly as ``LiveSimulator`` builds its own."""
        engine = PumpEngine(self.params, len(seeds), self._dt)
        engine.set_conditions(faults, ops)
        rngs, thetas = zip(*(_initial_rng(s) for s in seeds), strict=True)
        engine.state = engine.steady_guess(np.array(thetas))
        n_warm = round(self.warmup_s * self.sensors.fs)
        if n_warm:
            engine.advance(n_warm, self._sub, record=False)
        return engine, list(rngs)

    def _restart(self, j: int, why: str, give_up: bool) -> EngineState:
        """One-run state of asset ``j`` after a fresh warm-up at its conditions, with fresh sensors.

        If that warm-up diverges too (or ``give_up``: it diverged again after a restart), the asset goes
        down and the returned state is a healthy nominal pump, a finite placeholder whose output is dropped.
        """
        self._dirty = True  # a down asset's engine conditions differ from its requested ones
        self._models[j] = None
        self._prev[j] = None
        if not give_up:
            engine, rngs = self._warm([self._faults[j]], [self._ops[j]], [self.seeds[j]])
            self._rngs[j] = rngs[0]
            if not engine.failed[0]:
                self._down.pop(j, None)
                return _engine_state(engine)
            why = f"{why}; its restart diverged too: {engine.fail_reason[0]}"
        self._down[j] = self._down_reason(why)
        engine, _ = self._warm([Faults()], [OperatingPoint()], [self.seeds[j]])
        if engine.failed[0]:
            raise RuntimeError(f"live fleet: a healthy nominal pump diverges: {engine.fail_reason[0]}")
        return _engine_state(engine)

    def _measure(self, raw: dict[str, np.ndarray], skip: dict[int, str]) -> list[Chunk | None]:
        """Sensor readings of every asset not in ``skip``, each from its own noise stream."""
        cfg = self.sensors
        out: list[Chunk | None] = [None] * self.n
        ok = np.ones(self.n, dtype=bool)
        ok[list(skip)] = False
        # Without drift, stuck or vibration a SensorModel's state never reaches its output, so the
        # vectorised first-chunk code gives what each asset's own SensorModel would give.
        stateful = ok & (self._stateful | cfg.vibration)
        plain = np.flatnonzero(ok & ~stateful).tolist()
        for j in np.flatnonzero(stateful).tolist():
            model = self._models[j]
            if model is None:
                model = self._models[j] = SensorModel(cfg, self._rngs[j])
                last = self._prev[j]
                if last is not None:  # a stuck sensor freezes at the previous chunk's last reading
                    model._last = {name: float(sig[-1]) for name, sig in last.items()}
            out[j] = model.measure({k: v[:, j] for k, v in raw.items()}, self._faults[j])
        if plain:
            faults = [self._faults[j] for j in plain]
            rngs = [self._rngs[j] for j in plain]
            for j, sig in zip(plain, measure_batch(raw, plain, cfg, faults, rngs), strict=True):
                out[j] = sig
                self._models[j] = None  # measure() would have reset its drift and stuck state
        return out


def _put_column(state: EngineState, j: int, one: EngineState) -> None:
    """Write the single run of ``one`` into run ``j`` of ``state`` (runs are the trailing axis)."""
    for name, value in state.__dict__.items():
        value[..., j] = getattr(one, name)[..., 0]


def _engine_state(engine: PumpEngine) -> EngineState:
    assert engine.state is not None  # set by _warm
    return engine.state
