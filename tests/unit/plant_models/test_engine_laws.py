"""The engine's constitutive laws against hand values (no time stepping): valves, oil + air, outlet load."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plant_models import P_ATM, Faults, OperatingPoint, PumpParams
from plant_models.engine import PumpEngine, plunger_insertion

PARAMS = PumpParams()
K = 0.7 * math.sqrt(2.0 / 870.0)  # Cd * sqrt(2 / rho): Q = K * A * sqrt(dp)


@pytest.fixture(scope="module")
def engine() -> PumpEngine:
    return PumpEngine(PARAMS, 2, 1e-3)


def test_check_valve_opens_linearly_between_crack_and_full_open(engine: PumpEngine) -> None:
    dp = np.array([0.0, 0.29e5, 0.3e5, 0.75e5, 1.2e5, 2.0e5])
    q = engine.valve_flow(dp)
    full = K * 1e-4
    expected = [
        0.0,
        0.0,
        0.0,
        full * 0.5 * math.sqrt(0.75e5),
        full * math.sqrt(1.2e5),
        full * math.sqrt(2.0e5),
    ]
    np.testing.assert_allclose(q, expected, rtol=1e-12, atol=1e-15)
    # The tabulated inverse gives back the drop (ramp and beyond full opening).
    open_dp = dp[2:]
    np.testing.assert_allclose(engine.valve_dp(engine.valve_flow(open_dp)[1:]), open_dp[1:], rtol=2e-4)
    assert engine.valve_dp(np.array([5e-3]))[0] == pytest.approx((5e-3 / full) ** 2, rel=1e-12)  # > 2x full


def test_oil_with_air_compresses_like_the_isothermal_mixture(engine: PumpEngine) -> None:
    # 0.5 % air at 1 atm: at 8 bar abs the air has shrunk to 0.5 % * 1.013/8 and the oil by 6.9e5/1.5e9.
    p = np.array([P_ATM, 8e5, 2e3])
    rel = 0.995 * (1.0 - (p - P_ATM) / 1.5e9) + 0.005 * P_ATM / p
    np.testing.assert_allclose(1.0 / engine.inv_rel_volume(p), rel, rtol=1e-12)
    # 0.995 * (1 - 6.987e5/1.5e9) + 0.005 * 0.1267 = 0.99454 + 0.00063
    assert 1.0 / engine.inv_rel_volume(np.array([8e5]))[0] == pytest.approx(0.99517, abs=1e-5)
    # Content -> pressure is the exact inverse, from deep vacuum (air dominated) to 20 bar (oil dominated).
    for pressure in (1.5e3, 2e4, P_ATM, 8e5, 20e5):
        vol = np.array([2.0e-5])
        content = vol * engine.inv_rel_volume(np.array([pressure]))
        assert engine.pressure_of_content(vol, content)[0] == pytest.approx(pressure, rel=1e-9)


def test_air_free_oil_has_the_bulk_modulus_stiffness() -> None:
    oil = PumpEngine(PumpParams(air_fraction=0.0), 1, 1e-3)
    vol = np.array([1.0e-5])
    squeezed = vol / (1.0 - 1e5 / 1.5e9)  # content that needs 1 bar more than atmospheric to fit
    assert oil.pressure_of_content(vol, squeezed)[0] == pytest.approx(P_ATM + 1e5, rel=1e-6)


def test_load_flow_solves_pipe_plus_orifice(engine: PumpEngine) -> None:
    engine.set_conditions([Faults()] * 2, [OperatingPoint(), OperatingPoint(load_area_factor=0.5)])
    r = 128.0 * 1.8e-5 * 870.0 * 5.0 / (math.pi * 0.019**4)
    assert r == pytest.approx(PARAMS.pipe_resistance, rel=1e-12)
    dp = np.array([0.25e5, -0.1e5])
    q, slope = engine.load_flow(dp)
    for j, area in enumerate((2e-4, 1e-4)):
        k = K * area
        assert r * q[j] + q[j] * abs(q[j]) / k**2 == pytest.approx(dp[j], rel=1e-10)  # the loop's own law
        assert slope[j] == pytest.approx(1.0 / (r + 2.0 * abs(q[j]) / k**2), rel=1e-10)
    assert q[1] < 0.0  # below the back-pressure the system flows back towards the pump


def test_conditions_put_faults_on_their_cylinder() -> None:
    eng = PumpEngine(PARAMS, 3, 1e-3)
    faults = [
        Faults(leak=0.036, leak_cylinder=2),
        Faults(inlet_area_factor=0.53, inlet_cylinder=1),
        Faults(bearing_friction=6e-4, broken_winding=1.0),
    ]
    eng.set_conditions(faults, [OperatingPoint(speed_rpm=900.0, back_pressure_bar=5.0)] * 3)
    np.testing.assert_allclose(eng._leak_k[:, 0], [0.0, 0.0, K * 0.036e-4])
    np.testing.assert_allclose(eng._inlet_kv[:, 1], [K * 1e-4, K * 0.53e-4, K * 1e-4])
    assert eng._bearing_c[2] == pytest.approx(7e-4 * 180.0 / math.pi)  # N*m per rad/s
    assert eng._res[2] == pytest.approx(2.0 * PARAMS.motor_resistance_ohm)  # one of two paths open
    assert eng._p_back[0] == pytest.approx(P_ATM + 5e5)
    assert eng._omega_ref[0] == pytest.approx(900.0 * 1.0731 * 2.0 * 2.0 * math.pi / 60.0)


def test_steady_guess_starts_at_the_operating_point() -> None:
    eng = PumpEngine(PARAMS, 1, 1e-3)
    state = eng.steady_guess(np.array([0.3]))
    x = plunger_insertion(PARAMS, np.array([0.3]))[0]
    assert state.x[0, 0] == pytest.approx(x)
    assert plunger_insertion(PARAMS, np.array([0.0]))[0] == pytest.approx(
        0.03
    )  # top dead centre: full stroke
    assert (state.p_out[0] - P_ATM) * 1e-5 == pytest.approx(7.25, abs=0.1)
    assert state.omega_m[0] * 60.0 / (2.0 * math.pi) == pytest.approx(1916.0, rel=0.01)  # the droop
