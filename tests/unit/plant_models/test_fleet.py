"""LiveFleet: per asset bit-identical to a LiveSimulator (and one long run), changes isolated, divergence
isolated and reported, bad input refused with the field's name."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plant_models import (
    Faults,
    FleetChunk,
    LiveFleet,
    LiveSimulator,
    OperatingPoint,
    Scenario,
    SensorConfig,
    simulate,
)
from plant_models.engine import PumpEngine

SEEDS = [3, 7, 11, 5]
OPS = [
    OperatingPoint(),
    OperatingPoint(speed_rpm=900.0),
    OperatingPoint(load_area_factor=1.3),
    OperatingPoint(speed_rpm=1000.0, load_area_factor=0.9),
]
FAULTS = [
    Faults(),
    Faults.from_severity(leak=0.5, leak_cylinder=2),
    Faults.from_severity(blocked_inlet=1.0),  # cavitates: exercises the engine's fleet-wide branches
    Faults(stuck_signal="flow"),
]


def assert_same(fleet_chunk: dict[str, np.ndarray] | None, ref: dict[str, np.ndarray]) -> None:
    assert fleet_chunk is not None
    assert fleet_chunk.keys() == ref.keys()
    for name, sig in ref.items():
        assert np.array_equal(fleet_chunk[name], sig), name


# Before chunk k: asset -> (faults or None, operating point or None), for the fleet and the references.
CHANGES: dict[int, dict[int, tuple[Faults | None, OperatingPoint | None]]] = {
    1: {
        0: (Faults(drift_signal="pressure", drift_rate=1.0), None),
        1: (None, OperatingPoint(speed_rpm=1000.0)),
    },
    2: {0: (Faults(drift_signal="pressure", drift_rate=-2.0), None), 3: (Faults(), None)},
    3: {0: (Faults.from_severity(bearing=1.0), OperatingPoint(load_area_factor=0.5))},
    4: {
        3: (Faults(stuck_signal="current"), None),
        0: (Faults(drift_signal="pressure", drift_rate=1.0), None),
    },
}


@pytest.mark.parametrize(
    "sensors",
    [SensorConfig(), SensorConfig(fs=500.0, vibration=True)],  # 500 Hz: two substeps per sample
    ids=["default", "vibration_500Hz"],
)
def test_chunks_equal_live_simulators_through_changes_between_chunks(sensors: SensorConfig) -> None:
    fleet = LiveFleet(SEEDS, OPS, FAULTS, sensors=sensors)
    refs = [LiveSimulator(o, f, s, sensors=sensors) for s, o, f in zip(SEEDS, OPS, FAULTS, strict=True)]
    durations = [0.1, 0.25, 0.1, 0.002, 0.148, 0.1]
    for k, d in enumerate(durations):
        for i, (f, o) in CHANGES.get(k, {}).items():
            if f is not None:
                fleet.set_faults(i, f)
                refs[i].set_faults(f)
            if o is not None:
                fleet.set_operating_point(i, o)
                refs[i].set_operating_point(o)
        chunk = fleet.step(d)
        assert chunk.failures == {}
        for i, ref in enumerate(refs):
            assert_same(chunk.signals[i], ref.step(d))
    assert fleet.t == pytest.approx(sum(durations))
    assert (
        fleet.faults[0] == Faults(drift_signal="pressure", drift_rate=1.0)
        and fleet.ops[1].speed_rpm == 1000.0
    )


def test_unchanged_asset_equals_one_long_run() -> None:
    fleet = LiveFleet(SEEDS[:3], OPS[:3], FAULTS[:3])
    chunks = [fleet.step(d) for d in (0.1, 0.35, 0.05, 0.5)]
    fleet.set_faults(0, Faults.from_severity(leak=1.0))  # a neighbour's change does not reach asset 2
    chunks.append(fleet.step(0.5))
    long = simulate(Scenario(faults=FAULTS[2], op=OPS[2], seed=SEEDS[2], duration_s=1.5))
    for name, sig in long.items():
        assert np.array_equal(np.concatenate([c.signals[2][name] for c in chunks]), sig), name  # type: ignore[index]


def test_queued_changes_reach_the_engine_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = LiveFleet(SEEDS, OPS, FAULTS)
    calls: list[int] = []
    real = PumpEngine.set_conditions

    def counting(engine: PumpEngine, faults: Sequence[Faults], ops: Sequence[OperatingPoint]) -> None:
        calls.append(len(faults))
        real(engine, faults, ops)

    monkeypatch.setattr(PumpEngine, "set_conditions", counting)
    fleet.step(0.01)
    assert calls == []  # nothing changed: no call
    for i in range(4):
        fleet.set_faults(i, Faults.from_severity(bearing=0.5))
        fleet.set_operating_point(i, OperatingPoint(speed_rpm=800.0))
    fleet.set_faults(2, FAULTS[2])  # setting the same value again is no change
    fleet.set_faults(2, FAULTS[2])
    fleet.step(0.01)
    assert calls == [4]


def _poison(fleet: LiveFleet, asset: int) -> None:
    """Make ``asset``'s solution non-finite, as a diverging integration would."""
    state = fleet._engine.state
    assert state is not None
    state.p_out[asset] = math.nan


