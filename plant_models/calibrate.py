"""Calibrate the healthy plant's uncertain parameters to measured healthy signals (pure: numpy + scipy).

The reference's parameter-estimation workflow: simulate the healthy pump at the measured operating point,
compare physically meaningful summaries with the measurement, and let ``scipy.optimize.least_squares``
move the uncertain parameters (check-valve crack/full-open pressures, entrained air, outlet compliance,
load orifice, oil viscosity of the outlet pipe, crank friction). Only healthy behaviour is fitted; how
each fault moves the signals is left to the physics.

Summaries (:func:`signal_targets`): mean outlet pressure, pressure ripple (root-sum-square of the crank-order
lines 1..20, so sensor noise does not count as ripple), the pressure's crank orders 6, 9, 12, 15 relative to
order 3, mean flow, mean motor speed and mean supply current. Without measurements the default target is
:data:`REFERENCE_TARGETS`, the reference's published calibration facts (mean 7.25 bar, ripple ~0.03 bar,
orders 3 and 6 equal, 9/12/15 about 0.25-0.3 of order 3, shaft power ~640 W, ~38 L/min), where shaft power
replaces the current (the reference states power, not current).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from plant_models.params import PumpParams, params_from_dict, params_to_dict
from plant_models.runner import simulate_truth
from plant_models.scenario import OperatingPoint, Scenario, SensorConfig

MEASURED_COLUMNS: tuple[str, ...] = ("pressure", "flow", "speed", "current")
"""Required columns of a measured file: bar gauge, L/min, motor rpm, A (an optional ``time`` column in s)."""

MIN_DURATION_S = 1.0
"""Shortest measurement accepted (s): 16 crank revolutions, enough to separate the crank orders."""

ORDERS: tuple[int, ...] = (3, 6, 9, 12, 15)

REFERENCE_TARGETS: dict[str, float] = {
    "mean_pressure_bar": 7.25,
    "ripple_std_bar": 0.03,
    "order6_over_order3": 1.0,
    "order9_over_order3": 0.275,
    "order12_over_order3": 0.275,
    "order15_over_order3": 0.275,
    "shaft_power_w": 640.0,
    "mean_flow_lpm": 38.0,
}
"""The reference's calibration facts for the healthy pump at 958 rpm, 7 bar back-pressure (REFERENCE.md)."""

REFERENCE_SCALES: dict[str, float] = {
    "mean_pressure_bar": 0.02,
    "ripple_std_bar": 0.003,
    "order6_over_order3": 0.1,
    "order9_over_order3": 0.05,
    "order12_over_order3": 0.05,
    "order15_over_order3": 0.05,
    "shaft_power_w": 10.0,
    "mean_flow_lpm": 1.0,
}
"""How loosely the reference states each fact ("about 0.03 bar", "about 0.25-0.3", "~38 L/min")."""

TARGET_SCALES: dict[str, float] = {
    "mean_pressure_bar": 0.02,
    "ripple_std_bar": 0.002,
    "order6_over_order3": 0.05,
    "order9_over_order3": 0.03,
    "order12_over_order3": 0.03,
    "order15_over_order3": 0.03,
    "shaft_power_w": 5.0,
    "mean_flow_lpm": 0.2,
    "mean_speed_rpm": 2.0,
    "mean_current_a": 0.2,
}
"""What one unit of residual means for each target (about the tolerance a fit should reach)."""

FIT_BOUNDS: dict[str, tuple[float, float]] = {
    "valve_crack_pa": (0.1e5, 0.6e5),
    "valve_open_pa": (0.7e5, 2.5e5),
    "air_fraction": (1e-4, 0.03),
    "outlet_volume_m3": (1e-4, 8e-3),
    "load_area_m2": (5e-5, 8e-4),
    "fluid_viscosity_m2_s": (5e-6, 1e-4),
    "crank_coulomb_nm": (0.0, 3.0),
    "dead_volume_m3": (3e-6, 5e-5),
}
"""Uncertain parameters and the physically plausible span each may be fitted within."""

DEFAULT_FIT: tuple[str, ...] = (
    "valve_crack_pa",
    "valve_open_pa",
    "air_fraction",
    "load_area_m2",
    "crank_coulomb_nm",
)
"""Fitted to a measurement by default: the check valves, the entrained air, the load orifice and the crank
friction. Nine summaries do not separate every pair (friction and valve throttling both cost current), so
a fit matches the measurement but not necessarily every parameter; fit fewer when others are known."""

REFERENCE_FIT: tuple[str, ...] = (
    "outlet_volume_m3",
    "fluid_viscosity_m2_s",
    "crank_coulomb_nm",
    "dead_volume_m3",
)
"""Fitted to the reference's facts: only what its model description leaves open (pipe bore/oil viscosity,
outlet compliance, crank friction, cylinder dead volume); its check valves, 2e-4 m^2 orifice and 0.5 % air
are published, so they keep their values."""

