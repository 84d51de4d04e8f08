"""Shared simulations for the plant physics tests: one vectorised batch, reused by every test."""

from __future__ import annotations

from dataclasses import replace

import pytest

from plant_models import Faults, OperatingPoint, RunResult, Scenario, SensorConfig, simulate_batch

NOISELESS = SensorConfig(
    noise_pressure=0.0,
    noise_flow=0.0,
    noise_speed=0.0,
    noise_current=0.0,
    quant_pressure=0.0,
    quant_flow=0.0,
    quant_speed=0.0,
    quant_current=0.0,
)

CASES: dict[str, tuple[Faults, OperatingPoint, SensorConfig]] = {
    "healthy": (Faults(), OperatingPoint(), NOISELESS),
    "healthy_noisy": (Faults(), OperatingPoint(), SensorConfig()),
    "leak_low": (Faults.from_severity(leak=0.1), OperatingPoint(), NOISELESS),
    "leak_half": (Faults.from_severity(leak=0.5), OperatingPoint(), NOISELESS),
    "leak_full": (Faults.from_severity(leak=1.0), OperatingPoint(), NOISELESS),
    "leak_cyl2": (Faults.from_severity(leak=1.0, leak_cylinder=2), OperatingPoint(), NOISELESS),
    "inlet_low": (Faults.from_severity(blocked_inlet=0.1), OperatingPoint(), NOISELESS),
    "inlet_half": (Faults.from_severity(blocked_inlet=0.5), OperatingPoint(), NOISELESS),
    "inlet_full": (Faults.from_severity(blocked_inlet=1.0), OperatingPoint(), NOISELESS),
    "inlet_cyl1": (
        replace(Faults.from_severity(blocked_inlet=1.0), inlet_cylinder=1),
        OperatingPoint(),
        NOISELESS,
    ),
    "bearing_low": (Faults.from_severity(bearing=0.1), OperatingPoint(), NOISELESS),
    "bearing_half": (Faults.from_severity(bearing=0.5), OperatingPoint(), NOISELESS),
    "bearing_full": (Faults.from_severity(bearing=1.0), OperatingPoint(), NOISELESS),
    "winding_low": (Faults(broken_winding=0.1), OperatingPoint(), NOISELESS),
    "winding_half": (Faults(broken_winding=0.5), OperatingPoint(), NOISELESS),
    "winding_full": (Faults(broken_winding=1.0), OperatingPoint(), NOISELESS),
    "all_full": (Faults.from_severity(1.0, 1.0, 1.0), OperatingPoint(), NOISELESS),
    "small_orifice": (Faults(), OperatingPoint(load_area_factor=0.2), NOISELESS),
    "back_5bar": (Faults(), OperatingPoint(back_pressure_bar=5.0), NOISELESS),
    "slow": (Faults(), OperatingPoint(speed_rpm=700.0), NOISELESS),
}


@pytest.fixture(scope="session")
def runs() -> dict[str, RunResult]:
    """Two seconds of each case (seed 7), with physical ground truth."""
    scenarios = [
        Scenario(faults=f, op=o, sensors=s, seed=7, duration_s=2.0, name=k) for k, (f, o, s) in CASES.items()
    ]
    results = simulate_batch(scenarios, truth=True)
    out = {r.scenario.name: r for r in results}
    bad = {k: r.error for k, r in out.items() if not r.ok}
    assert not bad, bad
    return out
