"""Overview picture of healthy vs faulty signals (matplotlib imported lazily, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from plant_models.params import PumpParams
from plant_models.runner import simulate_batch
from plant_models.scenario import Faults, Scenario


def plot_overview(
    path: str | Path, duration_s: float = 2.0, seed: int = 0, params: PumpParams | None = None
) -> Path:
    """Write a PNG of healthy vs each worst-case fault: pressure, flow, current and pressure spectrum.

    Parameters
    ----------
    path : str or Path
        Output PNG; parent directories are created.
    duration_s : float
        Simulated steady-operation length per case (s); time traces show the first 0.25 s.
    seed : int
        Noise seed, shared by all cases so differences are physical.
    params : PumpParams, optional
        Physical parameters.

    Returns
    -------
    Path
        The written file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = {
        "healthy": Faults(),
        "seal leak (cyl 0, 0.036)": Faults.from_severity(leak=1.0),
        "blocked inlet (0.53)": Faults.from_severity(blocked_inlet=1.0),
        "worn bearing (+6e-4)": Faults.from_severity(bearing=1.0),
    }
    scenarios = [Scenario(faults=f, seed=seed, duration_s=duration_s, name=k) for k, f in cases.items()]
    results = simulate_batch(scenarios, params)
    fs = scenarios[0].sensors.fs
    n_show = int(0.25 * fs)
    t = np.arange(n_show) / fs
    fig, axes = plt.subplots(4, 1, figsize=(11, 12))
    panels = [
        ("pressure", "outlet pressure (bar g)"),
        ("flow", "outlet flow (L/min)"),
        ("current", "motor current (A)"),
    ]
    styles = ["-", "--", "-.", ":"]
    for res, style in zip(results, styles, strict=True):
        if res.signals is None:
            continue
        sig = res.signals
        for ax, (key, label) in zip(axes[:3], panels, strict=True):
            ax.plot(t, sig[key][:n_show], ls=style, lw=1.0, label=res.scenario.name)
            ax.set_ylabel(label)
        x = sig["pressure"] - sig["pressure"].mean()
        freq = np.fft.rfftfreq(x.size, 1.0 / fs)
        psd = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2 / (fs * x.size)
        axes[3].semilogy(freq, psd + 1e-12, ls=style, lw=0.8, label=res.scenario.name)
    axes[2].set_xlabel("time (s)")
    crank_hz = scenarios[0].op.speed_rpm / 60.0
    for h in (1, 3, 6):
        axes[3].axvline(h * crank_hz, color="grey", ls=":", lw=0.8)
    axes[3].set_xlim(0, 250)
    axes[3].set_xlabel(f"frequency (Hz); dotted: 1x, 3x, 6x crank ({crank_hz:.1f} Hz)")
    axes[3].set_ylabel("pressure PSD (bar^2/Hz)")
    axes[0].legend(loc="upper right", fontsize=8)
    axes[3].legend(loc="upper right", fontsize=8)
    fig.suptitle("Triplex pump: healthy vs worst-case faults (same noise seed)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
