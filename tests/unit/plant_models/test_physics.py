"""Physics checks of the triplex pump model against first principles and the reference operating point."""

from __future__ import annotations

import numpy as np
import pytest

from plant_models import P_ATM, PumpParams, RunResult

FS = 1000.0
CRANK_HZ = 958.0 / 60.0
PARAMS = PumpParams()


def band_power(x: np.ndarray, f0: float, half_width: float = 1.5) -> float:
    """Power of ``x`` (mean removed, Hann window) within +/- half_width Hz of f0."""
    x = x - x.mean()
    freq = np.fft.rfftfreq(x.size, 1.0 / FS)
    psd = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    return float(psd[np.abs(freq - f0) <= half_width].sum())


def test_operating_point_matches_reference(runs: dict[str, RunResult]) -> None:
    sig = runs["healthy"].signals
    assert sig is not None
    assert 6.0 < sig["pressure"].mean() < 8.0  # ~7 bar gauge
    assert 36.0 < sig["flow"].mean() < 40.0  # ~38 L/min
    assert sig["speed"].mean() == pytest.approx(958.0 * PARAMS.gear_ratio, rel=2e-3)  # PI removes offset


def test_mean_flow_is_displacement_times_speed_times_volumetric_efficiency(
    runs: dict[str, RunResult],
) -> None:
    res = runs["healthy"]
    assert res.signals is not None and res.truth is not None
    theoretical = PARAMS.theoretical_flow_lpm(res.signals["speed"].mean() / PARAMS.gear_ratio)
    # Volumetric efficiency from first principles: seal leak flows at ~outlet pressure during the
    # discharge half of the revolution (quasi-static cylinders have no compression or valve-lag loss).
    k = PARAMS.discharge_coeff * np.sqrt(2.0 / PARAMS.fluid_density_kg_m3) * PARAMS.seal_leak_area_m2
    leak_lpm = 3 * 0.5 * k * np.sqrt(res.signals["pressure"].mean() * 1e5) * 60_000.0
    eta_v = 1.0 - leak_lpm / theoretical
    assert 0.95 < eta_v <= 1.0
    assert res.signals["flow"].mean() == pytest.approx(theoretical * eta_v, rel=0.05)
    assert res.signals["flow"].mean() == pytest.approx(theoretical * eta_v, rel=0.01)  # tighter in fact


def test_pressure_ripple_is_strongest_at_three_times_crank_frequency(runs: dict[str, RunResult]) -> None:
    p = runs["healthy_noisy"].signals["pressure"]  # type: ignore[index]
    x = p - p.mean()
    freq = np.fft.rfftfreq(x.size, 1.0 / FS)
    psd = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    valid = freq > 2.0
    peak = freq[valid][np.argmax(psd[valid])]
    assert peak == pytest.approx(3.0 * CRANK_HZ, abs=1.0)


@pytest.mark.parametrize("case", ["leak_low", "leak_full", "leak_cyl2"])
def test_single_cylinder_leak_adds_energy_at_crank_frequency(runs: dict[str, RunResult], case: str) -> None:
    healthy, leaky = runs["healthy"].signals, runs[case].signals
    assert healthy is not None and leaky is not None
    for sig in ("pressure", "flow"):
        # One weak cylinder breaks the 120-degree symmetry, so the 1x order appears.
        assert band_power(leaky[sig], CRANK_HZ) > 100.0 * (band_power(healthy[sig], CRANK_HZ) + 1e-9)
    assert leaky["flow"].mean() < healthy["flow"].mean()
    assert leaky["pressure"].mean() < healthy["pressure"].mean()


def test_leak_loss_grows_with_severity(runs: dict[str, RunResult]) -> None:
    flows = [runs[c].signals["flow"].mean() for c in ("healthy", "leak_low", "leak_full")]  # type: ignore[index]
    assert flows[0] > flows[1] > flows[2]


@pytest.mark.parametrize("case", ["healthy", "leak_full", "inlet_full", "all_full", "dead_headed"])
def test_mass_balance_closes(runs: dict[str, RunResult], case: str) -> None:
    tr = runs[case].truth
    assert tr is not None
    supply, drawn = tr["q_supply"].mean(), tr["q_in"].mean()
    delivered = tr["q_out"].mean()
    leaked = tr["q_leak"].mean()
    discharged = tr["q_load"].mean() + tr["q_relief"].mean()
    # Each balance is exact per step up to the manifold/vapour storage, which is bounded over 2 s.
    assert drawn == pytest.approx(supply, rel=2e-3)
    assert drawn == pytest.approx(delivered + leaked, rel=2e-3)
    assert discharged == pytest.approx(delivered, rel=2e-3)


@pytest.mark.parametrize("case", ["healthy", "leak_full", "inlet_full", "all_full", "dead_headed", "slow"])
def test_pressures_stay_between_vapour_pressure_and_relief_setting(
    runs: dict[str, RunResult], case: str
) -> None:
    tr = runs[case].truth
    assert tr is not None
    assert tr["p_cyl_min"].min() >= PARAMS.vapour_pressure_pa - 1e-6
    assert tr["p_in"].min() >= PARAMS.vapour_pressure_pa - 1e-6
    assert (tr["p_out"] - P_ATM).max() <= PARAMS.relief_open_pa
    # Cylinders exceed the manifold only by the outlet valve's drop, never by a numerical spike.
    assert tr["p_cyl_max"].max() - P_ATM <= PARAMS.relief_open_pa + 3e5