_QUIET = SensorConfig(
    noise_pressure=0.0, noise_flow=0.0, noise_speed=0.0, noise_current=0.0,
    quant_pressure=0.0, quant_flow=0.0, quant_speed=0.0, quant_current=0.0,
)  # fmt: skip


def order_amplitudes(x: np.ndarray, fs: float, crank_hz: float, orders: Sequence[int]) -> dict[int, float]:
    """Amplitude of each crank order of ``x`` over the longest whole number of crank revolutions.

    A direct projection onto ``exp(-i 2 pi k f_crank t)`` over whole revolutions has no leakage between
    orders and does not depend on the record length (a windowed FFT's line heights do), so a 1 s simulation
    and a 3 s measurement are compared like for like.
    """
    x = np.asarray(x, dtype=float)
    n_rev = math.floor(x.size * crank_hz / fs)
    if n_rev < 1:
        raise ValueError(f"{x.size} samples at {fs:g} Hz hold no whole crank revolution at {crank_hz:.3g} Hz")
    n = max(1, round(n_rev * fs / crank_hz))
    seg = x[:n] - float(np.mean(x[:n]))
    phase = (2.0 * math.pi * crank_hz / fs) * np.arange(n)
    return {int(o): float(2.0 / n * abs(np.exp(-1j * o * phase) @ seg)) for o in orders}


def signal_targets(signals: Mapping[str, np.ndarray], fs: float, gear_ratio: float = 2.0) -> dict[str, float]:
    """Summaries of healthy signals that the calibration matches (see the module docstring)."""
    speed = float(np.mean(signals["speed"]))
    crank_hz = speed / gear_ratio / 60.0
    amp = order_amplitudes(signals["pressure"], fs, crank_hz, range(1, 21))
    out = {
        "mean_pressure_bar": float(np.mean(signals["pressure"])),
        "ripple_std_bar": float(math.sqrt(sum(a * a for a in amp.values()) / 2.0)),
        "mean_flow_lpm": float(np.mean(signals["flow"])),
        "mean_speed_rpm": speed,
    }
    for o in ORDERS[1:]:
        out[f"order{o}_over_order3"] = amp[o] / amp[3]
    if "current" in signals:
        out["mean_current_a"] = float(np.mean(signals["current"]))
    return out


def validate_measured(columns: Mapping[str, np.ndarray], fs: float = 1000.0) -> dict[str, np.ndarray]:
    """Check a measured healthy record and return its four signals as float arrays.

    Raises ``ValueError`` (one line, naming the column) on missing columns, NaN/inf, a record shorter than
    :data:`MIN_DURATION_S`, or a ``time`` column whose sample rate is not ``fs`` (within 1 %).
    """
    missing = [c for c in MEASURED_COLUMNS if c not in columns]
    if missing:
        raise ValueError(
            f"measured data lacks column(s) {', '.join(missing)}; need {', '.join(MEASURED_COLUMNS)} "
            f"(got {', '.join(map(str, columns)) or 'none'})"
        )
    out = {}
    for c in MEASURED_COLUMNS:
        try:
            arr = np.asarray(columns[c], dtype=float)
        except (TypeError, ValueError):
            raise ValueError(f"column {c} is not numeric") from None
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"column {c} has {bad.size} NaN/inf value(s), first at row {int(bad[0])}")
        out[c] = arr
    n = len(out["pressure"])
    if n < MIN_DURATION_S * fs:
        raise ValueError(
            f"measured data has {n} samples ({n / fs:.3g} s at {fs:g} Hz); need at least {MIN_DURATION_S:g} s"
        )
    if "time" in columns:
        t = np.asarray(columns["time"], dtype=float)
        if not np.isfinite(t).all():
            raise ValueError("column time has NaN/inf values")
        step = float(np.median(np.diff(t)))
        if not step > 0.0 or abs(1.0 / step - fs) > 0.01 * fs:
            rate = 1.0 / step if step > 0.0 else math.nan
            raise ValueError(f"column time gives a sample rate of {rate:.4g} Hz; expected {fs:g} Hz")
    if float(np.mean(out["speed"])) <= 0.0:
        raise ValueError("column speed has a non-positive mean: the pump is not running")
    return out


