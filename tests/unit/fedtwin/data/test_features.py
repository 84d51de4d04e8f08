"""Feature extraction against analytic signals: every feature's value (and unit) worked out by hand.

The analytic windows are 1 s at 1 kHz with the motor at 1800 rpm, so the crank (gear ratio 2) turns at exactly
15 Hz: 15 whole revolutions per window and crank order k at 15 k Hz, on an exact 1 Hz FFT bin. The crank angle
the extractor integrates from a constant speed is ``theta_k = 2 pi 15 (k + 1) / fs`` (the cumulative sum
includes the first sample), and the analytic signals use that same angle.

Order amplitudes come from the time-synchronous average over 36 crank-angle bins of 10 degrees: averaging a
sine of order k over a bin scales it by ``sinc(k / 36) = sin(pi k / 36) / (pi k / 36)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedtwin.data.features import (
    DISPLACEMENT_L_PER_REV,
    FEATURE_NAMES,
    GEAR_RATIO,
    PHYSICS_FEATURES,
    REFERENCE_FEATURES,
    extract_features,
    features_from_signals,
    invalid_rows,
    windowize,
)

FS = 1000.0
N = 1000
SPEED_RPM = 1800.0  # motor; crank 15 Hz
CRANK_HZ = 15.0
THETA = 2 * np.pi * CRANK_HZ * (np.arange(N) + 1) / FS  # crank angle the extractor integrates (rad)
T = np.arange(N) / FS


def bin_gain(order: int) -> float:
    """Gain of the 36-bin time-synchronous average on a sine of crank order ``order``."""
    x = math.pi * order / 36
    return math.sin(x) / x


def features(**signals: np.ndarray) -> dict[str, float]:
    """Features of one window; signals default to a quiet pump (7 bar, 38 L/min, 1800 rpm, 6.5 A)."""
    base = {
        "pressure": np.full(N, 7.0),
        "flow": np.full(N, 38.0),
        "speed": np.full(N, SPEED_RPM),
        "current": np.full(N, 6.5),
    }
    base.update(signals)
    F = extract_features({k: v[None, :] for k, v in base.items()}, FS)
    assert F.shape == (1, len(FEATURE_NAMES))
    return dict(zip(FEATURE_NAMES, F[0].tolist(), strict=True))


def test_names_are_unique_and_grouped() -> None:
    assert len(REFERENCE_FEATURES) == 14 and len(PHYSICS_FEATURES) == 43
    assert FEATURE_NAMES == REFERENCE_FEATURES + PHYSICS_FEATURES
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_reference_pump_displacement() -> None:
    # 3 plungers x pi/4 x (24 mm)^2 x 30 mm = 40.7 cm^3 per crank revolution
    litres = DISPLACEMENT_L_PER_REV
    assert litres == pytest.approx(3 * math.pi / 4 * 2.4**2 * 3.0 / 1000.0, rel=1e-12)
    assert litres == pytest.approx(0.040715, rel=1e-4)
    assert GEAR_RATIO == 2.0


# ---------------------------------------------------------------- flow statistics (reference features)
Q0, A3 = 38.0, 2.0


def test_flow_statistics_of_a_pure_sine() -> None:
    """q = Q0 + A sin(3 theta): 45 Hz, 45 whole cycles per window, sampled exactly at its peak and trough."""
    f = features(flow=Q0 + A3 * np.sin(3 * THETA))
    assert f["flow_mean"] == pytest.approx(Q0, rel=1e-12)  # L/min
    assert f["flow_var"] == pytest.approx(A3**2 / 2, rel=1e-9)  # (L/min)^2
    assert f["flow_skewness"] == pytest.approx(0.0, abs=1e-9)
    assert f["flow_kurtosis"] == pytest.approx(1.5, rel=1e-9)  # E[sin^4] / E[sin^2]^2 = (3/8) / (1/4)
    assert f["flow_peak2peak"] == pytest.approx(2 * A3, rel=1e-9)
    rms = math.sqrt(Q0**2 + A3**2 / 2)
    assert f["flow_rms"] == pytest.approx(rms, rel=1e-9)
    assert f["flow_crest_factor"] == pytest.approx((Q0 + A3) / rms, rel=1e-9)
    assert f["flow_mad"] == pytest.approx(2 * A3 / math.pi, rel=1e-4)  # mean |A sin| = 2A/pi
    # Swing of the integrated fluctuation: A/omega * (1 - cos) spans 2A/omega, in L/min * s
    assert f["flow_csrange"] == pytest.approx(2 * A3 / (2 * math.pi * 45.0), rel=5e-3)


def test_flow_skewness_sign_and_crest_of_a_negative_signal() -> None:
    """A half-wave-like waveform: positive pulses skew right; |q| enters the crest factor."""
    pulses = np.maximum(np.sin(3 * THETA), 0.0)
    f = features(flow=10.0 + 4.0 * pulses)
    assert f["flow_skewness"] > 0.5
    neg = features(flow=-(10.0 + 4.0 * pulses))
    assert neg["flow_skewness"] == pytest.approx(-f["flow_skewness"], rel=1e-9)
    assert neg["flow_crest_factor"] == pytest.approx(f["flow_crest_factor"], rel=1e-9)
    assert neg["flow_mean"] == pytest.approx(-f["flow_mean"], rel=1e-12)


def test_skewness_and_kurtosis_of_a_two_valued_flow() -> None:
    """Q0 + 1 on a quarter of the samples: Bernoulli(p = 1/4) moments, skewness (1 - 2p) / sqrt(p (1 - p))
    = 1.1547 and kurtosis (1 - 3p (1 - p)) / (p (1 - p)) = 7/3."""
    f = features(flow=Q0 + (np.arange(N) % 4 == 0))
    assert f["flow_skewness"] == pytest.approx(0.5 / math.sqrt(0.1875), rel=1e-9)
    assert f["flow_kurtosis"] == pytest.approx(7 / 3, rel=1e-9)
    assert f["flow_var"] == pytest.approx(0.1875, rel=1e-9)
    assert f["flow_mad"] == pytest.approx(2 * 0.25 * 0.75, rel=1e-9)  # mean |x - p| = 2 p (1 - p)


def test_flow_kurtosis_and_skewness_of_a_square_wave() -> None:
    square = np.where(np.sin(3 * THETA + 0.1) >= 0, 1.0, -1.0)
    f = features(flow=Q0 + square)
    assert f["flow_kurtosis"] == pytest.approx(1.0, rel=5e-3)  # two-valued: E[d^4] = E[d^2]^2
    assert f["flow_mad"] == pytest.approx(1.0, rel=5e-3)
    assert f["flow_peak2peak"] == pytest.approx(2.0, rel=1e-12)


# ---------------------------------------------------------------- pressure spectrum (reference features)
P0, B1, A3P, C8 = 7.0, 0.05, 0.3, 0.02  # bar: order 1 (15 Hz), order 3 (45 Hz), order 8 (120 Hz)


def pressure_wave() -> np.ndarray:
    return P0 + B1 * np.sin(THETA) + A3P * np.sin(3 * THETA + 0.7) + C8 * np.sin(8 * THETA)


def test_pressure_band_powers_are_the_sines_mean_squares() -> None:
    """Band power (bar^2) of a sine of amplitude a is its mean square a^2/2, whatever its phase."""
    f = features(pressure=pressure_wave())
    assert f["pressure_peak_freq"] == 45.0  # Hz
    assert f["pressure_bandpower_10_20"] == pytest.approx(B1**2 / 2, rel=2e-2)
    assert f["pressure_bandpower_40_60"] == pytest.approx(A3P**2 / 2, rel=2e-2)
    assert f["pressure_bandpower_above_100"] == pytest.approx(C8**2 / 2, rel=2e-2)


def test_pressure_peak_frequency_follows_the_largest_line() -> None:
    f = features(pressure=P0 + 0.1 * np.sin(THETA) + 0.4 * np.sin(8 * THETA))
    assert f["pressure_peak_freq"] == 120.0
    f = features(pressure=P0 + 0.4 * np.sin(2 * np.pi * 2.0 * T))  # 2 Hz: the band's lower edge
    assert f["pressure_peak_freq"] == 2.0
    f = features(pressure=P0 + 0.4 * np.sin(2 * np.pi * 250.0 * T))  # 250 Hz: its upper edge
    assert f["pressure_peak_freq"] == 250.0
    f = features(pressure=P0 + 0.4 * np.sin(2 * np.pi * 255.0 * T) + 0.01 * np.sin(2 * np.pi * 30.0 * T))
    assert f["pressure_peak_freq"] == 30.0  # 255 Hz is outside 2-250 Hz


def test_band_edges_are_inclusive() -> None:
    for hz, band in (
        (10.0, "10_20"),
        (20.0, "10_20"),
        (40.0, "40_60"),
        (60.0, "40_60"),
        (100.0, "above_100"),
    ):
        f = features(pressure=P0 + 0.2 * np.sin(2 * np.pi * hz * T))
        # The Hann main lobe puts 2/3 of the power on the line's own bin (1 : 1/4 : 1/4 of 1.5).
        assert f[f"pressure_bandpower_{band}"] > 0.6 * 0.2**2 / 2, (hz, band)
    # At 250 Hz the band keeps bins 249 and 250 of the line's 249-251: (1/4 + 1) / (1/4 + 1 + 1/4) of it.
    f = features(pressure=P0 + 0.2 * np.sin(2 * np.pi * 250.0 * T))
    assert f["pressure_bandpower_above_100"] == pytest.approx(0.2**2 / 2 * 1.25 / 1.5, rel=2e-2)


def test_lines_just_outside_a_band_leave_only_their_hann_skirt() -> None:
    """A line one bin outside a band puts 1/4 of its 1.5 (relative) power on the band's edge bin."""
    for hz, band in ((21.0, "10_20"), (61.0, "40_60"), (9.0, "10_20"), (39.0, "40_60"), (99.0, "above_100")):
        f = features(pressure=P0 + 0.2 * np.sin(2 * np.pi * hz * T))
        assert f[f"pressure_bandpower_{band}"] == pytest.approx(0.2**2 / 2 * 0.25 / 1.5, rel=3e-2), hz
    # A line at 251 Hz dominates: inside 2-250 Hz only its skirt on the 250 Hz bin is seen.
    f = features(pressure=P0 + 0.4 * np.sin(2 * np.pi * 251.0 * T) + 0.01 * np.sin(2 * np.pi * 30.0 * T))
    assert f["pressure_peak_freq"] == 250.0


