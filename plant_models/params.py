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
        Charged suction supply pressure (Pa abs): a charge pump at 1 bar gauge (2.0 bar abs) feeds the
        strainer. See "Suction sizing" below for why it cannot be atmospheric-ish.
    inlet_area_m2 : float
        Inlet restriction (strainer + suction port, one orifice shared by the three cylinders) area at area
        factor 1.0 (m^2): 1e-4, the check valves' max open area; the healthy factor is 0.8 (8e-5) and the most
        blocked 0.53 (5.3e-5). See "Suction sizing" below.
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

    Suction sizing (blocked inlet)
    ------------------------------
    The blocked-inlet fault of the reference study scales the inlet orifice area (healthy 0.8, blocked down
    to 0.53, i.e. (0.8/0.53)^2 = 2.3 times the pressure drop at equal flow), and a blocked inlet there costs
    delivered flow and changes the flow/pressure waveform at high severity. That only happens if the inlet is
    a real restriction. Numbers at the reference point (958 rpm, 38.7 L/min = 6.45e-4 m^3/s, Cd 0.7,
    orifice drop ``rho/2 * (Q / (Cd*A))^2``):

    * Peak suction flow of one plunger ``A_p*r*omega`` = 4.52e-4 m^2 x 0.015 m x 100.3 rad/s = 6.8e-4 m^3/s
      (pi x its mean 2.15e-4). The reference inlet check valve (crack 0.3 bar, full open only at 1.2 bar)
      passes that at a 0.93 bar drop, so at mid-stroke the cylinder sits 0.93 bar below the suction manifold.
    * The strainer is shared by the three cylinders, so it sees the total suction flow (peak pi/3 = 1.05 x
      the mean). Healthy (8e-5 m^2) it drops 0.66 bar at the mean flow, 0.71 bar at severity 0.1 (factor
      0.773) and 1.51 bar at the worst blockage (5.3e-5 m^2): a significant fraction of the 2.0 bar supply,
      growing as (1/area)^2. Its capacity with the manifold at vapour pressure,
      0.7 x 5.3e-5 x sqrt(2 x 1.98e5 / 1000) = 7.4e-4 m^3/s, is then only 1.14x the mean demand, less than
      the pulsating draw needs in series with the check valve: the cylinders cavitate during suction, the
      void outlasts the suction stroke, each cylinder's delivery starts late and the delivered flow falls
      (-7 % at 958 rpm, -18 % at 1100 rpm; -1 % at severity 0.8, nothing at severity 0.1 or at 800 rpm,
      where only the suction work - mean current - and the cylinder pressure during suction change).
    * Healthy, the cylinder minimum is 30 kPa abs at 958 rpm (no cavitation); at the 1100 rpm top of the
      simulated envelope the clean pump reaches incipient cavitation with no flow loss.
    * The previous sizing (1.9e-4 m^2 at factor 1.0, supply 1.3 bar abs) dropped 0.18 bar healthy and
      0.41 bar at the worst blockage; its vacuum capacity was 1.7x the pump flow, so a blocked inlet never
      cost flow and moved only the mean current (+0.15 A). With a 1.3 bar abs supply the check valve's
      0.93 bar leaves only 0.35 bar for any strainer, so a strainer that matters needs a charged supply:
      2.0 bar abs (1 bar gauge charge pump; our choice, as the reference's supply is not published here).
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
    supply_pressure_pa: float = 2.0e5
    inlet_area_m2: float = 1.0e-4
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
