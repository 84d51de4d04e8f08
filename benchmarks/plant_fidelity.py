"""Plant fidelity: the healthy pump against the reference's calibration facts, and how each fault moves it.

Run from the repository root: ``python -m benchmarks.plant_fidelity [--duration 2.0]``. Noise-free sensors,
nominal operating point (958 rpm, 7 bar back-pressure), one vectorised batch. Prints

``mean_pressure_bar= ripple_std_bar= order6_over_order3= order9_over_order3= order12_over_order3=
order15_over_order3= shaft_power_w= mean_flow_lpm=`` for the healthy pump (reference: 7.25, ~0.03, 1,
0.25-0.3, 0.25-0.3, 0.25-0.3, ~640, ~38), then for each studied fault, each pair, and the broken winding
(not in the studies) at the low, middle and top of the accuracy study's range (severity 0.1, 0.55, 1.0:
leak 0.0036/0.0198/0.036 of the valve area, inlet factor 0.8/0.665/0.53, bearing 0.6/3.3/6e-4)
``fault=<name> severity=<s> dP_pct= dI_pct= dQ_pct= order1_pct=``: relative change of mean pressure,
supply current and flow against healthy, and the once-per-revolution line of the flow as a percentage of
its 3rd crank order. A ``dN_pct=`` (motor speed) field follows on each fault line.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from plant_models import FAULTS, Faults, Scenario, SensorConfig, simulate_batch
from plant_models.calibrate import order_amplitudes, signal_targets

SEVERITIES = (0.1, 0.55, 1.0)  # first, middle, last of the accuracy study's ten levels
QUIET = SensorConfig(
    noise_pressure=0.0, noise_flow=0.0, noise_speed=0.0, noise_current=0.0,
    quant_pressure=0.0, quant_flow=0.0, quant_speed=0.0, quant_current=0.0,
)  # fmt: skip


def cases() -> dict[str, Faults]:
    """Healthy, each studied fault and pair at each severity, and the broken winding."""
    out = {"healthy": Faults()}
    sets = [(f,) for f in FAULTS] + list(itertools.combinations(FAULTS, 2))
    for fset in sets:
        for sev in SEVERITIES:
            s = {f: (sev if f in fset else 0.0) for f in FAULTS}
            faults = Faults.from_severity(**s, leak_cylinder=0)
            out[f"{'+'.join(fset)}@{sev:g}"] = faults
    for sev in SEVERITIES:
        out[f"broken_winding@{sev:g}"] = Faults(broken_winding=sev)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=2.0, help="steady seconds per case")
    args = ap.parse_args()
    named = cases()
    scenarios = [
        Scenario(faults=f, sensors=QUIET, duration_s=args.duration, seed=0, name=k) for k, f in named.items()
    ]
    results = {r.scenario.name: r for r in simulate_batch(scenarios, truth=True)}
    failed = [f"{k}: {r.error}" for k, r in results.items() if not r.ok]
    if failed:
        raise SystemExit("\n".join(failed))
    fs = QUIET.fs
    healthy = results["healthy"]
    assert healthy.signals is not None and healthy.truth is not None
    t = signal_targets(healthy.signals, fs)
    shaft = float(np.mean(healthy.truth["power_shaft"]))
    print(
        f"mean_pressure_bar={t['mean_pressure_bar']:.3f} ripple_std_bar={t['ripple_std_bar']:.4f} "
        f"order6_over_order3={t['order6_over_order3']:.3f} order9_over_order3={t['order9_over_order3']:.3f} "
        f"order12_over_order3={t['order12_over_order3']:.3f} "
        f"order15_over_order3={t['order15_over_order3']:.3f} "
        f"shaft_power_w={shaft:.1f} mean_flow_lpm={t['mean_flow_lpm']:.2f}"
    )
    base = {k: float(np.mean(healthy.signals[k])) for k in ("pressure", "current", "flow", "speed")}
    for name, res in results.items():
        if name == "healthy":
            continue
        assert res.signals is not None
        fault, sev = name.split("@")
        mean = {k: float(np.mean(res.signals[k])) for k in base}
        pct = {k: 100.0 * (mean[k] / base[k] - 1.0) for k in base}
        crank_hz = mean["speed"] / 2.0 / 60.0
        amp = order_amplitudes(res.signals["flow"], fs, crank_hz, (1, 3))
        print(
            f"fault={fault} severity={sev} dP_pct={pct['pressure']:+.2f} dI_pct={pct['current']:+.2f} "
            f"dQ_pct={pct['flow']:+.2f} order1_pct={100.0 * amp[1] / amp[3]:.1f} dN_pct={pct['speed']:+.2f}"
        )


if __name__ == "__main__":
    main()
