"""Sensor models: unit conversion, noise, quantisation, sensor faults (drift, stuck) and vibration."""

from __future__ import annotations

import math

import numpy as np

from plant_models.params import P_ATM
from plant_models.scenario import Faults, SensorConfig

# Casing acceleration per unit rate of change of crank torque (m/s^2 per N*m/s) and bearing-defect
# broadband vibration per unit of extra bearing friction; order-of-magnitude values for a small pump skid.
_VIB_TORQUE_GAIN = 1.0e-3
_VIB_BEARING_GAIN = 2.0e3


class SensorModel:
    """Stateful sensors of one run; chunked calls give the same samples as one long call.

    Parameters
    ----------
    config : SensorConfig
        Sampling, noise and quantisation.
    rng : numpy.random.Generator
        Noise source; consumed in sample order, so chunking does not change the draws.
    """

    def __init__(self, config: SensorConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self._drift_signal: str | None = None
        self._drift_rate = 0.0
        self._drift_base = 0.0  # offset when the current rate started
        self._drift_count = 0  # samples since the current rate started (integer keeps chunking exact)
        self._stuck_signal: str | None = None
        self._stuck_value: float | None = None
        self._last: dict[str, float] = {}
        self._last_torque: float | None = None

    def measure(self, raw: dict[str, np.ndarray], faults: Faults) -> dict[str, np.ndarray]:
        """Turn one run's per-sample physical means (1-D arrays) into sensor readings."""
        cfg = self.config
        n = raw["p_out"].shape[0]
        names = cfg.signals
        # One extra column drives the bearing-defect vibration, drawn only when vibration is enabled.
        noise = self.rng.standard_normal((n, len(names) + (1 if cfg.vibration else 0)), dtype=np.float32)
        true = _true_values(raw)
        if cfg.vibration:
            torque = raw["torque"]
            prev = torque[0] if self._last_torque is None else self._last_torque
            dtorque = np.diff(torque, prepend=prev) * cfg.fs
            self._last_torque = float(torque[-1])
            true["vibration"] = (
                _VIB_TORQUE_GAIN * dtorque + _VIB_BEARING_GAIN * faults.bearing_friction * (noise[:, -1])
            )
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(names):
            sig = _add_noise(true[name], getattr(cfg, f"noise_{name}"), noise[:, j])
            if faults.drift_signal == name:
                sig = sig + self._drift(faults, n)
            sig = _quantise(sig, getattr(cfg, f"quant_{name}"))
            if faults.stuck_signal == name:
                if self._stuck_signal != name or self._stuck_value is None:
                    self._stuck_value = self._last.get(name, float(sig[0]))
                    self._stuck_signal = name
                sig = np.full(n, self._stuck_value)
            out[name] = sig
            self._last[name] = float(sig[-1])
        if faults.stuck_signal is None:
            self._stuck_signal, self._stuck_value = None, None
        if faults.drift_signal is None:
            self._drift_signal, self._drift_rate, self._drift_base, self._drift_count = None, 0.0, 0.0, 0
        return out

    def _drift(self, faults: Faults, n: int) -> np.ndarray:
        if self._drift_signal != faults.drift_signal:
            self._drift_signal, self._drift_rate, self._drift_base, self._drift_count = (
                faults.drift_signal,
                faults.drift_rate,
                0.0,
                0,
            )
        elif self._drift_rate != faults.drift_rate:
            self._drift_base += self._drift_rate / self.config.fs * self._drift_count
            self._drift_rate, self._drift_count = faults.drift_rate, 0
        steps = self._drift_count + np.arange(1, n + 1)
        self._drift_count += n
        return self._drift_base + self._drift_rate / self.config.fs * steps


def measure_batch(
    raw: dict[str, np.ndarray],
    runs: list[int],
    config: SensorConfig,
    faults: list[Faults],
    rngs: list[np.random.Generator],
) -> list[dict[str, np.ndarray]]:
    """Vectorised first chunk of fresh :class:`SensorModel` s sharing ``config``.

    ``raw`` holds time-major engine output (samples, all runs); ``runs`` selects the columns, and ``faults``
    and ``rngs`` belong to them. Gives exactly what ``SensorModel(config, rng).measure(column, faults)``
    gives for each run; runs with sensor faults (stateful) must go through :class:`SensorModel` instead.
    """
    n = raw["p_out"].shape[0]
    n_runs = len(runs)
    names = config.signals
    width = len(names) + (1 if config.vibration else 0)
    out: dict[str, np.ndarray] = {name: np.empty((n_runs, n)) for name in names}
    # Blocks of runs keep the temporaries in cache and transpose to per-run rows cheaply.
    for lo in range(0, n_runs, _BLOCK):
        hi = min(lo + _BLOCK, n_runs)
        cols = runs[lo:hi]
        # Drawn sample-major per run, exactly as SensorModel draws them.
        noise = np.empty((n, width, hi - lo), dtype=np.float32)
        for j in range(lo, hi):
            noise[:, :, j - lo] = rngs[j].standard_normal((n, width), dtype=np.float32)
        true = _true_values({k: raw[k][:, cols] for k in _RAW_KEYS})
        if config.vibration:
            torque = raw["torque"][:, cols]
            dtorque = np.diff(torque, axis=0, prepend=torque[:1]) * config.fs
            gain = np.array([_VIB_BEARING_GAIN * f.bearing_friction for f in faults[lo:hi]])
            true["vibration"] = _VIB_TORQUE_GAIN * dtorque + gain * noise[:, -1, :]
        for j, name in enumerate(names):
            sig = _add_noise(true[name], getattr(config, f"noise_{name}"), noise[:, j, :])
            out[name][lo:hi] = _quantise(sig, getattr(config, f"quant_{name}")).T
    return [{name: out[name][j] for name in names} for j in range(n_runs)]


_BLOCK = 32
_RAW_KEYS = ("p_out", "q_out", "omega_m", "current")


def _true_values(raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        "pressure": (raw["p_out"] - P_ATM) * 1e-5,
        "flow": raw["q_out"] * 60_000.0,
        "speed": raw["omega_m"] * (60.0 / (2.0 * math.pi)),
        "current": raw["current"] * 1.0,
    }


def _add_noise(true: np.ndarray, level: float, noise: np.ndarray) -> np.ndarray:
    return true + level * noise


def _quantise(sig: np.ndarray, step: float) -> np.ndarray:
    if step <= 0.0:
        return sig
    out = sig * (1.0 / step)
    np.rint(out, out=out)
    out *= step
    return out
