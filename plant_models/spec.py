"""The one description of the asset: its faults, its sensor signals, its geometry and its operating point.

Pure data (frozen dataclasses, no numpy, no behaviour): the simulator, the wire format, the features, the
validation, the scorer and the live plant import their vocabulary from here, and ``federated/`` receives
fault and feature names as arguments. Adding a fault or a sensor is a change here plus the physics that
produces it (``plant_models.engine``/``sensors``/``scenario.Faults``) and the features and heads that read
it (``fedtwin.data.features``, ``fedtwin.training.recipe``).

Values are the reference design's (``/work/shared/REFERENCE.md``: the CAT Pumps 1051 triplex plunger pump
as modelled in MathWorks' Simscape example) unless a field says otherwise. Order matters: ``FAULTS`` is the
order of the label columns and model outputs, ``SIGNALS`` the order of the signals in sensor messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    """One labelled mechanical fault and the plant parameter that carries it.

    Attributes
    ----------
    name : str
        Label name (label column, model output, ``Faults.from_severity`` keyword, live-plant control field).
    short : str
        Short name for tables.
    description : str
        What is broken, in words.
    parameter : str
        The ``plant_models.Faults`` field it sets.
    unit : str
        Unit of that parameter.
    healthy : float
        Parameter value at severity 0.
    study_range : tuple of float
        The reference accuracy study's range of the parameter, mildest level first, most severe last
        (severity 1); its ten levels are severities 0.1, 0.2, ..., 1.0.
    accepted : tuple of float
        Smallest and largest parameter value the plant accepts (the fault-sweep study reaches further than
        the accuracy study for the blocked inlet).
    """

    name: str
    short: str
    description: str
    parameter: str
    unit: str
    healthy: float
    study_range: tuple[float, float]
    accepted: tuple[float, float]


@dataclass(frozen=True)
class Signal:
    """One streamed sensor signal.

    Attributes
    ----------
    name : str
        Signal name (sensor message field, feature window key).
    unit : str
        Unit of the reading.
    description : str
        What is measured and where.
    physical_range : tuple of float
        Inclusive span of physically possible readings; a sample outside cannot come from a working sensor,
        so the message is refused (``fedtwin.data.schema``) and the feature ranges follow from it
        (``fedtwin.data.validation``).
    nominal : float
        The healthy pump's reading at the nominal operating point (simulated: 7.251 bar, 38.56 L/min,
        1915.6 rpm, 29.04 A), rounded: a plausible level, e.g. for probing a model.
    """

    name: str
    unit: str
    description: str
    physical_range: tuple[float, float]
    nominal: float


@dataclass(frozen=True)
class SimulatedSignal:
    """A signal the simulator can produce on request but that is not streamed (no message field or range)."""

    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class Geometry:
    """Pump and drive geometry that features need (crank angle, displacement, cylinder sectors).

    Attributes
    ----------
    cylinders : int
        Plungers, crankpins ``360 / cylinders`` degrees apart.
    plunger_diameter_m, crank_radius_m, rod_length_m : float
        Plunger bore, crank radius (half the stroke) and connecting rod length (m).
    gear_ratio : float
        Motor speed / crank speed (-): the speed sensor reads the motor.
    """

    cylinders: int
    plunger_diameter_m: float
    crank_radius_m: float
    rod_length_m: float
    gear_ratio: float

    @property
    def stroke_m(self) -> float:
        """Plunger stroke (m)."""
        return 2.0 * self.crank_radius_m

    @property
    def displacement_l_per_rev(self) -> float:
        """Geometric displacement of all plungers per crank revolution (litres)."""
        return self.cylinders * math.pi / 4.0 * self.plunger_diameter_m**2 * self.stroke_m * 1000.0


@dataclass(frozen=True)
class OperatingPointSpec:
    """Nominal operating point and the valid span of each of its quantities.

    Attributes
    ----------
    speed_rpm : float
        Nominal crank speed (rpm); valid in (0, ``speed_rpm_max``].
    load_area_factor : float
        Load orifice area relative to its nominal area (-); valid in ``load_area_factor_range``.
    back_pressure_bar : float
        System back-pressure the load orifice discharges into (bar gauge); valid in
        ``back_pressure_bar_range``.
    """

    speed_rpm: float
    load_area_factor: float
    back_pressure_bar: float
    speed_rpm_max: float
    load_area_factor_range: tuple[float, float]
    back_pressure_bar_range: tuple[float, float]


FAULT_SPECS: tuple[Fault, ...] = (
    Fault(
        name="leak",
        short="leak",
        description="plunger seal leak of one cylinder to the crankcase (cylinder 1 in the reference)",
        parameter="leak",
        unit="fraction of the check valve's max area",
        healthy=0.0,
        study_range=(0.0, 0.036),
        accepted=(0.0, 0.036),
    ),
    Fault(
        name="blocked_inlet",
        short="inlet",
        description="partly blocked inlet check valve of one cylinder (cylinder 1 in the reference)",
        parameter="inlet_area_factor",
        unit="inlet valve max area factor",
        healthy=1.0,
        study_range=(0.8, 0.53),
        accepted=(0.3, 1.0),
    ),
    Fault(
        name="bearing",
        short="bearing",
        description="worn crank bearing: extra viscous friction on top of the healthy 1e-4",
        parameter="bearing_friction",
        unit="N*m/(deg/s)",
        healthy=0.0,
        study_range=(0.0, 6.0e-4),
        accepted=(0.0, 6.0e-4),
    ),
)
"""The labelled faults, in label-column order."""

FAULTS: tuple[str, ...] = tuple(f.name for f in FAULT_SPECS)
"""Fault names in label-column order."""

SIGNAL_SPECS: tuple[Signal, ...] = (
    Signal(
        name="pressure",
        unit="bar",
        description="outlet manifold pressure, gauge",
        # Gauge pressure cannot be below vacuum (-1.013 bar); 40 bar is over 3x the relief valve's setting.
        physical_range=(-1.0, 40.0),
        nominal=7.25,
    ),
    Signal(
        name="flow",
        unit="L/min",
        description="outlet (discharge) flow",
        # Room below zero for sensor noise on a stopped pump (valid simulations reach -0.47 L/min) and above
        # the fastest operating point (1500 crank rpm: about 62 L/min).
        physical_range=(-5.0, 80.0),
        nominal=38.6,
    ),
    Signal(
        name="speed",
        unit="rpm",
        description="motor speed (the crank turns gear_ratio times slower)",
        # Valid simulations reach 3006 rpm; 1500 crank rpm is 3000 motor rpm.
        physical_range=(-10.0, 3600.0),
        nominal=1916.0,
    ),
    Signal(
        name="current",
        unit="A",
        description="motor supply current (follows shaft power, not torque)",
        physical_range=(-1.0, 200.0),
        nominal=29.0,
    ),
)
"""The streamed sensor signals, in message order."""

SIGNALS: tuple[str, ...] = tuple(s.name for s in SIGNAL_SPECS)
"""Streamed signal names in message order."""

OPTIONAL_SIGNAL_SPECS: tuple[SimulatedSignal, ...] = (
    SimulatedSignal(name="vibration", unit="m/s^2", description="casing acceleration (simulator only)"),
)
"""Signals the simulator produces only when enabled (``SensorConfig.vibration``); not streamed."""

OPTIONAL_SIGNALS: tuple[str, ...] = tuple(s.name for s in OPTIONAL_SIGNAL_SPECS)

GEOMETRY = Geometry(
    cylinders=3, plunger_diameter_m=0.024, crank_radius_m=0.015, rod_length_m=0.0725, gear_ratio=2.0
)
"""The reference pump: 3 plungers of 24 mm, 30 mm stroke, 72.5 mm rods, a 2:1 motor-to-crank gear."""

OPERATING_POINT = OperatingPointSpec(
    speed_rpm=958.0,
    load_area_factor=1.0,
    back_pressure_bar=7.0,
    speed_rpm_max=1500.0,
    load_area_factor_range=(0.2, 5.0),
    back_pressure_bar_range=(0.0, 30.0),
)
"""The reference's nominal point: 958 crank rpm, the 2e-4 m^2 orifice, 7 bar back-pressure."""

NOMINAL_MOTOR_RPM: float = OPERATING_POINT.speed_rpm * GEOMETRY.gear_ratio
"""Motor speed at the nominal crank speed (1916 rpm), what the speed sensor reads there."""


def fault(name: str) -> Fault:
    """The spec of fault ``name``; ``KeyError`` naming the known faults otherwise."""
    for f in FAULT_SPECS:
        if f.name == name:
            return f
    raise KeyError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")


def signal(name: str) -> Signal:
    """The spec of streamed signal ``name``; ``KeyError`` naming the known signals otherwise."""
    for s in SIGNAL_SPECS:
        if s.name == name:
            return s
    raise KeyError(f"unknown signal {name!r}; known: {', '.join(SIGNALS)}")