def test_diverging_asset_is_reported_and_restarted_the_others_are_untouched() -> None:
    def run(poison: bool) -> list[FleetChunk]:
        fleet = LiveFleet(SEEDS[:3], OPS[:3], FAULTS[:3])
        out = [fleet.step(0.1)]
        if poison:
            _poison(fleet, 1)
        out += [fleet.step(0.1) for _ in range(3)]
        return out

    clean, hit = run(False), run(True)
    assert [c.failures.keys() for c in hit] == [set(), {1}, set(), set()]
    assert "solver diverged" in hit[1].failures[1] and "restarted" in hit[1].failures[1]
    assert hit[1].signals[1] is None
    # Without the re-run from the checkpoint, the NaN run would steer the engine's fleet-wide branches and
    # change assets 0 and 2 (the blocked inlet of asset 2 cavitates).
    for c, h in zip(clean, hit, strict=True):
        for i in (0, 2):
            expected = c.signals[i]
            assert expected is not None
            assert_same(h.signals[i], expected)
    # Restarted: a fresh pump with its seed whose warm-up also covered the lost chunk (0.3 + 0.1 s).
    ref = LiveSimulator(OPS[1], FAULTS[1], SEEDS[1], warmup_s=0.4)
    for h in hit[2:]:
        assert_same(h.signals[1], ref.step(0.1))


class _RestartsWithLeakDiverge(LiveFleet):
    """A fleet whose one-asset warm-ups diverge while the asset has a leak (a restart that cannot succeed)."""

    def _warm(
        self, faults: Sequence[Faults], ops: Sequence[OperatingPoint], seeds: Sequence[int]
    ) -> tuple[PumpEngine, list[np.random.Generator]]:
        engine, rngs = super()._warm(faults, ops, seeds)
        if len(seeds) == 1 and faults[0].leak > 0.0:
            assert engine.state is not None
            engine.state.p_out[0] = math.nan
            engine.failed[0], engine.fail_reason[0] = True, "poisoned warm-up"
        return engine, rngs


def test_asset_whose_restart_diverges_is_down_until_its_conditions_change() -> None:
    fleet = _RestartsWithLeakDiverge(SEEDS[:3], OPS[:3], FAULTS[:3])
    clean = LiveFleet(SEEDS[:3], OPS[:3], FAULTS[:3])
    first = fleet.step(0.1)
    assert_same(first.signals[1], clean.step(0.1).signals[1])  # type: ignore[arg-type]
    _poison(fleet, 1)
    chunks = [fleet.step(0.1) for _ in range(3)]
    for c in chunks:
        assert list(c.failures) == [1] and c.signals[1] is None
        assert "down until its faults or operating point change" in c.failures[1]
    assert "poisoned warm-up" in chunks[0].failures[1] and list(fleet.down) == [1]
    # The others keep their exact course (the down asset runs a finite healthy placeholder).
    ref2 = LiveSimulator(OPS[2], FAULTS[2], SEEDS[2])
    assert_same(first.signals[2], ref2.step(0.1))
    for c in chunks:
        assert_same(c.signals[2], ref2.step(0.1))
    # A change of its faults retries the restart: back up as a fresh pump at the new conditions.
    fleet.set_faults(1, Faults())
    after = fleet.step(0.1)
    assert after.failures == {} and fleet.down == {}
    assert_same(after.signals[1], LiveSimulator(OPS[1], Faults(), SEEDS[1]).step(0.1))
    assert_same(after.signals[2], ref2.step(0.1))


