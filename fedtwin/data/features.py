"""Window features for pump fault detection, vectorised over windows (pure numpy).

Every signal arrives as an array of shape (n_windows, n_samples). Features come in two groups:

* the 14 features of the MathWorks reference (flow statistics, pressure spectrum 2-250 Hz), kept as published;
* physics features normalised to the operating point: the crank angle is integrated from the measured motor
  speed, so harmonics are computed per crank order (order tracking) rather than at fixed frequencies, flow is
  expressed as volumetric efficiency (flow / geometric displacement x speed), ripples are relative to means,
  and the per-cylinder features compare the three 120-degree sectors of the synchronous-average flow waveform
  (a seal leak in one cylinder breaks the 3-fold symmetry and shows at crank orders 1 and 2).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from plant_models.spec import GEOMETRY, SIGNALS

#: Geometric displacement of the reference pump (3 plungers, 24 mm bore, 30 mm stroke), litres per crank rev.
DISPLACEMENT_L_PER_REV = GEOMETRY.displacement_l_per_rev
#: Motor speed / crank speed of the reference drive.
GEAR_RATIO = GEOMETRY.gear_ratio
_CYLINDERS = GEOMETRY.cylinders
_TSA_BINS = 36  # crank-angle bins per revolution; divisible by the 3 cylinders
if _TSA_BINS % _CYLINDERS:
    raise AssertionError(f"{_TSA_BINS} crank-angle bins do not split into {_CYLINDERS} cylinder sectors")
_ORDERS = (1, 2, 3, 6)

REFERENCE_FEATURES: tuple[str, ...] = (
    "flow_mean",
    "flow_var",
    "flow_skewness",
    "flow_kurtosis",
    "flow_peak2peak",
    "flow_crest_factor",
    "flow_rms",
    "flow_mad",
    "flow_csrange",
    "pressure_peak_freq",
    "pressure_bandpower_10_20",
    "pressure_bandpower_40_60",
    "pressure_bandpower_above_100",
    "pressure_spectral_kurtosis",
)

PHYSICS_FEATURES: tuple[str, ...] = (
    "speed_mean_rpm",
    "crank_freq_hz",
    "speed_ripple_rel",
    "pressure_mean_bar",
    "pressure_ripple_rel",
    "current_mean_a",
    "current_ripple_rel",
    "current_per_pressure",
    "volumetric_efficiency",
    "flow_ripple_rel",
    "flow_min_rel",
    "hydraulic_power_w",
    "power_ratio",
    *(f"flow_order{k}_rel" for k in _ORDERS),
    *(f"pressure_order{k}_rel" for k in _ORDERS),
    *(f"current_order{k}_rel" for k in _ORDERS),
    "flow_asym_orders12",
    "pressure_asym_orders12",
    "cyl_flow_spread_rel",
    "cyl_flow_min_rel",
    "cyl_flow_max_rel",
    "tsa_flow_min_rel",
    "tsa_flow_max_rel",
    "tsa_pressure_min_rel",
    "tsa_pressure_max_rel",
    "current_order3_abs",
    "current_order6_abs",
    "speed_order3_abs",
    "current_vs_flow_phase3_cos",
    "current_vs_flow_phase3_sin",
    "current_vs_flow_phase6_cos",
    "current_vs_flow_phase6_sin",
    "speed_vs_flow_phase3_cos",
    "speed_vs_flow_phase3_sin",
)

FEATURE_NAMES: tuple[str, ...] = REFERENCE_FEATURES + PHYSICS_FEATURES

#: Per signal, its window-mean feature: the level a stuck sensor repeats, and the per-window operating point
#: the recalibration reads (``fedtwin.training.recalibrate.estimate_from_features``).
LEVEL_FEATURES: dict[str, str] = {
    "pressure": "pressure_mean_bar",
    "flow": "flow_mean",
    "speed": "speed_mean_rpm",
    "current": "current_mean_a",
}
#: Per signal, its spread within a window relative to its mean: ~0 when the sensor flat-lined.
RIPPLE_FEATURES: dict[str, str] = {
    "pressure": "pressure_ripple_rel",
    "flow": "flow_ripple_rel",
    "speed": "speed_ripple_rel",
    "current": "current_ripple_rel",
}

_EPS = 1e-12


def windowize(
    signals: Mapping[str, np.ndarray],
    window_s: float = 1.0,
    fs: float = 1000.0,
    hop_s: float | None = None,
    *,
    start_s: float = 0.0,
) -> dict[str, np.ndarray]:
    """Cut 1-D signals into windows of ``window_s`` seconds every ``hop_s`` (default: no overlap).

    Samples before ``start_s`` (start-up transient) and a trailing partial window are dropped. Returns arrays
    of shape (n_windows, n_samples) that are views when possible.
    """
    n_win = round(window_s * fs)
    hop = n_win if hop_s is None else round(hop_s * fs)
    start = round(start_s * fs)
    if n_win < 2 or hop < 1:
        raise ValueError("window and hop must be at least 2 and 1 samples")
    lengths = {name: np.asarray(x).shape for name, x in signals.items()}
    if len({s for s in lengths.values()}) != 1 or any(len(s) != 1 for s in lengths.values()):
        raise ValueError(f"signals must be 1-D and of equal length, got {lengths}")
    out = {}
    for name, x in signals.items():
        x = np.asarray(x, dtype=np.float64)[start:]
        if len(x) < n_win:
            out[name] = np.empty((0, n_win))
            continue
        view = np.lib.stride_tricks.sliding_window_view(x, n_win)[::hop]
        out[name] = view
    return out


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, population variance, skewness and (Pearson, normal=3) kurtosis per row."""
    mean = x.mean(axis=1)
    d = x - mean[:, None]
    var = np.mean(np.square(d), axis=1)
    sd = np.sqrt(var)
    d2 = d * d
    skew = np.mean(d2 * d, axis=1) / np.maximum(sd**3, _EPS)
    kurt = np.mean(d2 * d2, axis=1) / np.maximum(var * var, _EPS)
    return mean, var, skew, kurt


