"""Feature extraction: shapes, finiteness, and values known from the input signals."""

from __future__ import annotations

import numpy as np
import pytest

from fedtwin.features import FEATURE_NAMES, extract_features, windowize

FS = 1000.0


def _signals(
    seconds: float = 4.0, crank_hz: float = 958.0 / 60.0, leak_order1: float = 0.0
) -> dict[str, np.ndarray]:
    t = np.arange(int(seconds * FS)) / FS
    th = 2 * np.pi * crank_hz * t
    rng = np.random.default_rng(0)
    return {
        "pressure": 7.0 + 0.3 * np.sin(3 * th) + 0.01 * rng.normal(size=t.size),
        "flow": 38.0 + 2.0 * np.sin(3 * th) + leak_order1 * np.sin(th) + 0.05 * rng.normal(size=t.size),
        "speed": np.full(t.size, 2.0 * crank_hz * 60.0),
        "current": 6.5 + 0.05 * np.sin(3 * th + 0.4),
    }


def _col(F: np.ndarray, name: str) -> np.ndarray:
    return F[:, FEATURE_NAMES.index(name)]


def test_windowize_shapes_and_hop() -> None:
    w = windowize(_signals(4.0), 1.0, FS)
    assert all(v.shape == (4, 1000) for v in w.values())
    w = windowize(_signals(4.0), 1.0, FS, hop_s=0.5, start_s=0.5)
    assert w["flow"].shape == (6, 1000)
    with pytest.raises(ValueError, match="equal length"):
        windowize({"flow": np.zeros(10), "speed": np.zeros(11)}, 0.005, FS)


def test_shape_finite_and_names() -> None:
    F = extract_features(windowize(_signals(), 1.0, FS), FS)
    assert F.shape == (4, len(FEATURE_NAMES)) and F.dtype == np.float64
    assert np.all(np.isfinite(F))
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) >= 14
    assert extract_features({k: v[:0].reshape(0, 1000) for k, v in _signals().items()}, FS).shape == (
        0,
        len(FEATURE_NAMES),
    )


def test_pure_sine_gives_its_frequency_and_amplitudes() -> None:
    F = extract_features(windowize(_signals(), 1.0, FS), FS)
    np.testing.assert_allclose(
        _col(F, "pressure_peak_freq"), 3 * 958.0 / 60.0, atol=1.0
    )  # 47.9 Hz, 1 Hz bins
    np.testing.assert_allclose(_col(F, "flow_mean"), 38.0, atol=0.05)
    np.testing.assert_allclose(_col(F, "speed_mean_rpm"), 1916.0)
    np.testing.assert_allclose(_col(F, "crank_freq_hz"), 958.0 / 60.0)
    # Order tracking recovers the 3rd-order amplitudes relative to the mean (TSA bin averaging costs ~2 %).
    np.testing.assert_allclose(_col(F, "pressure_order3_rel"), 0.3 / 7.0, rtol=0.03)
    np.testing.assert_allclose(_col(F, "flow_order3_rel"), 2.0 / 38.0, rtol=0.03)
    np.testing.assert_allclose(_col(F, "current_order3_abs"), 0.05, rtol=0.03)
    assert np.all(_col(F, "pressure_bandpower_40_60") > 100 * _col(F, "pressure_bandpower_10_20"))
    # A sine of amplitude a has RMS a/sqrt(2) around its mean: variance a^2/2.
    np.testing.assert_allclose(_col(F, "flow_var"), 2.0**2 / 2 + 0.05**2, rtol=0.03)
    np.testing.assert_allclose(
        _col(F, "volumetric_efficiency"), 38.0 / (3 * np.pi / 4 * 0.024**2 * 0.03 * 1000 * 958), rtol=1e-3
    )


def test_single_cylinder_asymmetry_shows_at_order_one() -> None:
    sym = extract_features(windowize(_signals(), 1.0, FS), FS)
    leak = extract_features(windowize(_signals(leak_order1=0.8), 1.0, FS), FS)
    assert np.all(_col(leak, "flow_order1_rel") > 10 * _col(sym, "flow_order1_rel"))
    np.testing.assert_allclose(_col(leak, "flow_order1_rel"), 0.8 / 38.0, rtol=0.03)
    assert np.all(_col(leak, "cyl_flow_spread_rel") > 10 * _col(sym, "cyl_flow_spread_rel"))


def test_features_follow_the_measured_speed() -> None:
    # Same pump waveform at another speed: order features and ratios stay put, frequencies move.
    a = extract_features(windowize(_signals(crank_hz=14.0), 1.0, FS), FS)
    b = extract_features(windowize(_signals(crank_hz=18.0), 1.0, FS), FS)
    np.testing.assert_allclose(_col(a, "flow_order3_rel"), _col(b, "flow_order3_rel"), rtol=0.03)
    np.testing.assert_allclose(_col(a, "pressure_peak_freq"), 42.0, atol=1.0)
    np.testing.assert_allclose(_col(b, "pressure_peak_freq"), 54.0, atol=1.0)


def test_missing_signal_rejected() -> None:
    w = windowize(_signals(), 1.0, FS)
    del w["current"]
    with pytest.raises(KeyError, match="current"):
        extract_features(w, FS)
