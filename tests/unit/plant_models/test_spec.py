"""The asset spec: values checkable by hand against REFERENCE.md, and every copy of them agrees with it."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from plant_models import spec
from plant_models.spec import (
    FAULT_SPECS,
    FAULTS,
    GEOMETRY,
    NOMINAL_MOTOR_RPM,
    OPERATING_POINT,
    OPTIONAL_SIGNALS,
    SIGNAL_SPECS,
    SIGNALS,
)


def test_fault_order_is_the_label_order() -> None:
    """leak, blocked_inlet, bearing: the label columns and model outputs since the first model."""
    assert FAULTS == ("leak", "blocked_inlet", "bearing")
    assert tuple(f.name for f in FAULT_SPECS) == FAULTS
    from plant_models import Faults

    for k, name in enumerate(FAULTS):
        labels = Faults.from_severity(**{name: 1.0}, leak_cylinder=0).labels()
        np.testing.assert_array_equal(labels, np.eye(len(FAULTS), dtype=np.int64)[k])


def test_fault_ranges_by_hand_and_as_the_plant_maps_them() -> None:
    """REFERENCE.md's accuracy study: leak 0..0.036, inlet factor 0.8 down to 0.53, bearing 0..6e-4; severity
    0 is healthy, severity 1 the study's worst level, and the plant accepts the blocked inlet down to 0.3."""
    from plant_models import Faults

    ranges = {f.name: (f.healthy, f.study_range, f.accepted) for f in FAULT_SPECS}
    assert ranges == {
        "leak": (0.0, (0.0, 0.036), (0.0, 0.036)),
        "blocked_inlet": (1.0, (0.8, 0.53), (0.3, 1.0)),
        "bearing": (0.0, (0.0, 6e-4), (0.0, 6e-4)),
    }
    fields = {f.name for f in dataclasses.fields(Faults)}
    for f in FAULT_SPECS:
        assert f.parameter in fields and f.unit and f.description and f.short
        lo, hi = f.accepted
        assert lo <= f.healthy <= hi and all(lo <= v <= hi for v in f.study_range)
        assert getattr(Faults.from_severity(**{f.name: 0.0}, leak_cylinder=0), f.parameter) == f.healthy
        assert (
            getattr(Faults.from_severity(**{f.name: 1.0}, leak_cylinder=0), f.parameter) == f.study_range[1]
        )
    # The blocked inlet's mildest study level is severity 0.1 (the ten levels are 0.1 .. 1.0).
    assert Faults.from_severity(blocked_inlet=0.1).inlet_area_factor == pytest.approx(0.8)
    Faults(inlet_area_factor=0.3)
    with pytest.raises(ValueError, match="inlet_area_factor"):
        Faults(inlet_area_factor=0.29)


def test_every_signal_has_unit_range_and_a_nominal_reading_inside_it() -> None:
    assert SIGNALS == ("pressure", "flow", "speed", "current") == tuple(s.name for s in SIGNAL_SPECS)
    assert {s.name: s.unit for s in SIGNAL_SPECS} == {
        "pressure": "bar", "flow": "L/min", "speed": "rpm", "current": "A"
    }  # fmt: skip
    for s in SIGNAL_SPECS:
        lo, hi = s.physical_range
        assert s.unit and s.description and lo < 0.0 < s.nominal < hi, s
    assert OPTIONAL_SIGNALS == ("vibration",) and spec.OPTIONAL_SIGNAL_SPECS[0].unit == "m/s^2"
    assert not set(OPTIONAL_SIGNALS) & set(SIGNALS)


def test_nominal_readings_are_the_healthy_pump_at_the_nominal_point() -> None:
    """A noise-free healthy run at the nominal operating point reads the spec's nominal values (within 1%)."""
    from plant_models import Scenario, SensorConfig, simulate

    quiet = SensorConfig(**{f"{k}_{s}": 0.0 for k in ("noise", "quant") for s in SIGNALS}, vibration=False)
    out = simulate(Scenario(duration_s=1.0, sensors=quiet))
    for s in SIGNAL_SPECS:
        assert float(np.mean(out[s.name])) == pytest.approx(s.nominal, rel=0.01), s.name