def _band(power: np.ndarray, freqs: np.ndarray, lo: float, hi: float) -> np.ndarray:
    sel = (freqs >= lo) & (freqs <= hi)
    total: np.ndarray = power[:, sel].sum(axis=1)
    return total


def extract_features(
    windows: Mapping[str, np.ndarray], fs: float = 1000.0, *, gear_ratio: float = GEAR_RATIO
) -> np.ndarray:
    """Feature matrix (n_windows, len(FEATURE_NAMES)) float64 from windows of the four signals.

    Never raises on values: a window holding NaN/inf, or values whose statistics overflow, gets a row of NaN
    (see :func:`invalid_rows`), so a caller can tell it from a measurement and the other windows are kept.

    Parameters
    ----------
    windows : mapping of str to ndarray
        ``pressure`` (bar), ``flow`` (L/min), ``speed`` (motor rpm), ``current`` (A); each shaped
        (n_windows, n_samples).
    fs : float
        Sample rate (Hz).
    gear_ratio : float
        Motor speed / crank speed, to turn the measured motor speed into crank angle.
    """
    missing = [s for s in SIGNALS if s not in windows]
    if missing:
        raise KeyError(f"missing signals: {missing}")
    p, q, s, i = (
        np.atleast_2d(np.asarray(windows[name], dtype=np.float64))
        for name in ("pressure", "flow", "speed", "current")
    )
    if not (p.shape == q.shape == s.shape == i.shape):
        raise ValueError(f"signal windows differ in shape: {p.shape}, {q.shape}, {s.shape}, {i.shape}")
    n_w, n = p.shape
    if n_w == 0:
        return np.empty((0, len(FEATURE_NAMES)))
    if n < 8:
        raise ValueError(f"windows too short ({n} samples)")
    # A window with NaN/inf, or values so large that the crank angle overflows, has no defined features: it
    # is computed on zeros (so the vectorised maths stays defined for the other windows) and its row is NaN.
    with np.errstate(over="ignore", invalid="ignore"):
        revs = np.cumsum(s, axis=1) * (1.0 / (60.0 * gear_ratio * fs))
    bad = ~np.asarray(
        np.isfinite(p).all(axis=1)
        & np.isfinite(q).all(axis=1)
        & np.isfinite(i).all(axis=1)
        & np.isfinite(revs).all(axis=1)
    )
    if bad.any():
        p, q, s, i, revs = (np.where(bad[:, None], 0.0, x) for x in (p, q, s, i, revs))
    with np.errstate(over="ignore", invalid="ignore"):
        out = _features(p, q, s, i, revs, fs, gear_ratio)
    # Finite input whose statistics overflow (e.g. samples of 1e300) is not a measurement either.
    out[bad | ~np.isfinite(out).all(axis=1)] = np.nan
    return out


def invalid_rows(features: np.ndarray) -> np.ndarray:
    """Mask of the feature rows that cannot be scored (any NaN/inf), as ``extract_features`` marks them."""
    return ~np.asarray(np.isfinite(np.asarray(features, dtype=np.float64)).all(axis=1))


