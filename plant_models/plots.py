"""Overview picture of healthy vs faulty signals (matplotlib imported lazily, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plant_models.calibrate import order_amplitudes
from plant_models.params import PumpParams
from plant_models.runner import simulate_batch
from plant_models.scenario import Faults, Scenario, SensorConfig

_ORDERS = (1, 3, 6, 9, 12, 15)
_QUIET = SensorConfig(
    noise_pressure=0.0, noise_flow=0.0, noise_speed=0.0, noise_current=0.0,
    quant_pressure=0.0, quant_flow=0.0, quant_speed=0.0, quant_current=0.0,
)  # fmt: skip


def plot_overview(
    path: str | Path, duration_s: float = 2.0, seed: int = 0, params: PumpParams | None = None
) -> Path:
    """Write a PNG of healthy vs each worst-case fault, noise-free, so the differences are the physics.

    Panels: outlet pressure and flow over three crank revolutions (a one-cylinder fault repeats once per
    revolution), mean supply current and motor speed per case, the pressure spectrum with the crank-order
    lines, and the flow's crank-order amplitudes (order 1 is the once-per-revolution signature).

    Parameters
    ----------
    path : str or Path
        Output PNG; parent directories are created.
    duration_s : float
        Simulated steady-operation length per case (s), at least 0.5.
    seed : int
        Initial crank angle, shared by all cases.
    params : PumpParams, optional
        Physical parameters.

    Returns
    -------
    Path
        The written file.
    """
    # local: `import plant_models` must not load matplotlib (1.7 s) or pick its backend
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = {
        "healthy": Faults(),
        "seal leak, cyl 1 (0.036)": Faults.from_severity(leak=1.0),
        "blocked inlet, cyl 1 (0.53)": Faults.from_severity(blocked_inlet=1.0),
        "worn bearing (+6e-4)": Faults.from_severity(bearing=1.0),
        "broken winding (1.0)": Faults(broken_winding=1.0),
    }
    scenarios = [
        Scenario(faults=f, seed=seed, duration_s=max(duration_s, 0.5), sensors=_QUIET, name=k)
        for k, f in cases.items()
    ]
    results = [r for r in simulate_batch(scenarios, params) if r.signals is not None]
    fs = _QUIET.fs
    fig, axes = plt.subplots(3, 2, figsize=(14, 12))
    (ax_p, ax_q), (ax_i, ax_n), (ax_s, ax_o) = axes
    styles = ["-", "--", "-.", ":", (0, (5, 1))]
    crank_hz = 0.0
    width = 0.8 / len(results)
    for j, (res, style) in enumerate(zip(results, styles, strict=False)):
        sig = res.signals
        assert sig is not None
        name = res.scenario.name
        crank_hz = float(np.mean(sig["speed"])) / 2.0 / 60.0
        n_show = round(3.0 * fs / crank_hz)
        t = np.arange(n_show) / fs * 1e3
        ax_p.plot(t, sig["pressure"][:n_show], ls=style, lw=1.1, label=name)
        ax_q.plot(t, sig["flow"][:n_show], ls=style, lw=1.1, label=name)
        ax_i.bar(j, float(np.mean(sig["current"])), color=f"C{j}", label=name)
        ax_n.bar(j, float(np.mean(sig["speed"])), color=f"C{j}", label=name)
        x = sig["pressure"] - sig["pressure"].mean()
        freq = np.fft.rfftfreq(x.size, 1.0 / fs)
        amp = np.abs(np.fft.rfft(x * np.hanning(x.size))) * 2.0 / np.hanning(x.size).sum()
        ax_s.semilogy(freq, amp + 1e-6, ls=style, lw=0.9, label=name)
        orders = order_amplitudes(sig["flow"], fs, crank_hz, _ORDERS)
        ax_o.bar(
            np.arange(len(_ORDERS)) + (j - (len(results) - 1) / 2) * width,
            [orders[o] for o in _ORDERS],
            width=width,
            color=f"C{j}",
            label=name,
        )
    rev_ms = 1e3 / crank_hz
    for ax in (ax_p, ax_q):
        for k in range(1, 3):
            ax.axvline(k * rev_ms, color="grey", ls=":", lw=0.8)
        ax.set_xlabel(f"time (ms); dotted: crank revolutions ({rev_ms:.1f} ms)")
    ax_p.set_ylabel("outlet pressure (bar g)")
    ax_q.set_ylabel("outlet flow (L/min)")
    ax_p.legend(loc="upper right", fontsize=8)
    ax_p.set_title("pressure over three revolutions: the 7 bar back-pressure holds the mean")
    ax_q.set_title("flow: a one-cylinder fault repeats once per revolution")
    names = [r.scenario.name for r in results]
    for ax, label in ((ax_i, "mean supply current (A)"), (ax_n, "mean motor speed (rpm)")):
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.split(" (")[0] for n in names], rotation=20, fontsize=8)
        ax.set_ylabel(label)
    currents = [float(np.mean(r.signals["current"])) for r in results]  # type: ignore[index]
    speeds = [float(np.mean(r.signals["speed"])) for r in results]  # type: ignore[index]
    ax_i.set_ylim(0.9 * min(currents), 1.05 * max(currents))
    ax_n.set_ylim(min(speeds) - 10.0, max(speeds) + 5.0)
    ax_i.set_title("current follows shaft power (24 V supply)")
    ax_n.set_title("speed droops under load (proportional loop)")
    for o in _ORDERS:
        ax_s.axvline(o * crank_hz, color="grey", ls=":", lw=0.8)
        ax_s.text(o * crank_hz, 1.5e-6, f"{o}x", fontsize=8, ha="center")
    ax_s.set_xlim(0, 260)
    ax_s.set_xlabel(f"frequency (Hz); dotted: crank orders ({crank_hz:.1f} Hz)")
    ax_s.set_ylabel("pressure amplitude (bar)")
    ax_s.set_title(
        "pressure spectrum: lines at crank orders 3, 6, 9, 12, 15 (order 1 with a one-cylinder fault)"
    )
    ax_o.set_xticks(range(len(_ORDERS)))
    ax_o.set_xticklabels([f"order {o}" for o in _ORDERS])
    ax_o.set_ylabel("flow line amplitude (L/min)")
    ax_o.set_title("flow crank orders: order 1 is the once-per-revolution signature")
    ax_o.legend(fontsize=8)
    fig.suptitle("Triplex pump twin: healthy vs worst-case faults at 958 rpm, 7 bar (noise-free sensors)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