@settings(max_examples=8, deadline=None)
@given(
    plan=st.lists(
        st.tuples(
            st.integers(1, 60),  # chunk length in samples
            st.integers(0, 2),  # asset changed before the chunk
            st.sampled_from(["leak", "inlet", "speed", "drift", "stuck", "none"]),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_schedule_of_changes_matches_live_simulators(plan: list[tuple[int, int, str]]) -> None:
    change = {
        "leak": (Faults.from_severity(leak=1.0), None),
        "inlet": (Faults.from_severity(blocked_inlet=0.9), None),
        "speed": (None, OperatingPoint(speed_rpm=700.0)),
        "drift": (Faults(drift_signal="speed", drift_rate=3.0), None),
        "stuck": (Faults(stuck_signal="pressure"), None),
        "none": (Faults(), OperatingPoint()),
    }
    fleet = LiveFleet(SEEDS[:3], OPS[:3], FAULTS[:3], warmup_s=0.05)
    refs = [
        LiveSimulator(o, f, s, warmup_s=0.05) for s, o, f in zip(SEEDS[:3], OPS[:3], FAULTS[:3], strict=True)
    ]
    for n, asset, kind in plan:
        f, o = change[kind]
        if f is not None:
            fleet.set_faults(asset, f)
            refs[asset].set_faults(f)
        if o is not None:
            fleet.set_operating_point(asset, o)
            refs[asset].set_operating_point(o)
        chunk = fleet.step(n / 1000.0)
        for i, ref in enumerate(refs):
            assert_same(chunk.signals[i], ref.step(n / 1000.0))


def test_default_parameters_are_those_of_live_simulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Given no parameters, the fleet simulates the plant a LiveSimulator simulates. The variable names the
    calibrated parameter file the plant loads by default (issue 11); a missing file must fail both alike."""
    monkeypatch.setenv("FEDTWIN_PLANT_PARAMS_FILE", str(tmp_path / "missing-params.json"))
    outcomes: list[object] = []
    for make in (lambda: LiveSimulator(warmup_s=0.0).params, lambda: LiveFleet([0], warmup_s=0.0).params):
        try:
            outcomes.append(make())
        except ValueError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda: LiveFleet([]), "seeds must hold one seed per asset"),
        (lambda: LiveFleet([1, 2], ops=[OperatingPoint()]), "ops and faults need one entry per seed (2)"),
        (lambda: LiveFleet([1, -2]), "asset 1: seed=-2 is outside its valid range"),
        (lambda: LiveFleet([1], warmup_s=-1.0), "asset 0: warmup_s=-1.0 is outside its valid range"),
        (lambda: LiveFleet([1]).step(0.0), "duration_s=0.0 is outside its valid range [1/fs, inf)"),
        (lambda: LiveFleet([1]).step(math.nan), "duration_s=nan"),
        (lambda: LiveFleet([1, 2]).set_faults(2, Faults()), "asset=2 is outside its valid range [0, 2)"),
        (lambda: LiveFleet([1]).set_operating_point(-1, OperatingPoint()), "asset=-1 is outside"),
    ],
)
def test_bad_input_is_refused_naming_the_field(make, needle: str) -> None:
    with pytest.raises((ValueError, IndexError)) as info:
        make()
    assert needle in str(info.value)
