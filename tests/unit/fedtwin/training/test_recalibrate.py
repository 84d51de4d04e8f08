"""Operating-point recovery from simulated healthy data (one short simulation per case, ~0.5 s each)."""

import numpy as np
import pytest

from fedtwin.training.recalibrate import estimate_operating_point, to_operating_point
from plant_models import OperatingPoint, PumpParams, Scenario, simulate


def healthy_signals(speed_rpm: float, load: float, seconds: float = 3.0) -> dict[str, np.ndarray]:
    op = OperatingPoint(speed_rpm=speed_rpm, load_area_factor=load)
    return simulate(Scenario(op=op, duration_s=seconds, seed=7))


@pytest.mark.parametrize("speed_rpm, load", [(958.0, 1.0), (750.0, 1.6), (1150.0, 2.5)])
def test_recovers_operating_point(speed_rpm: float, load: float) -> None:
    signals = healthy_signals(speed_rpm, load)
    estimate = estimate_operating_point(signals, fs=1000.0)
    assert estimate.n_windows == 3
    # The speed sensor reads the motor, geared 2:1 to the crank the operating point names.
    assert estimate.motor_speed_rpm == pytest.approx(2.0 * speed_rpm, rel=0.01)
    assert estimate.speed_rpm == pytest.approx(speed_rpm, rel=0.01)
    assert estimate.flow_lpm == pytest.approx(PumpParams().theoretical_flow_lpm(speed_rpm), rel=0.05)
    assert not estimate.load_limited and estimate.confidence > 0.9
    op = to_operating_point(estimate)
    assert op.speed_rpm == pytest.approx(speed_rpm, rel=0.01)
    assert op.load_area_factor == pytest.approx(load, rel=0.03)
    assert to_operating_point(estimate, refine=False).load_area_factor == pytest.approx(load, rel=0.03)


def test_windowed_input_matches_stream() -> None:
    signals = healthy_signals(958.0, 1.0)
    windows = {k: v.reshape(6, -1) for k, v in signals.items()}
    estimate = estimate_operating_point(windows, fs=1000.0)
    assert estimate.n_windows == 6
    assert estimate.speed_rpm == pytest.approx(958.0, rel=0.01)


def test_large_orifice_makes_load_a_lower_bound() -> None:
    # At 5x the orifice area its drop is ~4 mbar: the 7 bar back-pressure and the pipe hide the load.
    estimate = estimate_operating_point(healthy_signals(958.0, 5.0, seconds=2.0), fs=1000.0, window_s=0.5)
    assert estimate.load_limited and estimate.confidence == 0.0
    assert "lower bound" in estimate.notes[0]
    assert to_operating_point(estimate).load_area_factor == pytest.approx(min(estimate.load_area_factor, 5.0))


def test_bad_input_raises() -> None:
    good = {k: np.full(3000, v) for k, v in {"pressure": 7.0, "flow": 38.0, "speed": 1916.0}.items()}
    with pytest.raises(ValueError, match="lack speed"):
        estimate_operating_point({k: v for k, v in good.items() if k != "speed"}, fs=1000.0)
    with pytest.raises(ValueError, match="windows"):
        estimate_operating_point({k: v[:1500] for k, v in good.items()}, fs=1000.0)
    bad = dict(good, flow=np.r_[good["flow"][:-1], np.nan])
    with pytest.raises(ValueError, match="non-finite"):
        estimate_operating_point(bad, fs=1000.0)