def test_relief_valve_limits_a_nearly_closed_load(runs: dict[str, RunResult]) -> None:
    tr, sig = runs["dead_headed"].truth, runs["dead_headed"].signals
    assert tr is not None and sig is not None
    assert sig["pressure"].mean() > PARAMS.relief_crack_pa / 1e5 - 1.0
    assert tr["q_relief"].mean() > 0.1 * tr["q_out"].mean()


def test_blocked_inlet_lowers_suction_pressure_and_raises_cavitation_risk(runs: dict[str, RunResult]) -> None:
    h, half, full = (runs[c].truth for c in ("healthy", "inlet_half", "inlet_full"))
    assert h is not None and half is not None and full is not None
    assert h["p_in"].mean() > half["p_in"].mean() > full["p_in"].mean()
    # Half-way the peak of the suction stroke already reaches vapour pressure (incipient cavitation).
    assert h["p_cyl_min"].min() > half["p_cyl_min"].min() >= full["p_cyl_min"].min()
    assert h["p_cyl_min"].min() > 20e3  # healthy keeps an NPSH margin at the reference point
    assert h["vapour"].max() == 0.0
    assert full["vapour"].max() > half["vapour"].max() > 0.0  # the worst blockage cavitates most
    assert full["p_cyl_min"].min() == pytest.approx(PARAMS.vapour_pressure_pa)
    # Lower suction pressure means more suction work: the motor draws more current (as long as the
    # delivered flow, hence the discharge work, is not yet lost to cavitation).
    cur = [runs[c].signals["current"].mean() for c in ("healthy", "inlet_low", "inlet_half")]  # type: ignore[index]
    assert cur[0] < cur[1] < cur[2]


def test_blocked_inlet_costs_delivered_flow_only_when_severe(runs: dict[str, RunResult]) -> None:
    sigs = [runs[c].signals for c in ("healthy", "inlet_low", "inlet_full")]
    assert all(s is not None for s in sigs)
    flow = [s["flow"].mean() for s in sigs]  # type: ignore[index]
    pressure = [s["pressure"].mean() for s in sigs]  # type: ignore[index]
    # Severity 0.1: the strainer still passes the flow with margin, delivery is unchanged (< 0.2 %).
    assert flow[1] == pytest.approx(flow[0], rel=2e-3)
    # Worst blockage: the cylinders do not fill during suction, a clearly measurable flow loss (sensor
    # noise is 0.15 L/min per sample) and, through the fixed load orifice, a lower outlet pressure.
    assert flow[0] - flow[2] > 0.03 * flow[0]
    assert pressure[2] < pressure[0] - 0.2
    # Late delivery start per cylinder: the ripple at the plunger frequency grows.
    assert band_power(sigs[2]["flow"], 3.0 * CRANK_HZ) > 2.0 * band_power(sigs[0]["flow"], 3.0 * CRANK_HZ)  # type: ignore[index]


def test_bearing_wear_raises_current_not_flow(runs: dict[str, RunResult]) -> None:
    sigs = [runs[c].signals for c in ("healthy", "bearing_low", "bearing_full")]
    assert all(s is not None for s in sigs)
    cur = [s["current"].mean() for s in sigs]  # type: ignore[index]
    assert cur[0] < cur[1] < cur[2]
    # Extra friction torque (6e-4 N*m/(deg/s) at ~5750 deg/s) over the gear and motor constant.
    expected = 6e-4 * 958.0 * 6.0 / PARAMS.gear_ratio / PARAMS.motor_k
    assert cur[2] - cur[0] == pytest.approx(expected, rel=0.05)
    assert sigs[2]["flow"].mean() == pytest.approx(sigs[0]["flow"].mean(), rel=1e-3)  # type: ignore[index]


def test_speed_set_point_scales_flow(runs: dict[str, RunResult]) -> None:
    slow, nominal = runs["slow"].signals, runs["healthy"].signals
    assert slow is not None and nominal is not None
    assert slow["speed"].mean() == pytest.approx(700.0 * PARAMS.gear_ratio, rel=2e-3)
    assert slow["flow"].mean() / nominal["flow"].mean() == pytest.approx(700.0 / 958.0, rel=0.02)
    assert slow["pressure"].mean() < nominal["pressure"].mean()  # fixed orifice: p ~ Q^2


def test_current_follows_load_torque(runs: dict[str, RunResult]) -> None:
    res = runs["healthy"]
    assert res.truth is not None and res.signals is not None
    torque_motor = (res.truth["torque"] + res.truth["torque_bearing"]) / PARAMS.gear_ratio
    expected = (torque_motor.mean() + PARAMS.motor_viscous_nms * res.truth["omega_m"].mean()) / PARAMS.motor_k
    assert res.signals["current"].mean() == pytest.approx(expected, rel=0.01)