def test_band_power_is_in_bar_squared_at_any_resolution() -> None:
    """Half-second windows (2 Hz bins): band power is still the mean square, not per-bin density."""
    n = 500
    t = np.arange(n) / FS
    w = {
        "pressure": (
            P0
            + 0.3 * np.sin(2 * np.pi * 46.0 * t)
            + 0.1 * np.sin(2 * np.pi * 14.0 * t)
            + 0.05 * np.sin(2 * np.pi * 150.0 * t)
        )[None, :],
        "flow": np.full((1, n), Q0),
        "speed": np.full((1, n), SPEED_RPM),
        "current": np.full((1, n), 6.5),
    }
    f = dict(zip(FEATURE_NAMES, extract_features(w, FS)[0].tolist(), strict=True))
    assert f["pressure_bandpower_40_60"] == pytest.approx(0.3**2 / 2, rel=2e-2)
    assert f["pressure_bandpower_10_20"] == pytest.approx(0.1**2 / 2, rel=2e-2)
    assert f["pressure_bandpower_above_100"] == pytest.approx(0.05**2 / 2, rel=2e-2)
    assert f["pressure_peak_freq"] == 46.0


def test_spectral_kurtosis_of_three_lines() -> None:
    """Power over 2-250 Hz: the Hann window spreads each line on bins f-1, f, f+1 as 1/4, 1, 1/4."""
    f = features(pressure=pressure_wave())
    freqs, weights = [], []
    for hz, amp in ((15.0, B1), (45.0, A3P), (120.0, C8)):
        for df, w in ((-1.0, 0.25), (0.0, 1.0), (1.0, 0.25)):
            freqs.append(hz + df)
            weights.append(w * amp**2)
    fr, w = np.array(freqs), np.array(weights) / sum(weights)
    cen = (w * fr).sum()
    expected = (w * (fr - cen) ** 4).sum() / ((w * (fr - cen) ** 2).sum()) ** 2
    assert f["pressure_spectral_kurtosis"] == pytest.approx(expected, rel=2e-2)


