"""Physics checks of the triplex pump model against first principles and the reference's calibration facts.

Hand-checkable quantities come from the geometry, the oil + air law and the orifice law, never from the
engine's own balance: e.g. the delivered volume per revolution follows from the cylinder volumes at the two
valve-closing pressures, and the leak from the orifice law at the cylinder pressure.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant_models import P_ATM, PumpParams, RunResult
from plant_models.calibrate import order_amplitudes, signal_targets

FS = 1000.0
PARAMS = PumpParams()
K_ORIFICE = PARAMS.discharge_coeff * math.sqrt(2.0 / PARAMS.fluid_density_kg_m3)  # Q = K * A * sqrt(dp)


def rel_volume(p: float) -> float:
    """Oil with entrained air, isothermal: volume at ``p`` relative to atmospheric (written out by hand)."""
    a, k = PARAMS.air_fraction, PARAMS.bulk_modulus_pa
    return (1.0 - a) * (1.0 - (p - P_ATM) / k) + a * P_ATM / p


def crank_hz(res: RunResult) -> float:
    assert res.signals is not None
    return float(res.signals["speed"].mean()) / PARAMS.gear_ratio / 60.0


def flow_order(res: RunResult, order: int) -> float:
    assert res.signals is not None
    return order_amplitudes(res.signals["flow"], FS, crank_hz(res), (order,))[order]


def mean(res: RunResult, key: str) -> float:
    src = res.signals if key in ("pressure", "flow", "speed", "current") else res.truth
    assert src is not None
    return float(np.mean(src[key]))


def test_healthy_pump_matches_the_reference_calibration_facts(runs: dict[str, RunResult]) -> None:
    res = runs["healthy"]
    assert res.signals is not None
    t = signal_targets(res.signals, FS, PARAMS.gear_ratio)
    assert t["mean_pressure_bar"] == pytest.approx(7.25, abs=0.1)
    assert 0.02 < t["ripple_std_bar"] < 0.04  # reference ~0.03 bar (0.4 % of the mean)
    assert 0.8 < t["order6_over_order3"] < 1.25  # reference: equal
    for o in (9, 12, 15):
        assert 0.15 < t[f"order{o}_over_order3"] < 0.45  # reference 0.25-0.3
    assert mean(res, "power_shaft") == pytest.approx(640.0, rel=0.05)
    assert t["mean_flow_lpm"] == pytest.approx(38.0, rel=0.03)
    assert t["mean_speed_rpm"] / PARAMS.gear_ratio == pytest.approx(958.0, rel=0.01)


def test_pressure_spectrum_lines_sit_at_multiples_of_three_crank_orders(runs: dict[str, RunResult]) -> None:
    res = runs["healthy_noisy"]
    assert res.signals is not None
    amp = order_amplitudes(res.signals["pressure"], FS, crank_hz(res), range(1, 16))
    # Three identical cylinders 120 deg apart: only orders 3, 6, 9, ... survive the sum.
    for o in (1, 2, 4, 5, 7, 8):
        assert amp[o] < 0.2 * amp[3], o


def test_delivered_volume_per_revolution_is_displacement_times_volumetric_efficiency(
    runs: dict[str, RunResult],
) -> None:
    res = runs["healthy"]
    assert res.truth is not None
    # Each cylinder holds V_bdc of oil+air at the inlet valve's closing pressure (p_atm - crack) and keeps
    # V_dead at the outlet valve's closing pressure (manifold + crack); the rest is delivered.
    v_dead = PARAMS.dead_volume_m3
    v_bdc = v_dead + PARAMS.plunger_area_m2 * 2.0 * PARAMS.crank_radius_m
    p_suction_end = P_ATM - PARAMS.valve_crack_pa
    p_discharge_end = mean(res, "p_out") + PARAMS.valve_crack_pa
    per_stroke = v_bdc / rel_volume(p_suction_end) - v_dead / rel_volume(p_discharge_end)
    eta_v = per_stroke / (PARAMS.displacement_m3_per_rev / 3.0)
    assert 0.985 < eta_v < 0.995  # the air costs ~0.7 % of the stroke (dead-volume re-expansion)
    delivered_per_rev = mean(res, "q_del") / crank_hz(res)
    assert delivered_per_rev == pytest.approx(PARAMS.displacement_m3_per_rev * eta_v, rel=2e-3)
    # The flow sensor sees that content as volume at line pressure.
    line = delivered_per_rev * crank_hz(res) * rel_volume(mean(res, "p_out")) * 60_000.0
    assert mean(res, "flow") == pytest.approx(line, rel=1e-3)


@pytest.mark.parametrize("case", ["healthy", "leak_full", "inlet_full", "all_full", "small_orifice"])
def test_mass_balance_closes_over_whole_revolutions(runs: dict[str, RunResult], case: str) -> None:
    tr = runs[case].truth
    assert tr is not None
    # Sums over whole samples of 2 s: cylinder and manifold storage are bounded, so in = out.
    assert mean(runs[case], "q_in") == pytest.approx(
        mean(runs[case], "q_del") + mean(runs[case], "q_leak"), rel=2e-3
    )
    assert mean(runs[case], "q_load") == pytest.approx(mean(runs[case], "q_del"), rel=2e-3)


def test_leak_follows_the_orifice_law_at_the_cylinder_pressure(runs: dict[str, RunResult]) -> None:
    res = runs["leak_full"]
    assert res.truth is not None
    area = PARAMS.seal_leak_area_m2 + 0.036 * PARAMS.valve_max_area_m2
    dp = res.truth["p_cyl0"] - P_ATM
    law = K_ORIFICE * area * np.sign(dp) * np.sqrt(np.abs(dp))
    assert mean(res, "q_leak_cyl0") == pytest.approx(float(law.mean()), rel=0.02)
    # The delivery loses what leaks out while the cylinder compresses and discharges; oil drawn in from the
    # crankcase during suction only replaces inlet flow. So the loss lies between the net leak and the
    # total outward leak (the healthy pump has no seal leak).
    lost = mean(runs["healthy"], "q_del") - mean(res, "q_del")
    outward = float(np.maximum(law, 0.0).mean())
    assert mean(res, "q_leak") < lost < outward


def test_inlet_valve_flow_follows_its_characteristic(runs: dict[str, RunResult]) -> None:
    for case, factor in (("healthy", 1.0), ("inlet_full", 0.53)):
        tr = runs[case].truth
        assert tr is not None
        dp = P_ATM - tr["p_cyl0"]
        frac = np.clip((dp - PARAMS.valve_crack_pa) / (PARAMS.valve_open_pa - PARAMS.valve_crack_pa), 0, 1)
        law = K_ORIFICE * PARAMS.valve_max_area_m2 * factor * frac * np.sqrt(np.maximum(dp, 0.0))
        assert mean(runs[case], "q_in_cyl0") == pytest.approx(float(law.mean()), rel=0.01), case


@pytest.mark.parametrize("case", ["healthy", "leak_full", "inlet_full", "bearing_full", "all_full"])
def test_shaft_power_is_hydraulic_power_plus_losses(runs: dict[str, RunResult], case: str) -> None:
    res = runs[case]
    assert res.truth is not None and res.signals is not None
    omega_c = res.truth["q_del"] * 0.0 + res.signals["speed"] * (2.0 * math.pi / 60.0) / PARAMS.gear_ratio
    friction = float(np.mean(res.truth["torque_bearing"] * omega_c))
    losses = mean(res, "power_valves") + mean(res, "power_leak") + friction
    # The remainder is the air's compression work not returned within the step (< 1 %).
    assert mean(res, "power_shaft") == pytest.approx(mean(res, "power_hydraulic") + losses, rel=0.01)
    # Hydraulic power by hand: manifold gauge pressure times the delivered flow.
    assert mean(res, "power_hydraulic") == pytest.approx(
        (mean(res, "p_out") - P_ATM) * mean(res, "q_del"), rel=0.01
    )


@pytest.mark.parametrize("case", ["healthy", "bearing_full", "winding_full"])
def test_supply_power_is_shaft_power_plus_motor_losses(runs: dict[str, RunResult], case: str) -> None:
    res, f = runs[case], runs[case].scenario.faults
    assert res.truth is not None and res.signals is not None
    resistance = PARAMS.motor_resistance_ohm / (1.0 - 0.5 * f.broken_winding)
    copper = float(np.mean(resistance * res.truth["current_armature"] ** 2))
    omega_m = res.signals["speed"] * (2.0 * math.pi / 60.0)
    windage = float(np.mean(PARAMS.motor_viscous_nms * omega_m**2))
    supply = PARAMS.supply_voltage_v * mean(res, "current")
    assert supply == pytest.approx(mean(res, "power_shaft") + copper + windage, rel=0.01)


def test_current_follows_shaft_power_not_torque(runs: dict[str, RunResult]) -> None:
    # Same shaft power from the supply: at 700 rpm the crank torque is about the same but the power, and
    # with it the supply current, scales with speed.
    slow, nominal = runs["slow"], runs["healthy"]
    ratio_power = mean(slow, "power_shaft") / mean(nominal, "power_shaft")
    assert mean(slow, "current") / mean(nominal, "current") == pytest.approx(ratio_power, rel=0.05)
    assert ratio_power < 0.8


def test_lost_flow_barely_moves_mean_pressure_against_the_back_pressure(runs: dict[str, RunResult]) -> None:
    healthy, leak = runs["healthy"], runs["leak_full"]
    dq = mean(leak, "flow") / mean(healthy, "flow") - 1.0
    dp = mean(leak, "pressure") / mean(healthy, "pressure") - 1.0
    assert dq < -0.05
    assert abs(dp) < 0.02  # a pump feeding a 7 bar system: the drop above 7 bar is all that can move
    # The back-pressure sets the mean: 2 bar less source, 2 bar less at the sensor.
    assert mean(runs["back_5bar"], "pressure") == pytest.approx(mean(healthy, "pressure") - 2.0, abs=0.02)


def test_smaller_load_orifice_raises_pressure_by_the_orifice_law(runs: dict[str, RunResult]) -> None:
    q = mean(runs["small_orifice"], "q_load")
    base = mean(runs["healthy"], "q_load")
    r = PARAMS.pipe_resistance
    drop_small = r * q + (q / (K_ORIFICE * 0.2 * PARAMS.load_area_m2)) ** 2
    drop_nominal = r * base + (base / (K_ORIFICE * PARAMS.load_area_m2)) ** 2
    # Mean of a pulsating flow's square exceeds the square of the mean: allow the ripple's share.
    assert mean(runs["small_orifice"], "pressure") - 7.0 == pytest.approx(drop_small * 1e-5, rel=0.03)
    assert mean(runs["healthy"], "pressure") - 7.0 == pytest.approx(drop_nominal * 1e-5, rel=0.03)


@pytest.mark.parametrize(
    ("cases", "signal", "direction"),
    [
        (["healthy", "leak_low", "leak_half", "leak_full"], "flow", -1),
        (["healthy", "leak_low", "leak_half", "leak_full"], "order1", +1),
        (["healthy", "inlet_low", "inlet_half", "inlet_full"], "p_cyl_min", -1),
        (["healthy", "inlet_low", "inlet_half", "inlet_full"], "order1", +1),
        (["healthy", "bearing_low", "bearing_half", "bearing_full"], "current", +1),
        (["healthy", "bearing_low", "bearing_half", "bearing_full"], "speed", -1),
        (["healthy", "winding_low", "winding_half", "winding_full"], "current", +1),
        (["healthy", "winding_low", "winding_half", "winding_full"], "speed", -1),
    ],
)
def test_each_fault_moves_its_signals_monotonically_with_severity(
    runs: dict[str, RunResult], cases: list[str], signal: str, direction: int
) -> None:
    def value(case: str) -> float:
        if signal == "order1":
            return flow_order(runs[case], 1)
        if signal == "p_cyl_min":
            tr = runs[case].truth
            assert tr is not None
            return float(tr["p_cyl_min"].min())
        return mean(runs[case], signal)

    values = np.array([value(c) for c in cases])
    assert np.all(direction * np.diff(values) > 0.0), values


@pytest.mark.parametrize("case", ["leak_full", "leak_cyl2", "inlet_full", "inlet_cyl1"])
def test_one_cylinder_faults_have_a_once_per_revolution_signature(
    runs: dict[str, RunResult], case: str
) -> None:
    # One weak cylinder breaks the 120-degree symmetry: the first crank order appears in the flow.
    assert flow_order(runs[case], 1) > 0.2 * flow_order(runs[case], 3)
    assert flow_order(runs["healthy"], 1) < 0.01 * flow_order(runs["healthy"], 3)
    assert flow_order(runs["bearing_full"], 1) < 0.01 * flow_order(runs["bearing_full"], 3)


def test_blocked_inlet_starves_its_cylinder_only_when_severe(runs: dict[str, RunResult]) -> None:
    healthy, low, full = (runs[c] for c in ("healthy", "inlet_low", "inlet_full"))
    # Severity 0.1 (area factor 0.953): the valve still fills the cylinder, delivery unchanged (< 0.1 %).
    assert mean(low, "flow") == pytest.approx(mean(healthy, "flow"), rel=1e-3)
    # Severity 1 (0.53): the suction pressure of that cylinder falls towards zero, its air expands, the
    # cylinder does not fill and one third of the delivery starts late: a flow loss.
    tr = full.truth
    assert tr is not None
    assert float(tr["p_cyl_min"].min()) < 0.3 * float(healthy.truth["p_cyl_min"].min())  # type: ignore[index]
    assert mean(full, "flow") < 0.99 * mean(healthy, "flow")
    # A blocked inlet on another cylinder is the same fault, shifted by 120 degrees.
    assert mean(runs["inlet_cyl1"], "flow") == pytest.approx(mean(full, "flow"), rel=1e-3)


def test_speed_droops_under_load_and_scales_flow(runs: dict[str, RunResult]) -> None:
    slow, nominal = runs["slow"], runs["healthy"]
    # Proportional loop: crank speed = set-point (1.0731 x nominal) minus a droop that grows with load.
    assert mean(nominal, "speed") / PARAMS.gear_ratio == pytest.approx(958.0, rel=0.005)
    assert mean(slow, "speed") / PARAMS.gear_ratio == pytest.approx(700.0, rel=0.01)
    assert mean(runs["small_orifice"], "speed") < mean(nominal, "speed") - 1.0  # more load, more droop
    assert mean(slow, "flow") / mean(nominal, "flow") == pytest.approx(
        mean(slow, "speed") / mean(nominal, "speed"), rel=0.01
    )


def test_reference_integral_gain_creeps_towards_the_set_point() -> None:
    # With the reference's Ki = 0.002 the loop's slow mode has tau = (kp + k/Vs) / ki
    # = (0.04 + 0.065/24) / 0.002 = 21.4 s: the 14.7 rad/s proportional droop decays by 1 - exp(-1.5/21.4)
    # = 6.8 % between the first and last 0.5 s of a 2 s run (centres 1.5 s apart, 0.3 s warm-up):
    # 14.7 * exp(-0.55/21.4) * 0.068 = 0.97 rad/s = 9.3 motor rpm.
    from plant_models import Scenario, simulate

    from .conftest import NOISELESS

    sig = simulate(Scenario(duration_s=2.0, seed=3, sensors=NOISELESS), PumpParams(speed_ki=0.002))
    creep = sig["speed"][-500:].mean() - sig["speed"][:500].mean()
    assert creep == pytest.approx(9.3, rel=0.15)
    # The default (Ki = 0, see PumpParams) holds the droop: a stationary operating point.
    flat = simulate(Scenario(duration_s=2.0, seed=3, sensors=NOISELESS))
    assert abs(flat["speed"][-500:].mean() - flat["speed"][:500].mean()) < 0.05