def read_measured(path: str | Path, fs: float = 1000.0) -> dict[str, np.ndarray]:
    """Read a ``.csv`` (header row) or ``.parquet`` file and validate it (:func:`validate_measured`)."""
    src = Path(path)
    suffix = src.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"measured file {src}: expected a .csv or .parquet file")
    if not src.is_file():
        raise ValueError(f"measured file {src}: not found")
    import pandas as pd  # local: the physics package needs only numpy/scipy; pandas (1.9 s) only reads files

    try:
        frame = pd.read_csv(src) if suffix == ".csv" else pd.read_parquet(src)
    except Exception as exc:  # the parsers of both formats raise many types
        raise ValueError(f"measured file {src}: unreadable ({type(exc).__name__}: {exc})") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    cols = {c: frame[c].to_numpy() for c in frame.columns}
    return validate_measured(cols, fs)


def simulate_targets(
    params: PumpParams,
    op: OperatingPoint | None = None,
    *,
    duration_s: float = 1.0,
    warmup_s: float = 0.3,
) -> dict[str, float]:
    """Noise-free healthy simulation summarised like a measurement, plus ``shaft_power_w``."""
    sc = Scenario(op=op or OperatingPoint(), sensors=_QUIET, duration_s=duration_s, warmup_s=warmup_s)
    res = simulate_truth(sc, params)
    if res.signals is None or res.truth is None:
        raise RuntimeError(res.error or "simulation failed")
    out = signal_targets(res.signals, sc.sensors.fs, params.gear_ratio)
    out["shaft_power_w"] = float(np.mean(res.truth["power_shaft"]))
    return out


@dataclass
class CalibrationResult:
    """Outcome of :func:`calibrate`.

    Attributes
    ----------
    params : PumpParams
        Fitted parameters (the others unchanged).
    fitted : dict of str to float
        The fitted parameters' values.
    start : dict of str to float
        Their starting values.
    targets : dict of str to float
        What was matched.
    before, after : dict of str to float
        Model summaries before and after the fit.
    cost_before, cost_after : float
        Half the sum of squared scaled residuals.
    nfev : int
        Simulations used by the optimiser.
    """

    params: PumpParams
    fitted: dict[str, float]
    start: dict[str, float]
    targets: dict[str, float]
    before: dict[str, float]
    after: dict[str, float]
    cost_before: float
    cost_after: float
    nfev: int
    scales: dict[str, float] = field(default_factory=lambda: dict(TARGET_SCALES))
    notes: list[str] = field(default_factory=list)

    def residuals(self, which: str = "after") -> dict[str, float]:
        """Scaled residual per target (model - target) / scale, ``before`` or ``after`` the fit."""
        model = self.after if which == "after" else self.before
        return {k: (model[k] - v) / self.scales[k] for k, v in self.targets.items()}

    def report(self) -> list[str]:
        """Human-readable lines: per target, target / before / after; per parameter, start -> fitted."""
        lines = [f"{'target':22s} {'value':>10s} {'before':>10s} {'after':>10s}  (residual before -> after)"]
        rb, ra = self.residuals("before"), self.residuals("after")
        for k, v in self.targets.items():
            lines.append(
                f"{k:22s} {v:10.4g} {self.before[k]:10.4g} {self.after[k]:10.4g}  "
                f"({rb[k]:+.2f} -> {ra[k]:+.2f})"
            )
        lines.append(f"cost {self.cost_before:.4g} -> {self.cost_after:.4g} in {self.nfev} simulations")
        for k, v in self.fitted.items():
            lines.append(f"{k:22s} {self.start[k]:.5g} -> {v:.5g}")
        return lines + self.notes

    def record(self) -> dict[str, object]:
        """JSON-able summary for the parameter file."""
        return {
            "targets": self.targets,
            "before": self.before,
            "after": self.after,
            "start": self.start,
            "fitted": self.fitted,
            "cost_before": self.cost_before,
            "cost_after": self.cost_after,
        }


