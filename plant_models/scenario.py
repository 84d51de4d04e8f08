"""Fault, operating-point, sensor and scenario descriptions, and the design-of-experiments sweep."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from plant_models import spec
from plant_models.params import check_range
from plant_models.spec import FAULTS, OPTIONAL_SIGNALS, SIGNALS

_LEAK, _INLET, _BEARING = spec.fault("leak"), spec.fault("blocked_inlet"), spec.fault("bearing")
_OP = spec.OPERATING_POINT

LEAK_MAX = _LEAK.study_range[1]
"""Largest seal leak area (severity 1), as a fraction of the check valve max area."""
INLET_HEALTHY = _INLET.healthy
"""Healthy inlet check valve area factor."""
INLET_MIN = _INLET.study_range[1]
"""Inlet check valve area factor at severity 1 (the accuracy study's most blocked level)."""
INLET_FLOOR = _INLET.accepted[0]
"""Smallest accepted inlet area factor (the fault-sweep study's most blocked level)."""
INLET_STUDY_MILDEST = _INLET.study_range[0]
"""The accuracy study's mildest blocked-inlet level; factors from 1 down to it are the reference's
"nominal variants" (its fault-sweep study), reached here at severity ``INLET_STUDY_SEVERITY``."""
INLET_STUDY_SEVERITY = 0.1
"""Severity of the accuracy study's mildest level: severities 0.1, 0.2, ..., 1.0 reproduce its ten levels."""


def inlet_factor(severity: float) -> float:
    """Inlet area factor of a blocked-inlet severity in [0, 1]: piecewise linear, 1 -> 0.8 over [0, 0.1]
    (the reference's nominal variants), 0.8 -> 0.53 over [0.1, 1] (its accuracy study's ten levels)."""
    if severity <= INLET_STUDY_SEVERITY:
        return INLET_HEALTHY - severity / INLET_STUDY_SEVERITY * (INLET_HEALTHY - INLET_STUDY_MILDEST)
    frac = (severity - INLET_STUDY_SEVERITY) / (1.0 - INLET_STUDY_SEVERITY)
    return INLET_STUDY_MILDEST - frac * (INLET_STUDY_MILDEST - INLET_MIN)


def inlet_severity(factor: float) -> float:
    """Inverse of :func:`inlet_factor` (factors below 0.53 give severities above 1)."""
    if factor >= INLET_STUDY_MILDEST:
        return (INLET_HEALTHY - factor) / (INLET_HEALTHY - INLET_STUDY_MILDEST) * INLET_STUDY_SEVERITY
    frac = (INLET_STUDY_MILDEST - factor) / (INLET_STUDY_MILDEST - INLET_MIN)
    return INLET_STUDY_SEVERITY + frac * (1.0 - INLET_STUDY_SEVERITY)


BEARING_MAX = _BEARING.study_range[1]
"""Largest extra crank bearing friction, N*m/(deg/s)."""

ALL_FAULT_SETS: tuple[tuple[str, ...], ...] = tuple(
    combo for n in range(len(FAULTS) + 1) for combo in itertools.combinations(FAULTS, n)
)
"""The 8 classes of the reference study: healthy, 3 single faults, 3 pairs, all three."""


@dataclass(frozen=True)
class Faults:
    """Fault parameters (faults change physics or sensor models, never edit signals afterwards).

    Attributes
    ----------
    leak : float
        Seal leak area of one cylinder to the crankcase as a fraction of the check valve max area, 0..0.036.
    leak_cylinder : int
        Which cylinder leaks, 0..2 (0 is the reference's cylinder 1).
    inlet_area_factor : float
        Max open area factor of one cylinder's inlet check valve: 1 healthy, 0.53 at severity 1, accepted
        down to 0.3 (the fault-sweep study's range).
    inlet_cylinder : int
        Which cylinder's inlet valve is blocked, 0..2 (0 is the reference's cylinder 1).
    bearing_friction : float
        Extra crank bearing viscous friction, N*m/(deg/s), 0..6e-4 (healthy damping is 1e-4).
    broken_winding : float
        Broken motor winding, 0..1: the fraction of one of the armature's two parallel paths that is open,
        so the armature resistance is ``R / (1 - broken_winding / 2)`` (doubled at 1). Off in the reference
        studies, so not one of ``FAULTS`` (no label).
    drift_signal : str or None
        Sensor whose reading drifts linearly (one of ``SIGNALS``); not a label in ``FAULTS``.
    drift_rate : float
        Drift rate in the signal's units per second (bar/s, L/min/s, rpm/s, A/s), |rate| <= 10.
    stuck_signal : str or None
        Sensor whose reading freezes at its value when the fault appears.
    """

    leak: float = 0.0
    leak_cylinder: int = 0
    inlet_area_factor: float = INLET_HEALTHY
    inlet_cylinder: int = 0
    bearing_friction: float = 0.0
    broken_winding: float = 0.0
    drift_signal: str | None = None
    drift_rate: float = 0.0
    stuck_signal: str | None = None

    def __post_init__(self) -> None:
        check_range("leak", self.leak, 0.0, LEAK_MAX, unit="(fraction of valve max area)")
        for name in ("leak_cylinder", "inlet_cylinder"):
            if getattr(self, name) not in (0, 1, 2):
                raise ValueError(f"{name}={getattr(self, name)!r} is outside its valid range {{0, 1, 2}}")
        check_range("inlet_area_factor", self.inlet_area_factor, INLET_FLOOR, INLET_HEALTHY)
        check_range("bearing_friction", self.bearing_friction, 0.0, BEARING_MAX, unit="N*m/(deg/s)")
        check_range("broken_winding", self.broken_winding, 0.0, 1.0)
        for name in ("drift_signal", "stuck_signal"):
            value = getattr(self, name)
            if value is not None and value not in SIGNALS + OPTIONAL_SIGNALS:
                raise ValueError(f"{name}={value!r} must be None or one of {SIGNALS + OPTIONAL_SIGNALS}")
        check_range("drift_rate", self.drift_rate, -10.0, 10.0, unit="signal units per s")

    @classmethod
    def healthy(cls) -> Faults:
        """No fault."""
        return cls()

    @classmethod
    def from_severity(
        cls,
        leak: float = 0.0,
        blocked_inlet: float = 0.0,
        bearing: float = 0.0,
        leak_cylinder: int = 0,
        *,
        winding: float = 0.0,
    ) -> Faults:
        """Map severities in [0, 1] (0 = healthy, 1 = worst of the accuracy study's range) to parameters.

        Leak area 0..0.036 of the valve max area and bearing friction 0..6e-4 N*m/(deg/s), linear in
        severity; inlet area factor 1 -> 0.53 by :func:`inlet_factor`, so the sweeps' severities 0.1..1.0
        are the accuracy study's ten levels 0.8..0.53 for all three faults; ``winding`` is
        ``broken_winding`` itself (another blocked cylinder: ``dataclasses.replace(f, inlet_cylinder=k)``;
        not a keyword here, so ``**{fault: severity}`` calls stay well typed). Severities below ~0.1 fall
        in the reference's nominal variants for all three (leak < 0.003, factor > 0.8, friction < 5e-5).
        """
        for name, sev in (("leak", leak), ("blocked_inlet", blocked_inlet), ("bearing", bearing)):
            check_range(f"severity of {name}", sev, 0.0, 1.0)
        return cls(
            leak=leak * LEAK_MAX,
            leak_cylinder=leak_cylinder,
            inlet_area_factor=inlet_factor(blocked_inlet),
            bearing_friction=bearing * BEARING_MAX,
            broken_winding=winding,
        )

    def severities(self) -> np.ndarray:
        """Severity in [0, 1] per ``FAULTS``."""
        sev = {
            "leak": self.leak / LEAK_MAX,
            "blocked_inlet": inlet_severity(self.inlet_area_factor),
            "bearing": self.bearing_friction / BEARING_MAX,
        }
        return np.array([sev[name] for name in FAULTS])

    def labels(self) -> np.ndarray:
        """0/1 per ``FAULTS`` (sensor faults and the broken winding are not labelled here)."""
        return (self.severities() > 0.0).astype(np.int64)

    def active(self) -> tuple[str, ...]:
        """Names of the active mechanical faults."""
        return tuple(name for name, lab in zip(FAULTS, self.labels(), strict=True) if lab)


@dataclass(frozen=True)
class OperatingPoint:
    """Operating point (changes here are not faults).

    Attributes
    ----------
    speed_rpm : float
        Nominal crank speed (rpm), (0, 1500]; the drive's set-point is ``PumpParams.setpoint_ratio`` times
        it (the reference sets 958 x 1.0731) and the nearly proportional speed loop droops back to about
        it at the nominal load. The motor turns ``gear_ratio`` times faster.
    load_area_factor : float
        Load orifice area relative to its 2e-4 m^2, [0.2, 5].
    back_pressure_bar : float
        System back-pressure the load orifice discharges into (bar gauge), [0, 30]; 7 in the reference.
    """

    speed_rpm: float = _OP.speed_rpm
    load_area_factor: float = _OP.load_area_factor
    back_pressure_bar: float = _OP.back_pressure_bar

    def __post_init__(self) -> None:
        check_range("speed_rpm", self.speed_rpm, 0.0, _OP.speed_rpm_max, lo_open=True, unit="crank rpm")
        check_range("load_area_factor", self.load_area_factor, *_OP.load_area_factor_range)
        check_range(
            "back_pressure_bar", self.back_pressure_bar, *_OP.back_pressure_bar_range, unit="bar gauge"
        )


@dataclass(frozen=True)
class SensorConfig:
    """Sampling, noise (1 sigma, signal units) and quantisation step of each sensor.

    Attributes
    ----------
    fs : float
        Sample rate (Hz), [100, 20000]; each sample is the mean over its interval (anti-aliasing).
    noise_* : float
        Gaussian white noise standard deviation: bar, L/min, motor rpm, A, m/s^2.
    quant_* : float
        Quantisation step (0 = none), same units.
    vibration : bool
        Also produce a casing accelerometer signal ``"vibration"``.
    """

    fs: float = 1000.0
    noise_pressure: float = 0.02
    noise_flow: float = 0.15
    noise_speed: float = 0.5
    noise_current: float = 0.02
    noise_vibration: float = 0.05
    quant_pressure: float = 0.001
    quant_flow: float = 0.01
    quant_speed: float = 0.1
    quant_current: float = 0.001
    quant_vibration: float = 0.001
    vibration: bool = False

    def __post_init__(self) -> None:
        check_range("fs", self.fs, 100.0, 20_000.0, unit="Hz")
        for sig in SIGNALS + OPTIONAL_SIGNALS:
            check_range(f"noise_{sig}", getattr(self, f"noise_{sig}"), 0.0, math.inf)
            check_range(f"quant_{sig}", getattr(self, f"quant_{sig}"), 0.0, math.inf)

    @property
    def signals(self) -> tuple[str, ...]:
        """Names of the produced signals."""
        return SIGNALS + (OPTIONAL_SIGNALS if self.vibration else ())


@dataclass(frozen=True)
class Scenario:
    """One labelled simulation run.

    Attributes
    ----------
    faults, op, sensors : see their classes.
    seed : int
        Seeds the initial crank angle and sensor noise; same seed, same signals.
    duration_s : float
        Length of the returned steady-operation data (s); ``duration_s * fs`` samples.
    warmup_s : float
        Simulated before the returned data and discarded (start-up transient), s.
    name : str
        Identifier; generated from the parameters when empty.
    """

    faults: Faults = field(default_factory=Faults)
    op: OperatingPoint = field(default_factory=OperatingPoint)
    seed: int = 0
    duration_s: float = 2.0
    sensors: SensorConfig = field(default_factory=SensorConfig)
    warmup_s: float = 0.3
    name: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` on non-physical fields (also usable on objects built without checks)."""
        if not isinstance(self.seed, int | np.integer) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} is outside its valid range [0, inf) (int)")
        check_range("duration_s", self.duration_s, 0.0, 3600.0, lo_open=True, unit="s")
        check_range("warmup_s", self.warmup_s, 0.0, 60.0, unit="s")
        for obj in (self.faults, self.op, self.sensors):
            obj.__post_init__()
        if self.n_samples < 1:
            raise ValueError(f"duration_s={self.duration_s!r} gives no sample at fs={self.sensors.fs}")

    @property
    def n_samples(self) -> int:
        """Number of returned samples per signal."""
        return round(self.duration_s * self.sensors.fs)

    @property
    def id(self) -> str:
        """Stable identifier (``name`` or one built from the parameters)."""
        if self.name:
            return self.name
        f, o = self.faults, self.op
        return (
            f"leak{f.leak:.4f}c{f.leak_cylinder}_inlet{f.inlet_area_factor:.3f}c{f.inlet_cylinder}"
            f"_bear{f.bearing_friction:.2e}_wind{f.broken_winding:g}"
            f"_rpm{o.speed_rpm:g}_load{o.load_area_factor:g}_back{o.back_pressure_bar:g}_seed{self.seed}"
        )

    def labels(self) -> np.ndarray:
        """0/1 per ``FAULTS``."""
        return self.faults.labels()


def sweep(
    fault_sets: Iterable[Sequence[str]] = ALL_FAULT_SETS,
    severities: Iterable[float] = tuple(np.linspace(0.1, 1.0, 10)),
    operating_points: Iterable[OperatingPoint] = (OperatingPoint(),),
    seeds: Iterable[int] = (0,),
    duration_s: float = 2.0,
    *,
    sensors: SensorConfig | None = None,
    warmup_s: float = 0.3,
    leak_cylinders: Sequence[int] = (0,),
) -> list[Scenario]:
    """Full-factorial design: fault sets x severities x operating points x seeds (x leak cylinders).

    Every fault in a set gets the same severity (0..1, mapped onto its reference range by
    :meth:`Faults.from_severity`). The empty set (healthy) appears once per operating point and seed,
    whatever the severities. Each scenario's seed is the given seed, so a run is reproducible on its own.

    Returns
    -------
    list of Scenario
        Named ``<faults>_s<severity>_op<i>_c<cyl>_seed<seed>``; labels via ``Scenario.labels()``.
    """
    sensors = sensors or SensorConfig()
    sev_list = [float(s) for s in severities]
    for s in sev_list:
        check_range("severity", s, 0.0, 1.0, lo_open=True)
    ops = list(operating_points)
    seed_list = [int(s) for s in seeds]
    out: list[Scenario] = []
    for fs in fault_sets:
        fset = tuple(fs)
        for name in fset:
            if name not in FAULTS:
                raise ValueError(f"fault set member {name!r} must be one of {FAULTS}")
        for sev in sev_list if fset else [0.0]:
            cyls = leak_cylinders if "leak" in fset else (0,)
            for cyl in cyls:
                sev_of = {k: (sev if k in fset else 0.0) for k in FAULTS}
                faults = Faults.from_severity(**sev_of, leak_cylinder=cyl)
                for i, op in enumerate(ops):
                    for seed in seed_list:
                        label = "+".join(fset) or "healthy"
                        out.append(
                            Scenario(
                                faults=faults,
                                op=op,
                                seed=seed,
                                duration_s=duration_s,
                                sensors=sensors,
                                warmup_s=warmup_s,
                                name=f"{label}_s{sev:.2f}_op{i}_c{cyl}_seed{seed}",
                            )
                        )
    return out


def with_faults(scenario: Scenario, faults: Faults) -> Scenario:
    """Copy of ``scenario`` with other faults (its generated name is dropped)."""
    return replace(scenario, faults=faults, name="")