def test_every_copy_of_the_signal_vocabulary_agrees_with_the_spec() -> None:
    from fedtwin.data import features, schema, validation

    assert schema.SIGNALS == features.SIGNALS == SIGNALS
    assert {s.name: s.unit for s in SIGNAL_SPECS} == schema.UNITS
    assert schema.PHYSICAL_RANGES == validation.DEFAULT_PHYSICAL_RANGES
    assert schema.PHYSICAL_RANGES == {
        "pressure": (-1.0, 40.0), "flow": (-5.0, 80.0), "speed": (-10.0, 3600.0), "current": (-1.0, 200.0)
    }  # fmt: skip
    # Every signal has its level and ripple features, so validation's flat-line and stuck checks cover it.
    assert list(features.LEVEL_FEATURES) == list(features.RIPPLE_FEATURES) == list(SIGNALS)
    assert set(features.LEVEL_FEATURES.values()) | set(features.RIPPLE_FEATURES.values()) <= set(
        features.FEATURE_NAMES
    )
    assert list(validation.FLAT_LINE_COLUMNS) == list(validation.STUCK_COLUMNS) == list(SIGNALS)
    assert validation.STUCK_COLUMNS["flow"] == ("flow_mean", "flow_ripple_rel")


def test_geometry_by_hand() -> None:
    """3 x (pi/4 x 0.024^2) x 0.030 m^3 x 1000 = 0.04072 L per crank revolution (REFERENCE.md's check)."""
    from fedtwin.data import features
    from plant_models import PumpParams

    assert (GEOMETRY.cylinders, GEOMETRY.gear_ratio, GEOMETRY.stroke_m) == (3, 2.0, 0.030)
    assert GEOMETRY.displacement_l_per_rev == pytest.approx(0.0407150, abs=1e-7)
    # Bit-identical to the expression features.py used before the spec (no feature value moves).
    assert 3.0 * np.pi / 4.0 * 0.024**2 * 0.030 * 1000.0 == features.DISPLACEMENT_L_PER_REV
    assert GEOMETRY.gear_ratio == features.GEAR_RATIO
    p = PumpParams()
    assert (p.plunger_diameter_m, p.crank_radius_m, p.rod_length_m, p.gear_ratio) == (
        0.024,
        0.015,
        0.0725,
        2.0,
    )
    assert p.displacement_m3_per_rev * 1000.0 == pytest.approx(GEOMETRY.displacement_l_per_rev, rel=1e-15)


def test_operating_point_defaults_and_bounds_come_from_the_spec() -> None:
    from plant_models import OperatingPoint

    op = OperatingPoint()
    assert (op.speed_rpm, op.load_area_factor, op.back_pressure_bar) == (958.0, 1.0, 7.0)
    assert NOMINAL_MOTOR_RPM == 1916.0
    OperatingPoint(speed_rpm=OPERATING_POINT.speed_rpm_max, load_area_factor=5.0, back_pressure_bar=30.0)
    for bad in (
        {"speed_rpm": 1500.5},
        {"speed_rpm": 0.0},
        {"load_area_factor": 0.19},
        {"back_pressure_bar": 31},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            OperatingPoint(**bad)


def test_lookups_name_what_is_known() -> None:
    assert spec.fault("bearing").parameter == "bearing_friction"
    assert spec.signal("speed").unit == "rpm"
    with pytest.raises(KeyError, match="unknown fault 'seal'; known: leak, blocked_inlet, bearing"):
        spec.fault("seal")
    with pytest.raises(KeyError, match="unknown signal 'vibration'; known: pressure, flow, speed, current"):
        spec.signal("vibration")


def test_spec_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        GEOMETRY.gear_ratio = 3.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        FAULT_SPECS[0].healthy = 1.0  # type: ignore[misc]
    assert isinstance(FAULT_SPECS, tuple) and isinstance(SIGNAL_SPECS, tuple)
    assert math.isfinite(OPERATING_POINT.back_pressure_bar)
