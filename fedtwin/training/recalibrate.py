"""Estimate the plant's operating point from streamed healthy data, for the retrain flow's recalibration.

The speed sensor reports **motor** speed; the crank (``OperatingPoint.speed_rpm``) turns ``gear_ratio`` times
slower (reference design: motor ~1916 rpm, crank ~958 rpm). The drive's set-point is 1.0731 x the nominal
speed and its proportional droop brings the crank back to about the nominal speed, so the measured crank
speed estimates ``speed_rpm`` (within ~0.5 %). The load is the outlet orifice's area factor
(``OperatingPoint.load_area_factor``): the manifold discharges through a laminar pipe (resistance ``R``) and
the orifice into the system back-pressure, so in steady state
``p - p_back = R Q + (Q / (Cd * A * f * sqrt(2 / rho)))^2``, which gives ``f`` in closed form per window for
a known back-pressure (7 bar unless told). ``to_operating_point`` can refine it against the simulator (one
vectorised batch run), which also absorbs what the closed form ignores (the flow pulsation).

Two entry points: :func:`estimate_operating_point` takes sensor signals (streams or windows of samples),
:func:`estimate_from_features` takes feature windows (one row per window, the per-window signal means of
``fedtwin.data.features.LEVEL_FEATURES``), as the drift monitor holds them; both give the same estimate for
the
same windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fedtwin.data.features import LEVEL_FEATURES
from plant_models import OperatingPoint, PumpParams, Scenario, SensorConfig, simulate_batch
from plant_models.params import default_params
from plant_models.spec import OPERATING_POINT

REQUIRED_SIGNALS = ("pressure", "flow", "speed")
LOAD_FACTOR_RANGE = OPERATING_POINT.load_area_factor_range  # OperatingPoint's valid load_area_factor span
CRANK_RPM_MAX = OPERATING_POINT.speed_rpm_max  # OperatingPoint's valid speed_rpm upper bound
BACK_PRESSURE_BAR = OPERATING_POINT.back_pressure_bar  # assumed unless told (the reference's 7 bar)
MIN_ORIFICE_DROP_BAR = (
    0.01  # a smaller orifice drop is within the pipe/pulsation error: load not identifiable
)


@dataclass
class OperatingPointEstimate:
    """Robust (median over windows) operating point seen in healthy data.

    Attributes
    ----------
    speed_rpm : float
        Crank speed (rpm), i.e. measured motor speed / gear ratio; comparable to ``OperatingPoint.speed_rpm``.
    motor_speed_rpm : float
        Measured motor speed (rpm).
    outlet_pressure_bar, flow_lpm, current_a : float
        Mean outlet gauge pressure (bar), discharge flow (L/min) and motor current (A; NaN if not streamed).
    load_area_factor : float
        Closed-form orifice estimate of ``OperatingPoint.load_area_factor`` (not clipped; inf when the
        pressure does not exceed back-pressure + pipe drop).
    n_windows : int
        Windows the medians are taken over.
    spread : dict of str to float
        Robust standard deviation across windows (1.4826 * MAD) of each quantity above, same units.
    load_limited : bool
        The orifice drop (pressure above back-pressure and pipe drop) is below ``MIN_ORIFICE_DROP_BAR``: the
        pressure no longer reflects the orifice, and ``load_area_factor`` is only a lower bound.
    back_pressure_bar : float
        System back-pressure assumed (bar gauge).
    notes : list of str
        Human-readable caveats.
    """

    speed_rpm: float
    motor_speed_rpm: float
    outlet_pressure_bar: float
    flow_lpm: float
    current_a: float
    load_area_factor: float
    n_windows: int
    spread: dict[str, float] = field(default_factory=dict)
    load_limited: bool = False
    back_pressure_bar: float = BACK_PRESSURE_BAR
    notes: list[str] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        """Rough 0..1 trust: 1 - worst relative spread of speed, pressure and flow; 0 if load is unseen."""
        if self.load_limited:
            return 0.0
        rel = [
            self.spread.get(k, 0.0) / max(abs(v), 1e-9)
            for k, v in (
                ("speed_rpm", self.speed_rpm),
                ("outlet_pressure_bar", self.outlet_pressure_bar),
                ("flow_lpm", self.flow_lpm),
            )
        ]
        return float(np.clip(1.0 - max(rel), 0.0, 1.0))


def _windows(values: np.ndarray, per_window: int) -> np.ndarray:
    """Rows = windows: 2-D input is taken as already windowed; 1-D is cut into whole windows."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 2:
        return arr
    if arr.ndim != 1:
        raise ValueError(f"signals must be 1-D streams or 2-D (windows x samples), got {arr.ndim}-D")
    n = arr.size // per_window
    return arr[: n * per_window].reshape(n, per_window)