def calibrate(
    targets: Mapping[str, float] | None = None,
    *,
    start: PumpParams | None = None,
    fit: Sequence[str] = DEFAULT_FIT,
    op: OperatingPoint | None = None,
    duration_s: float = 0.5,
    max_sims: int = 60,
    scales: Mapping[str, float] | None = None,
) -> CalibrationResult:
    """Fit the parameters named in ``fit`` so the simulated summaries match ``targets``.

    Parameters
    ----------
    targets : mapping, optional
        Summaries to match (keys of :data:`TARGET_SCALES`); default :data:`REFERENCE_TARGETS`.
    start : PumpParams, optional
        Starting parameters (default: the reference values).
    fit : sequence of str
        Parameters to fit, each a key of :data:`FIT_BOUNDS`.
    op : OperatingPoint, optional
        Operating point of the measurement (default nominal).
    duration_s : float
        Simulated steady seconds per evaluation (noise-free and summarised over whole revolutions, so
        short runs suffice).
    max_sims : int
        Simulation budget (each optimiser step costs one simulation per fitted parameter plus one).
    scales : mapping, optional
        One unit of residual per target (default :data:`TARGET_SCALES`, or :data:`REFERENCE_SCALES` when
        ``targets`` is omitted).
    """
    if targets is None:
        targets, scales = REFERENCE_TARGETS, scales or REFERENCE_SCALES
    targets = dict(targets)
    scale_of = {**TARGET_SCALES, **(scales or {})}
    unknown = sorted(set(targets) - set(TARGET_SCALES))
    if unknown:
        raise ValueError(
            f"unknown calibration target(s) {', '.join(unknown)}; known: {', '.join(TARGET_SCALES)}"
        )
    for k, v in targets.items():
        if not math.isfinite(v):
            raise ValueError(f"calibration target {k}={v!r} is not finite")
    bad = [name for name in fit if name not in FIT_BOUNDS]
    if bad or not fit:
        raise ValueError(f"cannot fit {', '.join(bad) or 'nothing'}; choose from {', '.join(FIT_BOUNDS)}")
    start = start or PumpParams()
    names = list(fit)
    lo = np.array([FIT_BOUNDS[k][0] for k in names])
    hi = np.array([FIT_BOUNDS[k][1] for k in names])
    x0 = np.clip(np.array([getattr(start, k) for k in names], dtype=float), lo, hi)
    # Optimise in units of each parameter's span so one finite-difference step suits all of them.
    span = hi - lo

    def params_at(u: np.ndarray) -> PumpParams:
        return params_from_dict(dict(zip(names, (lo + u * span).tolist(), strict=True)), base=start)

    keys = list(targets)
    scale_arr = np.array([scale_of[k] for k in keys])
    want = np.array([targets[k] for k in keys])
    cache: dict[bytes, dict[str, float]] = {}

    def model(u: np.ndarray) -> dict[str, float]:
        key = u.tobytes()
        if key not in cache:
            cache[key] = simulate_targets(params_at(u), op, duration_s=duration_s)
        return cache[key]

    def residual(u: np.ndarray) -> np.ndarray:
        try:
            got = model(u)
        except (RuntimeError, ValueError):
            return np.full(len(keys), 1e3)  # a diverged or invalid trial point: far from any target
        res: np.ndarray = (np.array([got[k] for k in keys]) - want) / scale_arr
        return res

    u0 = (x0 - lo) / span
    r0 = residual(u0)
    # least_squares does not count its finite-difference simulations in max_nfev.
    max_nfev = max(1, (max_sims - 1) // (len(names) + 1))
    sol = least_squares(residual, u0, bounds=(0.0, 1.0), diff_step=1e-3, max_nfev=max_nfev, x_scale=1.0)
    best = params_at(sol.x)
    before, after = model(u0), model(sol.x)
    notes = [] if sol.success else [f"optimiser stopped: {sol.message}"]
    return CalibrationResult(
        params=best,
        fitted={k: float(getattr(best, k)) for k in names},
        start={k: float(getattr(start, k)) for k in names},
        targets=targets,
        before=before,
        after=after,
        cost_before=float(0.5 * r0 @ r0),
        cost_after=float(sol.cost),
        nfev=len(cache),
        scales={k: scale_of[k] for k in keys},
        notes=notes,
    )


def calibrate_measured(
    signals: Mapping[str, np.ndarray],
    fs: float = 1000.0,
    *,
    start: PumpParams | None = None,
    fit: Sequence[str] = DEFAULT_FIT,
    back_pressure_bar: float = 7.0,
    duration_s: float = 0.5,
    max_sims: int = 60,
) -> CalibrationResult:
    """Calibrate to a measured healthy record (validated first) at its own speed.

    The operating point's nominal speed is the measured crank speed (the drive's droop brings the model to
    about it at the nominal load; the mean speed is also a target, so a different droop shows up there).
    """
    sig = validate_measured(signals, fs)
    start = start or PumpParams()
    targets = signal_targets(sig, fs, start.gear_ratio)
    op = OperatingPoint(
        speed_rpm=float(np.clip(targets["mean_speed_rpm"] / start.gear_ratio, 1.0, 1500.0)),
        back_pressure_bar=back_pressure_bar,
    )
    return calibrate(targets, start=start, fit=fit, op=op, duration_s=duration_s, max_sims=max_sims)


__all__ = [
    "DEFAULT_FIT",
    "FIT_BOUNDS",
    "MEASURED_COLUMNS",
    "REFERENCE_FIT",
    "REFERENCE_SCALES",
    "REFERENCE_TARGETS",
    "TARGET_SCALES",
    "CalibrationResult",
    "calibrate",
    "calibrate_measured",
    "order_amplitudes",
    "params_to_dict",
    "read_measured",
    "signal_targets",
    "simulate_targets",
    "validate_measured",
]