# ---------------------------------------------------------------- operating point (physics features)
I0, AI3, CI6 = 6.5, 0.05, 0.02  # A
PHI_Q, PHI_I, PHI_I6, PHI_Q6 = 75 * math.pi / 180, 1.1, 0.3, -0.4


def pump_wave() -> dict[str, np.ndarray]:
    return {
        "pressure": pressure_wave(),
        "flow": Q0 + A3 * np.sin(3 * THETA + PHI_Q) + 0.4 * np.sin(6 * THETA + PHI_Q6),
        "current": I0 + AI3 * np.sin(3 * THETA + PHI_I) + CI6 * np.sin(6 * THETA + PHI_I6),
    }


def test_operating_point_features_and_their_units() -> None:
    f = features(**pump_wave())
    assert f["speed_mean_rpm"] == SPEED_RPM
    assert f["crank_freq_hz"] == pytest.approx(CRANK_HZ, rel=1e-12)  # 1800 rpm / 60 / 2
    assert f["speed_ripple_rel"] == 0.0
    assert f["pressure_mean_bar"] == pytest.approx(P0, rel=1e-12)
    assert f["pressure_ripple_rel"] == pytest.approx(math.sqrt((B1**2 + A3P**2 + C8**2) / 2) / P0, rel=1e-6)
    assert f["current_mean_a"] == pytest.approx(I0, rel=1e-12)
    assert f["current_ripple_rel"] == pytest.approx(math.sqrt((AI3**2 + CI6**2) / 2) / I0, rel=1e-6)
    assert f["current_per_pressure"] == pytest.approx(I0 / P0, rel=1e-12)  # A per bar
    # 38 L/min from 40.7 cm^3/rev at 15 rev/s (36.64 L/min geometric): 1.037
    q_geo = DISPLACEMENT_L_PER_REV * CRANK_HZ * 60.0
    assert q_geo == pytest.approx(36.643, rel=1e-4)
    assert f["volumetric_efficiency"] == pytest.approx(Q0 / q_geo, rel=1e-12)
    assert f["flow_ripple_rel"] == pytest.approx(math.sqrt((A3**2 + 0.4**2) / 2) / Q0, rel=1e-6)
    # 7 bar x 38 L/min = 7e5 Pa x 6.333e-4 m^3/s = 443.3 W
    assert f["hydraulic_power_w"] == pytest.approx(P0 * 1e5 * Q0 / 60_000, rel=1e-12)
    assert f["hydraulic_power_w"] == pytest.approx(443.33, rel=1e-4)
    assert f["power_ratio"] == pytest.approx(I0 * SPEED_RPM / (P0 * 1e5 * Q0 / 60_000), rel=1e-12)


