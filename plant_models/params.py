"""Physical parameters of the triplex plunger pump test rig (reference design: CAT Pumps 1051).

All quantities are SI unless the field name says otherwise. Pressures are **absolute** (Pa) inside the
model; sensors report gauge pressure in bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

P_ATM = 101_325.0
"""Atmospheric pressure (Pa abs); crankcase, seal drain and load orifice discharge are at this pressure."""


def check_range(
    name: str, value: float, lo: float, hi: float, *, lo_open: bool = False, unit: str = ""
) -> None:
    """Raise ``ValueError`` naming ``name`` and its valid range unless ``lo <= value <= hi``."""
    ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        left = "(" if lo_open else "["
        suffix = f" {unit}" if unit else ""
        raise ValueError(f"{name}={value!r} is outside its valid range {left}{lo:g}, {hi:g}]{suffix}")


@dataclass(frozen=True)
class PumpParams:
    """Lumped parameters of pump, drive and hydraulic circuit; defaults are the reference design.

    Attributes
    ----------
    plunger_diameter_m : float
        Plunger diameter (m); 24 mm.
    crank_radius_m : float
        Crank radius (m); 15 mm, i.e. a 30 mm stroke.
    rod_length_m : float
        Connecting rod length (m); 72.5 mm.
    gear_ratio : float
        Motor speed / crank speed (-); 2.
    fluid_density_kg_m3 : float
        Water density (kg/m^3).
    bulk_modulus_pa : float
        Liquid bulk modulus (Pa). Only used to justify the quasi-static cylinder solve (see ``engine``).
    dead_volume_m3 : float
        Cylinder dead volume at top dead centre (m^3).
    discharge_coeff : float
        Orifice discharge coefficient of valves, leaks and restrictions (-).
    valve_max_area_m2 : float
        Inlet/outlet check valve fully open area (m^2); 1e-4.
    valve_crack_pa, valve_open_pa : float
        Check valve pressure difference at which it cracks / is fully open (Pa); 0.3 and 1.2 bar.
    seal_leak_area_m2 : float
        Healthy plunger seal leakage area per cylinder (m^2), to the atmospheric crankcase drain.
    supply_pressure_pa : float
        Charged suction supply pressure (Pa abs); a boost pump / head tank keeps NPSH positive.
    inlet_area_m2 : float
        Inlet line (strainer + suction port) area at area factor 1.0 (m^2); healthy factor is 0.8.
    inlet_volume_m3, inlet_bulk_modulus_pa : float
        Suction manifold volume (m^3) and effective bulk modulus incl. hose compliance (Pa).
    outlet_volume_m3, outlet_bulk_modulus_pa : float
        Discharge manifold/hose volume (m^3) and effective bulk modulus incl. hose compliance (Pa).
    load_area_m2 : float
        Load orifice area at load factor 1.0 (m^2); sized for about 7 bar gauge at 38 L/min.
    relief_crack_pa, relief_open_pa : float
        Relief valve cracking / fully open gauge pressure (Pa).
    relief_max_area_m2 : float
        Relief valve fully open area (m^2).
    vapour_pressure_pa : float
        Vapour pressure of water at 20 degC (Pa abs); the cylinder cannot go below it (cavitation).
    bearing_damping : float
        Healthy crank bearing viscous friction, N*m/(deg/s) of crank speed; 1e-4.
    crank_coulomb_nm : float
        Speed-independent crank friction torque (N*m), seals and crossheads.
    crank_inertia_kgm2, motor_inertia_kgm2 : float
        Rotational inertias of crankshaft (+ pulley) and motor rotor (kg*m^2).
    motor_resistance_ohm, motor_inductance_h, motor_k : float
        Armature resistance (ohm), inductance (H), torque / back-emf constant (N*m/A = V*s/rad).
    motor_viscous_nms : float
        Motor windage/bearing viscous friction (N*m*s/rad).
    speed_kp, speed_ki : float
        Speed PI controller gains on motor speed error: V/(rad/s) and V/rad.
    supply_voltage_v : float
        Drive voltage limit (V); the controller output saturates at +/- this value.
    current_limit_a : float
        Drive armature current limit (A), enforced through the voltage command.
    speed_ramp_rpm_s : float
        Set-point ramp of the drive (motor rpm/s): set-point changes are followed at this rate, as a VFD does.
    """

    plunger_diameter_m: float = 0.024
    crank_radius_m: float = 0.015
    rod_length_m: float = 0.0725
    gear_ratio: float = 2.0
    fluid_density_kg_m3: float = 1000.0
    bulk_modulus_pa: float = 2.0e9
    dead_volume_m3: float = 1.0e-5
    discharge_coeff: float = 0.7
    valve_max_area_m2: float = 1.0e-4
    valve_crack_pa: float = 0.3e5
    valve_open_pa: float = 1.2e5
    seal_leak_area_m2: float = 1.0e-7
    supply_pressure_pa: float = 1.3e5
    inlet_area_m2: float = 1.9e-4
    inlet_volume_m3: float = 5.0e-4
    inlet_bulk_modulus_pa: float = 1.0e8
    outlet_volume_m3: float = 5.0e-4
    outlet_bulk_modulus_pa: float = 1.0e8
    load_area_m2: float = 2.42e-5
    relief_crack_pa: float = 12.0e5
    relief_open_pa: float = 13.0e5
    relief_max_area_m2: float = 1.0e-4
    vapour_pressure_pa: float = 2.34e3
    bearing_damping: float = 1.0e-4
    crank_coulomb_nm: float = 0.3
    crank_inertia_kgm2: float = 0.05
    motor_inertia_kgm2: float = 5.0e-3
    motor_resistance_ohm: float = 1.0
    motor_inductance_h: float = 0.01
    motor_k: float = 0.5
    motor_viscous_nms: float = 1.0e-4
    speed_kp: float = 2.0
    speed_ki: float = 20.0
    supply_voltage_v: float = 250.0
    current_limit_a: float = 30.0
    speed_ramp_rpm_s: float = 1000.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check_range(f.name, float(getattr(self, f.name)), 0.0, math.inf, lo_open=True)
        check_range("rod_length_m", self.rod_length_m, self.crank_radius_m, math.inf, lo_open=True)
        check_range("valve_open_pa", self.valve_open_pa, self.valve_crack_pa, math.inf, lo_open=True)
        check_range("relief_open_pa", self.relief_open_pa, self.relief_crack_pa, math.inf, lo_open=True)
        check_range(
            "supply_pressure_pa", self.supply_pressure_pa, self.vapour_pressure_pa, math.inf, lo_open=True
        )

    @property
    def plunger_area_m2(self) -> float:
        """Plunger cross-section (m^2)."""
        return math.pi / 4.0 * self.plunger_diameter_m**2

    @property
    def displacement_m3_per_rev(self) -> float:
        """Geometric displacement of the three plungers per crank revolution (m^3)."""
        return 3.0 * self.plunger_area_m2 * 2.0 * self.crank_radius_m

    def theoretical_flow_lpm(self, crank_rpm: float) -> float:
        """Geometric flow (L/min) at ``crank_rpm``, before volumetric losses."""
        return self.displacement_m3_per_rev * crank_rpm * 1000.0