def _robust_std(x: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size else math.nan


def _orifice_k(params: PumpParams) -> float:
    """Flow per sqrt(Pa) through the load orifice at factor 1 (m^3/s/sqrt(Pa))."""
    return params.discharge_coeff * math.sqrt(2.0 / params.fluid_density_kg_m3) * params.load_area_m2


def estimate_operating_point(
    signals: Mapping[str, np.ndarray],
    fs: float,
    *,
    params: PumpParams | None = None,
    window_s: float = 1.0,
    min_windows: int = 3,
    back_pressure_bar: float = BACK_PRESSURE_BAR,
) -> OperatingPointEstimate:
    """Estimate speed, outlet pressure, flow and load factor from healthy sensor data.

    Parameters
    ----------
    signals : mapping of str to numpy.ndarray
        ``pressure`` (bar gauge), ``flow`` (L/min), ``speed`` (motor rpm), optionally ``current`` (A); each a
        1-D stream (cut into ``window_s`` windows) or a 2-D array with one window per row.
    fs : float
        Sample rate (Hz) of the streams.
    params : PumpParams, optional
        Plant parameters (gear ratio, pipe, load orifice); default the plant's (calibrated) parameters.
    window_s : float
        Window length for 1-D streams; whole crank revolutions are not needed at >= ~0.5 s.
    min_windows : int
        Fewest windows accepted; fewer raise ``ValueError``.
    back_pressure_bar : float
        System back-pressure the load orifice discharges into (bar gauge).

    Raises
    ------
    ValueError
        A required signal is missing, has non-finite values, windows are too few, or speed is not positive.
    """
    params = params or default_params()
    missing = [s for s in REQUIRED_SIGNALS if s not in signals]
    if missing:
        raise ValueError(f"signals lack {', '.join(missing)}; need {', '.join(REQUIRED_SIGNALS)}")
    per_window = max(1, round(window_s * fs))
    names = [*REQUIRED_SIGNALS, *(["current"] if "current" in signals else [])]
    win = {name: _windows(signals[name], per_window) for name in names}
    for name, arr in win.items():
        if not np.isfinite(arr).all():
            raise ValueError(f"signal {name} has {int((~np.isfinite(arr)).sum())} non-finite values")
    n_windows = min(arr.shape[0] for arr in win.values())
    if n_windows < min_windows:
        raise ValueError(
            f"only {n_windows} windows of {per_window} samples; need at least {min_windows} "
            f"({min_windows * window_s:g} s at {fs:g} Hz)"
        )
    means = {name: arr[:n_windows].mean(axis=1) for name, arr in win.items()}
    return _estimate(means, params, back_pressure_bar)


class FeatureColumns(Protocol):
    """Feature windows by column name: a pandas DataFrame or a mapping of name to 1-D array."""

    def __getitem__(self, key: str, /) -> Any: ...

    def __contains__(self, key: object, /) -> bool: ...


def estimate_from_features(
    features: FeatureColumns,
    *,
    params: PumpParams | None = None,
    min_windows: int = 3,
    back_pressure_bar: float = BACK_PRESSURE_BAR,
) -> OperatingPointEstimate:
    """:func:`estimate_operating_point` from feature windows instead of samples.

    Parameters
    ----------
    features : DataFrame or mapping of str to array
        One row per window; needs the window means of pressure, flow and speed (``LEVEL_FEATURES``:
        ``pressure_mean_bar``, ``flow_mean``, ``speed_mean_rpm``), uses the current's (``current_mean_a``)
        when present. Other columns are ignored.
    params, min_windows, back_pressure_bar
        As for :func:`estimate_operating_point`.

    Raises
    ------
    ValueError
        A required column is missing or not finite, windows are too few, or speed is not positive.
    """
    params = params or default_params()
    required = [LEVEL_FEATURES[s] for s in REQUIRED_SIGNALS]
    missing = [c for c in required if c not in features]
    if missing:
        raise ValueError(f"feature windows lack {', '.join(missing)}; need {', '.join(required)}")
    optional = [s for s in ("current",) if LEVEL_FEATURES[s] in features]
    means = {
        s: np.asarray(features[LEVEL_FEATURES[s]], dtype=float).reshape(-1)
        for s in (*REQUIRED_SIGNALS, *optional)
    }
    for name, arr in means.items():
        if not np.isfinite(arr).all():
            raise ValueError(
                f"feature {LEVEL_FEATURES[name]} has {int((~np.isfinite(arr)).sum())} non-finite values"
            )
    n_windows = min(arr.size for arr in means.values())
    if n_windows < min_windows:
        raise ValueError(f"only {n_windows} feature windows; need at least {min_windows}")
    return _estimate({s: arr[:n_windows] for s, arr in means.items()}, params, back_pressure_bar)


def _estimate(
    means: Mapping[str, np.ndarray], params: PumpParams, back_pressure_bar: float
) -> OperatingPointEstimate:
    """The estimate from per-window means of ``pressure``, ``flow``, ``speed`` and optionally ``current``."""
    motor, pressure, flow = means["speed"], means["pressure"], means["flow"]
    n_windows = int(motor.size)
    current = means["current"] if "current" in means else np.full(n_windows, math.nan)
    if np.median(motor) <= 0.0:
        raise ValueError(f"median motor speed {np.median(motor):.3g} rpm is not positive; pump stopped?")
    # Pressure above back-pressure and laminar pipe drop is the orifice's: (Q / (k f))^2.
    q = flow / 60_000.0
    orifice_drop = pressure * 1e5 - back_pressure_bar * 1e5 - params.pipe_resistance * q
    with np.errstate(divide="ignore", invalid="ignore"):
        load = q / (_orifice_k(params) * np.sqrt(orifice_drop))
    load = np.where(np.isfinite(load) & (orifice_drop > 0.0), load, math.inf)
    per_quantity = {
        "speed_rpm": motor / params.gear_ratio,
        "motor_speed_rpm": motor,
        "outlet_pressure_bar": pressure,
        "flow_lpm": flow,
        "current_a": current,
        "load_area_factor": load,
    }
    med = {k: float(np.median(v)) for k, v in per_quantity.items()}
    spread = {k: _robust_std(v) for k, v in per_quantity.items()}
    notes: list[str] = []
    drop_bar = float(np.median(orifice_drop)) * 1e-5
    load_limited = drop_bar < MIN_ORIFICE_DROP_BAR
    if load_limited:
        notes.append(
            f"orifice drop {drop_bar:.3g} bar (pressure {med['outlet_pressure_bar']:.2f} bar over a "
            f"{back_pressure_bar:g} bar back-pressure and the pipe) is too small to see the load: "
            f"load factor {med['load_area_factor']:.3g} is a lower bound"
        )
    if med["speed_rpm"] > CRANK_RPM_MAX:
        notes.append(
            f"crank speed {med['speed_rpm']:.0f} rpm exceeds the model's {CRANK_RPM_MAX:g} rpm limit"
        )
    return OperatingPointEstimate(
        n_windows=n_windows,
        spread=spread,
        load_limited=load_limited,
        back_pressure_bar=back_pressure_bar,
        notes=notes,
        **med,
    )


def _clip_load(value: float) -> float:
    return float(np.clip(value, *LOAD_FACTOR_RANGE))


def to_operating_point(
    estimate: OperatingPointEstimate,
    params: PumpParams | None = None,
    *,
    refine: bool = True,
    span: float = 0.25,
    n_candidates: int = 9,
    duration_s: float = 0.6,
) -> OperatingPoint:
    """Turn an estimate into the simulator's ``OperatingPoint`` (crank rpm, load area factor, back-pressure).

    With ``refine``, simulates ``n_candidates`` noise-free healthy runs at the estimated speed with load
    factors within ``+-span`` (log scale) of the closed-form value, in one vectorised batch (~1 s), and
    interpolates the factor whose mean outlet pressure matches the measured one. Refinement is skipped when
    the orifice drop is too small to see the load or the pressure falls outside the candidates' range; the
    closed-form value, clipped to [0.2, 5], is used then.
    """
    params = params or default_params()
    speed = float(np.clip(estimate.speed_rpm, 1e-3, CRANK_RPM_MAX))
    guess = _clip_load(estimate.load_area_factor)
    back = float(np.clip(estimate.back_pressure_bar, *OPERATING_POINT.back_pressure_bar_range))

    def point(load: float) -> OperatingPoint:
        return OperatingPoint(speed_rpm=speed, load_area_factor=load, back_pressure_bar=back)

    if not refine or estimate.load_limited:
        return point(guess)
    factors = np.unique(np.clip(guess * np.exp(np.linspace(-span, span, n_candidates)), *LOAD_FACTOR_RANGE))
    quiet = SensorConfig(
        noise_pressure=0.0, noise_flow=0.0, noise_speed=0.0, noise_current=0.0,
        quant_pressure=0.0, quant_flow=0.0, quant_speed=0.0, quant_current=0.0,
    )  # fmt: skip
    runs = simulate_batch(
        [
            Scenario(
                op=point(float(f)),
                duration_s=duration_s,
                sensors=quiet,
                seed=0,
            )
            for f in factors
        ],
        params,
    )
    ok = [(f, float(r.signals["pressure"].mean())) for f, r in zip(factors, runs, strict=True) if r.signals]
    if len(ok) < 2:
        return point(guess)
    f_ok = np.array([f for f, _ in ok])
    p_ok = np.array([p for _, p in ok])
    target = estimate.outlet_pressure_bar
    # Pressure falls monotonically with the orifice area; interpolate log factor against pressure.
    order = np.argsort(p_ok)
    p_sorted, f_sorted = p_ok[order], f_ok[order]
    if not (p_sorted[0] <= target <= p_sorted[-1]) or target <= 0.0 or p_sorted[0] <= 0.0:
        return point(guess)
    log_f = np.interp(target, p_sorted, np.log(f_sorted))
    return point(_clip_load(float(np.exp(log_f))))


def summary(estimate: OperatingPointEstimate, op: OperatingPoint) -> dict[str, float]:
    """The operating point for a flow's result: the simulator's speed and load, the measured levels."""
    return {
        "speed_rpm": float(op.speed_rpm),
        "load_area_factor": float(op.load_area_factor),
        "outlet_pressure_bar": float(estimate.outlet_pressure_bar),
        "flow_lpm": float(estimate.flow_lpm),
        "n_windows": float(estimate.n_windows),
    }