def test_flow_min_relative_to_the_mean() -> None:
    f = features(flow=Q0 + A3 * np.sin(3 * THETA))
    assert f["flow_min_rel"] == pytest.approx((Q0 - A3) / Q0, rel=1e-12)


#: Bins hold 5 or 6 of the 200 crank phases a window samples, so ~1 % of a line leaks into other orders:
#: order-3 flow of 2 L/min on 38 gives up to ~5e-4 (relative) at orders where the signal has nothing.
LEAK_FLOOR = 6e-4


def test_order_amplitudes_relative_to_the_mean() -> None:
    f = features(**pump_wave())
    for k in (1, 2, 3, 6):
        q_amp = {3: A3, 6: 0.4}.get(k, 0.0) * bin_gain(k)
        p_amp = {1: B1, 3: A3P}.get(k, 0.0) * bin_gain(k)
        i_amp = {3: AI3, 6: CI6}.get(k, 0.0) * bin_gain(k)
        assert f[f"flow_order{k}_rel"] == pytest.approx(q_amp / Q0, rel=2e-3, abs=LEAK_FLOOR), k
        assert f[f"pressure_order{k}_rel"] == pytest.approx(p_amp / P0, rel=2e-3, abs=LEAK_FLOOR), k
        assert f[f"current_order{k}_rel"] == pytest.approx(i_amp / I0, rel=2e-3, abs=LEAK_FLOOR), k
    assert f["current_order3_abs"] == pytest.approx(AI3 * bin_gain(3), rel=2e-3)  # A
    assert f["current_order6_abs"] == pytest.approx(CI6 * bin_gain(6), abs=0.01 * AI3)  # A, 1 % leak
    assert f["speed_order3_abs"] == pytest.approx(0.0, abs=1e-9)  # rpm; the speed is constant
    assert f["pressure_asym_orders12"] == pytest.approx(B1 * bin_gain(1) / (A3P * bin_gain(3)), rel=2e-2)
    assert f["flow_asym_orders12"] < 2 * LEAK_FLOOR / (A3 * bin_gain(3) / Q0)  # no order 1 or 2 in the flow


def test_relative_phases_between_signals() -> None:
    """Phase of current's order k against flow's: cos and sin of (phi_current - phi_flow)."""
    f = features(**pump_wave())
    d3, d6 = PHI_I - PHI_Q, PHI_I6 - PHI_Q6
    assert f["current_vs_flow_phase3_cos"] == pytest.approx(math.cos(d3), abs=5e-3)
    assert f["current_vs_flow_phase3_sin"] == pytest.approx(math.sin(d3), abs=5e-3)
    assert f["current_vs_flow_phase6_cos"] == pytest.approx(math.cos(d6), abs=5e-3)
    assert f["current_vs_flow_phase6_sin"] == pytest.approx(math.sin(d6), abs=5e-3)


