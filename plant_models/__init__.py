"""Lumped-parameter triplex plunger pump: physics, faults as parameters, scenario sweeps, live chunks.

Pure numpy (matplotlib only inside :func:`plot_overview`); importing this package has no side effects.

- :func:`simulate` (one :class:`Scenario` -> ``{signal: array}`` of ``duration_s * fs`` samples after the
  scenario's ``warmup_s``), :func:`simulate_batch` (many, vectorised; failures isolated in
  :class:`RunResult`), :func:`simulate_truth` (plus physical ground truth).
- :class:`LiveSimulator`: chunked live mode, equal to one long run with the same seed.
- :class:`LiveFleet`: many live pumps in one vectorised engine; per asset equal to a ``LiveSimulator``.
- :func:`sweep`: full-factorial design of labelled scenarios.
- Physics and numerical scheme: :mod:`plant_models.engine`; parameters: :class:`PumpParams`
  (:func:`default_params` reads ``$FEDTWIN_PLANT_PARAMS_FILE`` when set).
- The asset's vocabulary (faults, signals, units, ranges, geometry, nominal operating point):
  :mod:`plant_models.spec`.
- Calibration of the healthy plant to measured signals: :mod:`plant_models.calibrate` (imports scipy).
"""

from plant_models.fleet import FleetChunk, LiveFleet
from plant_models.params import P_ATM, PumpParams, default_params, load_params, save_params
from plant_models.plots import plot_overview
from plant_models.runner import LiveSimulator, RunResult, simulate, simulate_batch, simulate_truth
from plant_models.scenario import (
    ALL_FAULT_SETS,
    BEARING_MAX,
    INLET_HEALTHY,
    INLET_MIN,
    LEAK_MAX,
    Faults,
    OperatingPoint,
    Scenario,
    SensorConfig,
    sweep,
)
from plant_models.spec import FAULTS, SIGNALS

__all__ = [
    "ALL_FAULT_SETS",
    "BEARING_MAX",
    "FAULTS",
    "INLET_HEALTHY",
    "INLET_MIN",
    "LEAK_MAX",
    "P_ATM",
    "SIGNALS",
    "Faults",
    "FleetChunk",
    "LiveFleet",
    "LiveSimulator",
    "OperatingPoint",
    "PumpParams",
    "RunResult",
    "Scenario",
    "SensorConfig",
    "default_params",
    "load_params",
    "plot_overview",
    "save_params",
    "simulate",
    "simulate_batch",
    "simulate_truth",
    "sweep",
]
