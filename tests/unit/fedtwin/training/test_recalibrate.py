"""Operating-point recovery from simulated healthy data (one short simulation per case, ~0.5 s each)."""

import numpy as np
import pytest

from fedtwin.data.features import FEATURE_NAMES, extract_features
from fedtwin.training.recalibrate import (
    estimate_from_features,
    estimate_operating_point,
    summary,
    to_operating_point,
)
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


def test_feature_windows_give_the_estimate_of_their_samples() -> None:
    """The drift monitor holds feature windows: their level features give exactly the samples' estimate,
    and exactly what the monitor's former detour (each level repeated as a constant 2-sample window) gave."""
    import pandas as pd

    signals = healthy_signals(1040.0, 1.12)
    windows = {k: v.reshape(6, -1) for k, v in signals.items()}
    frame = pd.DataFrame(extract_features(windows, 1000.0), columns=list(FEATURE_NAMES))
    from_samples = estimate_operating_point(windows, fs=1000.0)
    assert estimate_from_features(frame) == from_samples
    columns = {"pressure": "pressure_mean_bar", "flow": "flow_mean", "speed": "speed_mean_rpm"}
    detour = {s: np.repeat(frame[c].to_numpy()[:, None], 2, axis=1) for s, c in columns.items()}
    detour["current"] = np.repeat(frame["current_mean_a"].to_numpy()[:, None], 2, axis=1)
    assert estimate_operating_point(detour, fs=1000.0) == from_samples
    # Without the current the estimate has none; a plain mapping of columns works as well as a frame.
    no_current = estimate_from_features({c: frame[c].to_numpy() for c in columns.values()})
    assert np.isnan(no_current.current_a) and no_current.speed_rpm == from_samples.speed_rpm
    op = to_operating_point(from_samples, refine=False)
    assert summary(from_samples, op) == {
        "speed_rpm": op.speed_rpm,
        "load_area_factor": op.load_area_factor,
        "outlet_pressure_bar": from_samples.outlet_pressure_bar,
        "flow_lpm": from_samples.flow_lpm,
        "n_windows": 6.0,
    }


def test_feature_windows_bad_input_raises() -> None:
    good = {"pressure_mean_bar": [7.2] * 3, "flow_mean": [38.0] * 3, "speed_mean_rpm": [1916.0] * 3}
    with pytest.raises(ValueError, match=r"^feature windows lack speed_mean_rpm; need pressure_mean_bar"):
        estimate_from_features({k: v for k, v in good.items() if k != "speed_mean_rpm"})
    with pytest.raises(ValueError, match=r"^feature flow_mean has 1 non-finite values$"):
        estimate_from_features({**good, "flow_mean": [38.0, np.nan, 38.0]})
    with pytest.raises(ValueError, match=r"^only 2 feature windows; need at least 3$"):
        estimate_from_features({k: v[:2] for k, v in good.items()})
    with pytest.raises(ValueError, match="not positive"):
        estimate_from_features({**good, "speed_mean_rpm": [0.0] * 3})


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