def test_speed_ripple_and_its_phase_against_flow() -> None:
    """A 1 % speed ripple at order 3 barely moves the crank angle (0.01 / 3 rad), so the TSA still locks."""
    r, phi_s = 0.01, -0.5
    speed = SPEED_RPM * (1 + r * np.sin(3 * THETA + phi_s))
    f = features(speed=speed, flow=Q0 + A3 * np.sin(3 * THETA + PHI_Q))
    assert f["speed_mean_rpm"] == pytest.approx(SPEED_RPM, rel=1e-6)
    assert f["speed_ripple_rel"] == pytest.approx(r / math.sqrt(2), rel=1e-3)
    assert f["speed_order3_abs"] == pytest.approx(SPEED_RPM * r * bin_gain(3), rel=1e-2)  # rpm
    assert f["speed_vs_flow_phase3_cos"] == pytest.approx(math.cos(phi_s - PHI_Q), abs=2e-2)
    assert f["speed_vs_flow_phase3_sin"] == pytest.approx(math.sin(phi_s - PHI_Q), abs=2e-2)


def test_time_synchronous_average_extremes() -> None:
    """Peak of sin(3 theta + 75 deg) at theta = 5 deg, a bin centre: the bin average is sinc(3/36) of it."""
    f = features(pressure=P0 + A3P * np.sin(3 * THETA + PHI_Q), flow=Q0 + A3 * np.sin(3 * THETA + PHI_Q))
    g = bin_gain(3)
    assert f["tsa_flow_max_rel"] - 1 == pytest.approx(g * A3 / Q0, rel=1e-2)
    assert f["tsa_flow_min_rel"] - 1 == pytest.approx(-g * A3 / Q0, rel=1e-2)
    assert f["tsa_pressure_max_rel"] - 1 == pytest.approx(g * A3P / P0, rel=1e-2)
    assert f["tsa_pressure_min_rel"] - 1 == pytest.approx(-g * A3P / P0, rel=1e-2)
    # Three cylinders in phase: every 120 degree sector holds one whole order-3 period, the sectors agree.
    # (up to the ~1 % bin leak: 0.02 L/min of 38, against 0.03 of 38 for the weak cylinder below)
    assert f["cyl_flow_spread_rel"] == pytest.approx(0.0, abs=1e-3)
    assert f["cyl_flow_min_rel"] == pytest.approx(1.0, abs=1e-3)
    assert f["cyl_flow_max_rel"] == pytest.approx(1.0, abs=1e-3)
    assert f["cyl_flow_min_rel"] <= 1.0 <= f["cyl_flow_max_rel"]


def test_one_weak_cylinder_shows_at_order_one_and_in_the_sectors() -> None:
    """q = Q0 + A sin 3theta + L sin theta. Sector means of L sin theta over [a, a + 120 deg] are
    (3 sqrt 3 / 2 pi) L sin(a + 60 deg); the widest split (a + 60 deg = 0) gives 0 and +-(9 / 4 pi) L."""
    leak = 0.8
    f = features(flow=Q0 + A3 * np.sin(3 * THETA) + leak * np.sin(THETA))
    g1 = bin_gain(1)
    assert f["flow_order1_rel"] == pytest.approx(leak * g1 / Q0, abs=LEAK_FLOOR)
    assert f["flow_asym_orders12"] == pytest.approx(leak * g1 / (A3 * bin_gain(3)), rel=3e-2)
    half = 9 / (4 * math.pi) * leak * g1 / Q0
    assert f["cyl_flow_spread_rel"] == pytest.approx(2 * half, rel=4e-2)
    assert f["cyl_flow_min_rel"] - 1 == pytest.approx(-half, rel=4e-2)
    assert f["cyl_flow_max_rel"] - 1 == pytest.approx(half, rel=4e-2)
    assert f["cyl_flow_spread_rel"] == pytest.approx(f["cyl_flow_max_rel"] - f["cyl_flow_min_rel"], rel=1e-9)


def test_asymmetry_adds_orders_one_and_two() -> None:
    l1, l2 = 0.5, 0.3
    wave = A3 * np.sin(3 * THETA) + l1 * np.sin(THETA) + l2 * np.sin(2 * THETA + 0.4)
    f = features(flow=Q0 + wave, pressure=P0 + 0.1 * wave)
    expected = (l1 * bin_gain(1) + l2 * bin_gain(2)) / (A3 * bin_gain(3))
    assert f["flow_asym_orders12"] == pytest.approx(expected, rel=3e-2)
    assert f["pressure_asym_orders12"] == pytest.approx(expected, rel=3e-2)
    assert f["flow_order2_rel"] == pytest.approx(l2 * bin_gain(2) / Q0, abs=LEAK_FLOOR)


