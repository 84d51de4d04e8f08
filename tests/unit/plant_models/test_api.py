"""Behaviour of the public API: determinism, live chunking, validation, failure isolation, sweeps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plant_models import (
    ALL_FAULT_SETS,
    FAULTS,
    SIGNALS,
    Faults,
    LiveSimulator,
    OperatingPoint,
    PumpParams,
    Scenario,
    SensorConfig,
    plot_overview,
    simulate,
    simulate_batch,
    sweep,
)
from plant_models.runner import _run_isolated

SHORT = 0.5


def test_simulate_returns_steady_signals_of_requested_length() -> None:
    sig = simulate(Scenario(duration_s=SHORT, sensors=SensorConfig(fs=2000.0)))
    assert tuple(sig) == SIGNALS
    assert all(v.shape == (1000,) and np.isfinite(v).all() for v in sig.values())
    # Warm-up is discarded: the first 100 ms already sit at the operating point.
    assert abs(sig["speed"][:100].mean() - 1916.0) < 3.0


def test_deterministic_per_seed_and_seeds_differ() -> None:
    a, b = simulate(Scenario(seed=11, duration_s=SHORT)), simulate(Scenario(seed=11, duration_s=SHORT))
    c = simulate(Scenario(seed=12, duration_s=SHORT))
    for k in SIGNALS:
        assert np.array_equal(a[k], b[k])
        assert not np.array_equal(a[k], c[k])


def test_batch_equals_single_runs() -> None:
    scs = [
        Scenario(faults=Faults.from_severity(leak=0.5), seed=1, duration_s=SHORT),
        Scenario(faults=Faults.from_severity(bearing=0.5), seed=2, duration_s=SHORT),
    ]
    batch = simulate_batch(scs)
    for sc, res in zip(scs, batch, strict=True):
        assert res.signals is not None
        single = simulate(sc)
        for k in SIGNALS:
            np.testing.assert_allclose(res.signals[k], single[k], rtol=0, atol=1e-9)


def test_live_chunks_equal_one_long_run() -> None:
    faults = Faults.from_severity(leak=0.4, bearing=0.2)
    op = OperatingPoint(speed_rpm=900.0)
    long = simulate(Scenario(faults=faults, op=op, seed=5, duration_s=1.0))
    live = LiveSimulator(op=op, faults=faults, seed=5)
    chunks = [live.step(d) for d in (0.1, 0.25, 0.001, 0.149, 0.5)]
    assert live.t == pytest.approx(1.0)
    for k in SIGNALS:
        assert np.array_equal(np.concatenate([c[k] for c in chunks]), long[k])


def test_live_changes_between_chunks_are_continuous() -> None:
    cfg = SensorConfig(noise_pressure=0.0, quant_pressure=0.0, noise_speed=0.0, quant_speed=0.0)
    changed, unchanged = LiveSimulator(seed=3, sensors=cfg), LiveSimulator(seed=3, sensors=cfg)
    before = changed.step(0.3)
    unchanged.step(0.3)
    state = changed.state
    changed.set_faults(Faults.from_severity(leak=1.0, bearing=1.0))
    changed.set_operating_point(OperatingPoint(speed_rpm=800.0, load_area_factor=1.3))
    for name, value in state.__dict__.items():  # parameters change, the physical state does not jump
        assert np.array_equal(value, getattr(changed.state, name)), name
    after, ref = changed.step(2.0), unchanged.step(2.0)
    # One sample after the change the pressure can only have moved at the hose's finite rate
    # (K/V * flow change ~ 0.6 bar/ms here), and the speed not at all beyond what inertia allows.
    assert abs(after["pressure"][0] - ref["pressure"][0]) < 1.0
    assert abs(after["speed"][0] - ref["speed"][0]) < 1.0
    assert abs(after["speed"][0] - before["speed"][-1]) < 5.0
    # New speed reached, less the proportional loop's extra droop under the worn bearing (~0.4 %).
    assert after["speed"][-500:].mean() == pytest.approx(1600.0, rel=0.01)
    assert after["speed"][-500:].mean() < ref["speed"][-500:].mean() * 800.0 / 958.0


def test_sensor_faults_drift_and_stuck() -> None:
    cfg = SensorConfig()
    base = simulate(Scenario(seed=4, duration_s=1.0, sensors=cfg))
    drift = simulate(Scenario(faults=Faults(drift_signal="pressure", drift_rate=0.5), seed=4, duration_s=1.0))
    stuck = simulate(Scenario(faults=Faults(stuck_signal="flow"), seed=4, duration_s=1.0))
    offset = drift["pressure"] - base["pressure"]
    assert offset[-1] == pytest.approx(0.5, abs=2 * cfg.quant_pressure)
    assert np.all(np.diff(offset) > -2 * cfg.quant_pressure)
    assert np.ptp(stuck["flow"]) == 0.0
    assert np.array_equal(stuck["pressure"], base["pressure"])  # other sensors untouched
    assert Faults(stuck_signal="flow").labels().sum() == 0  # sensor faults are not in FAULTS


def test_live_sensor_fault_appears_mid_run_and_is_chunk_invariant() -> None:
    def run(chunks: list[float], rate: float = 1.0) -> np.ndarray:
        live = LiveSimulator(seed=9)
        out = [live.step(0.2)]
        live.set_faults(Faults(drift_signal="current", drift_rate=rate))
        out += [live.step(d) for d in chunks]
        return np.concatenate([o["current"] for o in out])

    a, b = run([0.3]), run([0.1, 0.05, 0.15])
    assert np.array_equal(a, b)
    # Against the same run without drift (same noise): 1 A/s for 0.3 s, up to quantisation.
    offset = a - run([0.3], rate=0.0)
    assert np.all(offset[:200] == 0.0)
    assert offset[-1] == pytest.approx(0.3, abs=0.002)


@pytest.mark.parametrize(
    ("make", "name", "rng"),
    [
        (lambda: Faults(leak=0.05), "leak", "[0, 0.036]"),
        (lambda: Faults(leak=-0.01), "leak", "[0, 0.036]"),
        (lambda: Faults(inlet_area_factor=0.2), "inlet_area_factor", "[0.3, 1]"),
        (lambda: Faults(inlet_area_factor=1.2), "inlet_area_factor", "[0.3, 1]"),
        (lambda: Faults(inlet_area_factor=float("nan")), "inlet_area_factor", "[0.3, 1]"),
        (lambda: Faults(inlet_cylinder=-1), "inlet_cylinder", "{0, 1, 2}"),
        (lambda: Faults(broken_winding=1.5), "broken_winding", "[0, 1]"),
        (lambda: Faults(bearing_friction=1e-3), "bearing_friction", "[0, 0.0006]"),
        (lambda: Faults(leak_cylinder=3), "leak_cylinder", "{0, 1, 2}"),
        (lambda: Faults.from_severity(leak=1.5), "severity of leak", "[0, 1]"),
        (lambda: OperatingPoint(speed_rpm=0.0), "speed_rpm", "(0, 1500]"),
        (lambda: OperatingPoint(load_area_factor=-1.0), "load_area_factor", "[0.2, 5]"),
        (lambda: OperatingPoint(back_pressure_bar=-1.0), "back_pressure_bar", "[0, 30]"),
        (lambda: PumpParams(valve_max_area_m2=-1e-4), "valve_max_area_m2", "(0, inf]"),
        (lambda: PumpParams(load_area_m2=0.0), "load_area_m2", "(0, inf]"),
        (lambda: PumpParams(seal_leak_area_m2=-1e-6), "seal_leak_area_m2", "[0, inf]"),
        (lambda: PumpParams(air_fraction=0.5), "air_fraction", "[0, 0.1]"),
        (lambda: PumpParams(dead_volume_m3=float("nan")), "dead_volume_m3", "(0, inf]"),
        (lambda: PumpParams(valve_open_pa=0.2e5), "valve_open_pa", "(30000, inf]"),
        (lambda: SensorConfig(fs=10.0), "fs", "[100, 20000]"),
        (lambda: Scenario(duration_s=0.0), "duration_s", "(0, 3600]"),
        (lambda: LiveSimulator().step(0.0), "duration_s", "[1/fs, inf)"),
    ],
)
def test_non_physical_parameters_raise_with_name_and_range(make, name: str, rng: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert name in str(info.value) and rng in str(info.value)


def test_invalid_scenario_in_batch_is_reported_and_others_survive() -> None:
    good = [Scenario(seed=s, duration_s=0.2, name=f"good{s}") for s in range(3)]
    bad_op = OperatingPoint()
    object.__setattr__(bad_op, "speed_rpm", -5.0)  # bypass validation, as a corrupted config would
    bad = Scenario(duration_s=0.2, name="broken")
    object.__setattr__(bad, "op", bad_op)
    results = simulate_batch([good[0], bad, good[1], good[2]])
    assert [r.ok for r in results] == [True, False, True, True]
    assert "broken" in results[1].error and "speed_rpm" in results[1].error  # type: ignore[operator]
    for r, g in zip([results[0], results[2], results[3]], good, strict=True):
        assert r.scenario is g and r.signals is not None


def test_diverging_run_is_isolated_from_its_batch() -> None:
    good = Scenario(seed=1, duration_s=0.2, name="fine")
    nan_faults = Faults()
    object.__setattr__(nan_faults, "bearing_friction", float("nan"))
    bad = Scenario(seed=1, duration_s=0.2, name="nan-bearing")
    object.__setattr__(bad, "faults", nan_faults)
    res = _run_isolated([good, bad], PumpParams(), truth=False)  # skips validation on purpose
    assert res[0].ok and res[0].signals is not None and np.isfinite(res[0].signals["pressure"]).all()
    assert not res[1].ok and "nan-bearing" in res[1].error and "diverged" in res[1].error  # type: ignore[operator]
    np.testing.assert_array_equal(res[0].signals["pressure"], simulate(good)["pressure"])


def test_sweep_design_and_labels() -> None:
    ops = [OperatingPoint(), OperatingPoint(speed_rpm=800.0, load_area_factor=1.2)]
    scs = sweep(ALL_FAULT_SETS, severities=[0.5, 1.0], operating_points=ops, seeds=[0, 1], duration_s=0.5)
    assert len(scs) == (1 + 7 * 2) * 2 * 2
    assert len({s.id for s in scs}) == len(scs)
    labels = np.array([s.labels() for s in scs])
    assert labels.shape == (len(scs), len(FAULTS))
    assert {tuple(row) for row in labels} == {tuple(int(n in fs) for n in FAULTS) for fs in ALL_FAULT_SETS}
    worst = next(
        s
        for s in scs
        if s.faults.active() == FAULTS and s.name.startswith("leak+blocked_inlet+bearing_s1.00")
    )
    np.testing.assert_allclose(worst.faults.severities(), [1.0, 1.0, 1.0])
    assert worst.faults.inlet_area_factor == pytest.approx(0.53)
    assert Faults.from_severity(blocked_inlet=0.0).inlet_area_factor == 1.0  # healthy valve: full area


@pytest.mark.parametrize(
    ("severity", "leak", "factor", "bearing"),
    [
        (0.0, 0.0, 1.0, 0.0),
        (0.05, 0.0018, 0.9, 3e-5),  # inside the reference's nominal variants for all three
        (0.1, 0.0036, 0.8, 6e-5),  # the accuracy study's mildest level
        (0.55, 0.0198, 0.665, 3.3e-4),
        (1.0, 0.036, 0.53, 6e-4),
    ],
)
def test_severity_maps_onto_the_reference_ranges(
    severity: float, leak: float, factor: float, bearing: float
) -> None:
    f = Faults.from_severity(severity, severity, severity)
    assert (f.leak, f.inlet_area_factor, f.bearing_friction) == pytest.approx((leak, factor, bearing))
    np.testing.assert_allclose(f.severities(), [severity] * 3, atol=1e-12)
    assert sweep(severities=[0.5], seeds=[3]) == sweep(severities=[0.5], seeds=[3])  # reproducible design


def test_sweep_rejects_unknown_fault() -> None:
    with pytest.raises(ValueError, match="cavitation"):
        sweep([("cavitation",)])


def test_vibration_is_optional_and_rises_with_bearing_wear() -> None:
    cfg = SensorConfig(vibration=True)
    h = simulate(Scenario(seed=2, duration_s=SHORT, sensors=cfg))
    w = simulate(Scenario(faults=Faults.from_severity(bearing=1.0), seed=2, duration_s=SHORT, sensors=cfg))
    assert "vibration" in h and "vibration" not in simulate(Scenario(duration_s=0.05))
    assert w["vibration"].std() > 1.5 * h["vibration"].std()


def test_plot_overview_writes_png(tmp_path: Path) -> None:
    out = plot_overview(tmp_path / "sub" / "overview.png", duration_s=0.5)
    assert out.exists() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_import_has_no_side_effects() -> None:
    code = "import sys, plant_models; print('matplotlib' in sys.modules, 'prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