def _features(
    p: np.ndarray,
    q: np.ndarray,
    s: np.ndarray,
    i: np.ndarray,
    revs: np.ndarray,
    fs: float,
    gear_ratio: float,
) -> np.ndarray:
    """The feature columns of finite windows; ``revs`` is the crank angle in revolutions per sample."""
    n_w, n = p.shape

    # ---- reference features: flow statistics
    q_mean, q_var, q_skew, q_kurt = _moments(q)
    q_rms = np.sqrt(np.mean(q * q, axis=1))
    q_p2p = q.max(axis=1) - q.min(axis=1)
    q_crest = np.abs(q).max(axis=1) / np.maximum(q_rms, _EPS)
    # MATLAB's mad() default, as in the reference: mean absolute deviation (also avoids a per-row sort).
    q_mad = np.mean(np.abs(q - q_mean[:, None]), axis=1)
    # Range of the integrated flow fluctuation (L/min * s): the volume swing the discharge line absorbs.
    cs = np.cumsum(q - q_mean[:, None], axis=1) / fs
    q_csrange = cs.max(axis=1) - cs.min(axis=1)

    # ---- reference features: pressure spectrum 2-250 Hz (Hann-windowed periodogram, mean removed)
    p_mean = p.mean(axis=1)
    hann = np.hanning(n)
    spec = np.abs(np.fft.rfft((p - p_mean[:, None]) * hann, axis=1)) ** 2 / (fs * np.sum(hann**2))
    spec[:, 1:] *= 2.0  # one-sided
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    in_band = (freqs >= 2.0) & (freqs <= 250.0)
    sb, fb = spec[:, in_band], freqs[in_band]
    df = freqs[1] - freqs[0]
    peak_freq = fb[np.argmax(sb, axis=1)]
    bp_10_20 = _band(spec, freqs, 10.0, 20.0) * df
    bp_40_60 = _band(spec, freqs, 40.0, 60.0) * df
    bp_100 = _band(spec, freqs, 100.0, 250.0) * df
    # Spectral kurtosis as the 4th standardised moment of the 2-250 Hz power distribution over frequency.
    w = sb / np.maximum(sb.sum(axis=1, keepdims=True), _EPS)
    cen = (w * fb).sum(axis=1)
    spread2 = (w * (fb - cen[:, None]) ** 2).sum(axis=1)
    spec_kurt = (w * (fb - cen[:, None]) ** 4).sum(axis=1) / np.maximum(spread2**2, _EPS)

    # ---- operating point
    s_mean = s.mean(axis=1)
    crank_hz = s_mean / 60.0 / gear_ratio
    s_ripple = s.std(axis=1) / np.maximum(np.abs(s_mean), _EPS)
    p_ripple = p.std(axis=1) / np.maximum(np.abs(p_mean), _EPS)
    i_mean = i.mean(axis=1)
    i_ripple = i.std(axis=1) / np.maximum(np.abs(i_mean), _EPS)
    q_abs = np.maximum(np.abs(q_mean), _EPS)
    q_theory = DISPLACEMENT_L_PER_REV * crank_hz * 60.0
    vol_eff = q_mean / np.maximum(q_theory, _EPS)
    q_ripple = np.sqrt(q_var) / q_abs
    q_min_rel = q.min(axis=1) / q_abs
    hyd_power = p_mean * 1e5 * q_mean / 60_000.0  # bar * L/min -> W
    # Electrical-to-hydraulic ratio uses current x speed as a proxy for shaft power (the motor constant
    # cancels out in the classifier's scaling); bearing friction raises it, a leak or blockage lowers the
    # hydraulic power.
    power_ratio = i_mean * s_mean / np.maximum(np.abs(hyd_power), 1e-3)
    i_per_p = i_mean / np.maximum(np.abs(p_mean), 1e-3)

    # ---- order tracking: crank angle (in revolutions) integrated from the measured speed, then the
    # time-synchronous average (TSA) over crank-angle bins; the TSA's DFT gives the crank-order amplitudes
    bins = ((revs - np.floor(revs)) * _TSA_BINS).astype(np.int64)
    np.minimum(bins, _TSA_BINS - 1, out=bins)
    bins += (np.arange(n_w) * _TSA_BINS)[:, None]
    flat = bins.ravel()
    counts = np.maximum(np.bincount(flat, minlength=n_w * _TSA_BINS).reshape(n_w, _TSA_BINS), 1)

    def tsa(x: np.ndarray) -> np.ndarray:
        return (
            np.bincount(flat, weights=x.ravel(), minlength=n_w * _TSA_BINS).reshape(n_w, _TSA_BINS) / counts
        )

    tsa_q, tsa_p, tsa_i = tsa(q), tsa(p), tsa(i)
    tsa_s = tsa(s)
    orders = {}
    spectra = {}
    for name, t, scale in (
        ("flow", tsa_q, q_abs),
        ("pressure", tsa_p, np.maximum(np.abs(p_mean), 1e-3)),
        ("current", tsa_i, np.maximum(np.abs(i_mean), 1e-3)),
        ("speed", tsa_s, np.maximum(np.abs(s_mean), 1e-3)),
    ):
        spectra[name] = np.fft.rfft(t, axis=1) * (2.0 / _TSA_BINS)
        for k in _ORDERS:
            orders[(name, k)] = np.abs(spectra[name][:, k]) / scale

    def rel_phase(a: str, b: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        # Phase of signal a's order-k component relative to signal b's: independent of the unknown crank
        # angle origin. A blocked inlet adds suction-stroke torque, shifting current against discharge flow.
        z = spectra[a][:, k] * np.conj(spectra[b][:, k])
        z = z / np.maximum(np.abs(z), 1e-30)
        return z.real, z.imag

    phases = [
        *rel_phase("current", "flow", 3),
        *rel_phase("current", "flow", 6),
        *rel_phase("speed", "flow", 3),
    ]
    flow_asym = (orders[("flow", 1)] + orders[("flow", 2)]) / np.maximum(orders[("flow", 3)], 1e-6)
    press_asym = (orders[("pressure", 1)] + orders[("pressure", 2)]) / np.maximum(
        orders[("pressure", 3)], 1e-6
    )

    # Per-cylinder (120 degree) sectors of the flow TSA. The absolute crank phase is unknown (speed gives the
    # angle up to a constant), so take the sector split with the largest spread over all shifts inside one
    # sector: the result does not depend on the phase origin.
    per = _TSA_BINS // _CYLINDERS
    best_spread = np.full(n_w, -np.inf)
    best_min = np.zeros(n_w)
    best_max = np.zeros(n_w)
    for shift in range(per):
        sec = np.roll(tsa_q, -shift, axis=1).reshape(n_w, _CYLINDERS, per).mean(axis=2)
        spread = sec.max(axis=1) - sec.min(axis=1)
        better = spread > best_spread
        best_spread = np.where(better, spread, best_spread)
        best_min = np.where(better, sec.min(axis=1), best_min)
        best_max = np.where(better, sec.max(axis=1), best_max)
    tsa_q_mean = np.maximum(np.abs(tsa_q.mean(axis=1)), _EPS)
    tsa_p_mean = np.maximum(np.abs(tsa_p.mean(axis=1)), 1e-3)

    cols = [
        q_mean,
        q_var,
        q_skew,
        q_kurt,
        q_p2p,
        q_crest,
        q_rms,
        q_mad,
        q_csrange,
        peak_freq,
        bp_10_20,
        bp_40_60,
        bp_100,
        spec_kurt,
        s_mean,
        crank_hz,
        s_ripple,
        p_mean,
        p_ripple,
        i_mean,
        i_ripple,
        i_per_p,
        vol_eff,
        q_ripple,
        q_min_rel,
        hyd_power,
        power_ratio,
        *(orders[("flow", k)] for k in _ORDERS),
        *(orders[("pressure", k)] for k in _ORDERS),
        *(orders[("current", k)] for k in _ORDERS),
        flow_asym,
        press_asym,
        best_spread / tsa_q_mean,
        best_min / tsa_q_mean,
        best_max / tsa_q_mean,
        tsa_q.min(axis=1) / tsa_q_mean,
        tsa_q.max(axis=1) / tsa_q_mean,
        tsa_p.min(axis=1) / tsa_p_mean,
        tsa_p.max(axis=1) / tsa_p_mean,
        np.abs(spectra["current"][:, 3]),
        np.abs(spectra["current"][:, 6]),
        np.abs(spectra["speed"][:, 3]),
        *phases,
    ]
    out = np.column_stack(cols).astype(np.float64)
    if out.shape[1] != len(FEATURE_NAMES):  # keeps FEATURE_NAMES and the columns in lock-step
        raise AssertionError(f"{out.shape[1]} columns vs {len(FEATURE_NAMES)} names")
    return out


def features_from_signals(
    signals: Mapping[str, np.ndarray],
    fs: float = 1000.0,
    window_s: float = 1.0,
    hop_s: float | None = None,
    *,
    start_s: float = 0.0,
    gear_ratio: float = GEAR_RATIO,
) -> np.ndarray:
    """Convenience: :func:`windowize` then :func:`extract_features`."""
    return extract_features(
        windowize(signals, window_s, fs, hop_s, start_s=start_s), fs, gear_ratio=gear_ratio
    )