def test_low_means_scale_orders_by_the_mean_itself() -> None:
    """Half a bar and half an amp are above the 1e-3 floors: orders stay relative to the real mean."""
    g = bin_gain(3)
    f = features(
        pressure=0.5 + 0.1 * np.sin(3 * THETA + PHI_Q),
        current=0.5 + 0.05 * np.sin(3 * THETA + PHI_Q),
    )
    assert f["pressure_order3_rel"] == pytest.approx(0.1 * g / 0.5, rel=1e-2)
    assert f["current_order3_rel"] == pytest.approx(0.05 * g / 0.5, rel=1e-2)
    assert f["tsa_pressure_max_rel"] - 1 == pytest.approx(0.1 * g / 0.5, rel=1e-2)
    assert f["tsa_pressure_min_rel"] - 1 == pytest.approx(-0.1 * g / 0.5, rel=1e-2)


def test_synchronous_average_of_a_partly_covered_revolution() -> None:
    """Eight samples, one per 10 degree bin (the first speed sample is halved to start mid-bin): the TSA is
    the flow in 8 bins and zero in the 28 the window never reached; its order 1 is
    |sum_b e^(-i b 10deg)| * 2/36 = sin(40 deg) / sin(5 deg) * 2 / 36 of the flow."""
    rpm = 120.0 * FS / 36  # one bin per sample
    speed = np.full(8, rpm)
    speed[0] = rpm / 2
    w = {
        "pressure": np.full((1, 8), P0),
        "flow": np.full((1, 8), Q0),
        "speed": speed[None, :],
        "current": np.full((1, 8), 6.5),
    }
    f = dict(zip(FEATURE_NAMES, extract_features(w, FS)[0].tolist(), strict=True))
    order1 = math.sin(math.radians(40)) / math.sin(math.radians(5)) * 2 / 36
    assert f["flow_order1_rel"] == pytest.approx(order1, rel=1e-9)
    assert f["tsa_flow_max_rel"] == pytest.approx(36 / 8, rel=1e-9) and f["tsa_flow_min_rel"] == 0.0


def test_windows_are_featurised_independently() -> None:
    """Several windows in one call give each window's own features (no statistic taken across windows)."""
    waves = [
        {**pump_wave(), "speed": np.full(N, SPEED_RPM)},
        {
            "pressure": P0 + 0.05 * np.sin(3 * THETA),
            "flow": 20.0 + 5.0 * np.sin(3 * THETA) + np.sin(THETA),
            "speed": np.full(N, SPEED_RPM),
            "current": np.full(N, 3.0) + 0.2 * np.sin(6 * THETA),
        },
    ]
    together = extract_features({k: np.stack([w[k] for w in waves]) for k in waves[0]}, FS)
    for row, w in zip(together, waves, strict=True):
        alone = extract_features({k: v[None, :] for k, v in w.items()}, FS)[0]
        np.testing.assert_allclose(row, alone, rtol=1e-9, atol=1e-12)


def test_features_follow_the_measured_speed() -> None:
    """Same waveform per crank revolution at 14 and 18 Hz: orders and ratios stay, frequencies move."""
    out = {}
    for crank in (14.0, 18.0):
        th = 2 * np.pi * crank * (np.arange(N) + 1) / FS
        out[crank] = features(
            speed=np.full(N, crank * 120.0),
            pressure=P0 + A3P * np.sin(3 * th),
            flow=Q0 + A3 * np.sin(3 * th),
        )
    for crank, f in out.items():
        assert f["pressure_peak_freq"] == 3 * crank
        assert f["crank_freq_hz"] == pytest.approx(crank, rel=1e-12)
        assert f["flow_order3_rel"] == pytest.approx(A3 * bin_gain(3) / Q0, rel=5e-3)
        assert f["volumetric_efficiency"] == pytest.approx(
            Q0 / (DISPLACEMENT_L_PER_REV * crank * 60), rel=1e-12
        )


def test_gear_ratio_turns_motor_speed_into_crank_speed() -> None:
    w = {k: v[None, :] for k, v in {**pump_wave(), "speed": np.full(N, 900.0)}.items()}
    F = extract_features(w, FS, gear_ratio=1.0)  # direct drive: 900 rpm crank = 15 Hz
    f = dict(zip(FEATURE_NAMES, F[0].tolist(), strict=True))
    assert f["crank_freq_hz"] == pytest.approx(15.0, rel=1e-12)
    assert f["flow_order3_rel"] == pytest.approx(A3 * bin_gain(3) / Q0, rel=2e-3)


def test_guards_against_zero_means() -> None:
    """Zero flow, pressure and current: ratios use their floors (1e-12, 1e-3) instead of dividing by zero."""
    zero = np.zeros(N)
    f = features(pressure=zero, flow=zero, current=zero)
    assert all(math.isfinite(v) for v in f.values())
    assert f["hydraulic_power_w"] == 0.0 and f["current_per_pressure"] == 0.0 and f["power_ratio"] == 0.0
    f = features(pressure=zero, flow=zero, current=np.full(N, 2.0))
    assert f["current_per_pressure"] == pytest.approx(2.0 / 1e-3)
    assert f["power_ratio"] == pytest.approx(2.0 * SPEED_RPM / 1e-3)


# ---------------------------------------------------------------- windowing
def test_windowize_shapes_hop_and_start() -> None:
    x = np.arange(4000.0)
    w = windowize({"flow": x, "speed": x}, 1.0, FS)
    assert w["flow"].shape == (4, 1000) and w["flow"][1, 0] == 1000.0
    w = windowize({"flow": x}, 1.0, FS, hop_s=0.5, start_s=0.5)
    assert w["flow"].shape == (6, 1000)
    assert w["flow"][:, 0].tolist() == [500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0]


def test_windowize_a_signal_exactly_one_window_long() -> None:
    x = np.arange(1000.0)
    w = windowize({"flow": x}, 1.0, FS)
    assert w["flow"].shape == (1, 1000)
    np.testing.assert_array_equal(w["flow"][0], x)
    assert windowize({"flow": x[:999]}, 1.0, FS)["flow"].shape == (0, 1000)
    assert windowize({"flow": np.arange(1999.0)}, 1.0, FS)["flow"].shape == (1, 1000)
    assert windowize({"flow": np.arange(2000.0)}, 1.0, FS)["flow"].shape == (2, 1000)
    # start_s drops the transient: exactly one window left after it
    w = windowize({"flow": np.arange(1500.0)}, 1.0, FS, start_s=0.5)
    assert w["flow"][:, 0].tolist() == [500.0]


def test_windowize_smallest_window_and_hop() -> None:
    w = windowize({"flow": np.arange(5.0)}, 2.0, 1.0, hop_s=1.0)
    assert w["flow"].tolist() == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match=r"^window and hop must be at least 2 and 1 samples$"):
        windowize({"flow": np.arange(5.0)}, 1.0, 1.0)
    with pytest.raises(ValueError, match="at least 2 and 1 samples"):
        windowize({"flow": np.arange(5.0)}, 2.0, 1.0, hop_s=0.4)


def test_windowize_defaults_and_dtype() -> None:
    w = windowize({"flow": np.arange(2500), "speed": np.arange(2500)})  # 1 s at 1 kHz by default
    assert w["flow"].shape == (2, 1000) and w["flow"].dtype == np.float64
    short = windowize({"flow": np.arange(10), "speed": np.arange(10)})
    assert {k: v.shape for k, v in short.items()} == {"flow": (0, 1000), "speed": (0, 1000)}


def test_windowize_refuses_unequal_or_2d_signals() -> None:
    with pytest.raises(ValueError, match="equal length"):
        windowize({"flow": np.zeros(10), "speed": np.zeros(11)}, 0.005, FS)
    with pytest.raises(ValueError, match="1-D"):
        windowize({"flow": np.zeros((10, 2)), "speed": np.zeros((10, 2))}, 0.005, FS)


def test_features_from_signals_at_another_sample_rate() -> None:
    fs, n = 2000.0, 4000  # two windows of the default 1 s (2000 samples each)
    th = 2 * np.pi * CRANK_HZ * (np.arange(n) + 1) / fs
    sig = {
        "pressure": P0 + A3P * np.sin(3 * th),
        "flow": Q0 + A3 * np.sin(3 * th),
        "speed": np.full(n, SPEED_RPM),
        "current": np.full(n, I0),
    }
    F = features_from_signals(sig, fs)
    assert F.shape == (2, len(FEATURE_NAMES))
    np.testing.assert_allclose(F, extract_features(windowize(sig, 1.0, fs), fs), rtol=1e-12)
    assert F[0, FEATURE_NAMES.index("crank_freq_hz")] == pytest.approx(CRANK_HZ)
    assert F[0, FEATURE_NAMES.index("pressure_peak_freq")] == 45.0
    assert features_from_signals({k: v[:1000] for k, v in sig.items()}, 1000.0).shape == (
        1,
        len(FEATURE_NAMES),
    )


def test_sample_rate_defaults_to_one_kilohertz() -> None:
    w = {k: v[None, :] for k, v in {**pump_wave(), "speed": np.full(N, SPEED_RPM)}.items()}
    np.testing.assert_array_equal(extract_features(w), extract_features(w, 1000.0))
    sig = {k: v[0] for k, v in w.items()}
    np.testing.assert_array_equal(features_from_signals(sig), extract_features(w, 1000.0))


def test_features_from_signals_windows_then_extracts() -> None:
    one = {**pump_wave(), "speed": np.full(N, SPEED_RPM)}
    two = {k: np.concatenate([v, v]) for k, v in one.items()}
    F = features_from_signals(two, FS, 1.0)
    assert F.shape == (2, len(FEATURE_NAMES))
    np.testing.assert_allclose(F[0], extract_features({k: v[None, :] for k, v in one.items()}, FS)[0])
    F = features_from_signals(two, FS, 1.0, hop_s=0.5, start_s=0.5)
    assert F.shape == (2, len(FEATURE_NAMES))
    F = features_from_signals({**two, "speed": np.full(2 * N, 900.0)}, FS, 1.0, gear_ratio=1.0)
    assert F[0, FEATURE_NAMES.index("crank_freq_hz")] == pytest.approx(15.0)


# ---------------------------------------------------------------- shapes and bad input
def test_shapes_and_empty_input() -> None:
    w = {k: np.stack([v, v, v]) for k, v in {**pump_wave(), "speed": np.full(N, SPEED_RPM)}.items()}
    F = extract_features(w, FS)
    assert F.shape == (3, len(FEATURE_NAMES)) and F.dtype == np.float64
    assert not invalid_rows(F).any()
    assert extract_features({k: np.empty((0, N)) for k in w}, FS).shape == (0, len(FEATURE_NAMES))
    # one window given as a 1-D array per signal
    assert extract_features({k: v[0] for k, v in w.items()}, FS).shape == (1, len(FEATURE_NAMES))


def test_bad_shapes_are_refused() -> None:
    w = {k: v[None, :] for k, v in {**pump_wave(), "speed": np.full(N, SPEED_RPM)}.items()}
    with pytest.raises(KeyError, match=r"missing signals: \['current'\]"):
        extract_features({k: v for k, v in w.items() if k != "current"}, FS)
    with pytest.raises(ValueError, match="differ in shape"):
        extract_features({**w, "flow": w["flow"][:, :500]}, FS)
    with pytest.raises(ValueError, match=r"windows too short \(7 samples\)"):
        extract_features({k: v[:, :7] for k, v in w.items()}, FS)
    assert extract_features({k: v[:, :8] for k, v in w.items()}, FS).shape == (1, len(FEATURE_NAMES))


@pytest.mark.parametrize(
    ("signal", "values"),
    [
        ("speed", {0: 1e308, 1: 1e308}),  # the crank angle overflows to inf (a crash before)
        ("speed", {0: 1e308, 1: 1e308, 2: -np.inf}),  # ... and then inf - inf
        ("flow", {5: np.nan}),
        ("pressure", {0: np.inf}),
        ("current", {999: -np.inf}),
        ("pressure", dict.fromkeys(range(N), 1e300)),  # finite, but its variance overflows
    ],
)
def test_impossible_windows_give_nan_rows_and_leave_the_others_alone(signal: str, values: dict) -> None:
    good = {**pump_wave(), "speed": np.full(N, SPEED_RPM)}
    w = {k: np.stack([v, v, v]) for k, v in good.items()}
    for j, x in values.items():
        w[signal][1, j] = x
    with np.errstate(all="raise"):  # nothing leaks out as a floating-point warning either
        F = extract_features(w, FS)
    assert invalid_rows(F).tolist() == [False, True, False]
    assert np.isnan(F[1]).all()
    reference = extract_features({k: v[None, :] for k, v in good.items()}, FS)[0]
    np.testing.assert_allclose(F[0], reference, rtol=1e-12)
    np.testing.assert_allclose(F[2], reference, rtol=1e-12)


def test_invalid_rows() -> None:
    assert invalid_rows(np.array([[1.0, 2.0], [np.nan, 1.0], [1.0, np.inf], [0.0, 0.0]])).tolist() == [
        False,
        True,
        True,
        False,
    ]
