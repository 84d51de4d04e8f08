"""The production training recipe for the pump's features, shared by the benchmark and the Prefect tasks.

What each head reads (named fedtwin features and their healthy-baseline residuals), the per-rule options, the
round-0 model from client statistics, the centralised baseline and ``train_strategy``. It lives here, not in
federated/, because it names fedtwin's features; the federated core stays generic. Pure: no Prefect, Kafka,
Redis or MLflow. The data sets live in fedtwin.data.datasets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from federated.baseline import BaselineSpec
from federated.client import ClientData, FitOptions
from federated.executor import InProcessExecutor, SiteExecutor
from federated.model import FaultClassifier, get_parameters, model_config, set_parameters, train_local
from federated.server import FederatedHistory, build_initial_model, run_rounds, validate_sites
from federated.stats import local_stats, mean_std, merge_stats
from federated.strategy import STRATEGIES, Strategy, make_strategy
from fedtwin.data.features import FEATURE_NAMES
from plant_models.spec import FAULTS, GEOMETRY, OPERATING_POINT

logger = logging.getLogger(__name__)

#: The healthy baseline's operating point (see federated.baseline): outlet pressure and motor speed.
BASELINE_INPUTS: tuple[str, ...] = ("pressure_mean_bar", "speed_mean_rpm")
BASELINE_TARGETS: tuple[str, ...] = (
    "current_mean_a",
    "volumetric_efficiency",
    "flow_order3_rel",
    "flow_order6_rel",
    "pressure_order3_rel",
    "tsa_flow_min_rel",
    "current_order3_abs",
    "speed_order3_abs",
    # Suction-stroke signatures: a blocked inlet adds suction torque (current ripple and its phase against the
    # discharge flow) and, once the cylinders cavitate, late delivery (flow ripple, one-per-rev asymmetry).
    "current_ripple_rel",
    "current_order6_abs",
    "current_vs_flow_phase3_cos",
    "current_vs_flow_phase3_sin",
    "flow_ripple_rel",
    "flow_order1_rel",
    # One short cylinder breaks the three-fold symmetry: the leak's own signature.
    "flow_order2_rel",
    "flow_asym_orders12",
    "cyl_flow_spread_rel",
)
#: Residuals that only a seal leak moves (one cylinder delivering less: crank orders 1 and 2 of the flow).
LEAK_SIGNATURE: tuple[str, ...] = ("flow_order1_rel", "flow_order2_rel")
#: Residuals a leak shares with other faults (delivery, current, ripple). Their leak share, predicted linearly
#: from LEAK_SIGNATURE, is removed so a blocked inlet's cavitation or a bearing's current reads the same with
#: or without a leak: the label-skewed sites never show a head the combinations.
LEAK_SHARED: tuple[str, ...] = (
    "current_mean_a",
    "volumetric_efficiency",
    "flow_order3_rel",
    "flow_order6_rel",
    "current_order3_abs",
)
#: The pump's healthy baseline; inputs scaled by the nominal outlet bar (the 7 bar back-pressure) and motor
#: rpm (958 x 2 = 1916), which keeps the polynomial well conditioned.
PUMP_BASELINE = BaselineSpec(
    inputs=BASELINE_INPUTS,
    input_ref=(OPERATING_POINT.back_pressure_bar, OPERATING_POINT.speed_rpm * GEOMETRY.gear_ratio),
    targets=BASELINE_TARGETS,
    signature=LEAK_SIGNATURE,
    shared=LEAK_SHARED,
    signature_column=FAULTS.index("leak"),
    signature_fault="leak",
)


def federated_scaler(clients: Mapping[str, ClientData]) -> tuple[np.ndarray, np.ndarray]:
    """Feature mean/std from the clients' (count, sum, sum of squares) only."""
    return mean_std(merge_stats(local_stats(c.X) for c in clients.values()))


#: What each head reads (healthy-baseline residuals, see federated.baseline) and which fault it votes for.
#: Each head sees only physics its fault moves, so sites that never saw a combination cannot teach a head
#: to read another fault's signature as "not mine": the leak reads the broken three-fold symmetry of the
#: flow; the bearing the extra current; the blocked inlet has two heads (noisy-OR): a mild blockage's extra
#: suction current, and a severe one's cavitation (lost delivery, changed ripple), leak share removed.
_OPERATING_POINT = ("speed_mean_rpm", "pressure_mean_bar")
PHYSICS_HEADS: tuple[tuple[str, ...], ...] = (
    (
        "resid_flow_order1_rel",
        "resid_flow_order2_rel",
        "resid_flow_asym_orders12",
        "resid_cyl_flow_spread_rel",
    ),
    # The operating point sets where suction current ends and bearing current begins (suction work grows
    # with speed squared, bearing friction with speed; a fast blocked pump cavitates and draws less).
    ("resid_current_mean_a_leak_removed", *_OPERATING_POINT),
    (
        "resid_volumetric_efficiency_leak_removed",
        "resid_flow_order3_rel_leak_removed",
        "resid_flow_order6_rel_leak_removed",
        "resid_current_order3_abs_leak_removed",
    ),
    ("resid_current_mean_a_leak_removed", *_OPERATING_POINT),
)
PHYSICS_HEAD_GROUPS: tuple[int, ...] = tuple(
    FAULTS.index(f) for f in ("leak", "blocked_inlet", "blocked_inlet", "bearing")
)  # (0, 1, 1, 2)

DEFAULT_MODEL: dict[str, Any] = {
    "hidden": 16,
    "learning_rate": 0.005,
    "batch_size": 64,
    "alpha": 1e-4,
    "head_inputs": PHYSICS_HEADS,
    "head_groups": PHYSICS_HEAD_GROUPS,
    # Chosen on the validation sweep (seed 20240777): 7-12x the highest probability a healthy window reached.
    "fallback_threshold": 0.1,
}
# Clients use SGD: see federated.model.train_local on why Adam fails under extreme label skew.
DEFAULT_FIT = FitOptions(local_epochs=2, learning_rate=0.1, optimizer="sgd")
DEFAULT_STRATEGY_KWARGS: dict[str, dict[str, Any]] = {
    "fedprox": {"proximal_mu": 0.1},
    # Chosen on a validation sweep (seed 20240777), never on the benchmark's held-out sweep.
    "fedadam": {"server_learning_rate": 0.1},
    "fedtrimmedavg": {"beta": 0.2},
    "krum": {"num_byzantine": 1, "num_selected": 1},
}


def strategy_names(primary: str, compare: Sequence[str] | None = None) -> list[str]:
    """The federated strategies a training run trains, in order, once each; an unknown name is refused.

    Called before any work so a typo costs a one-line error, not minutes of simulation and an orphan run.
    """
    names = list(dict.fromkeys([primary, *(compare or [])]))
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown federated strategy {unknown[0]!r}; known: {sorted(STRATEGIES)}")
    return names


def new_model(
    seed: int = 0, feature_names: Sequence[str] = FEATURE_NAMES, **model_kwargs: Any
) -> FaultClassifier:
    """The recipe's classifier (``DEFAULT_MODEL`` overridden by ``model_kwargs``), not yet initialised."""
    return FaultClassifier(
        **{**DEFAULT_MODEL, **model_kwargs},
        fault_names=FAULTS,
        feature_names=tuple(feature_names),
        random_state=seed,
    )


def initial_model(
    clients: Mapping[str, ClientData],
    seed: int = 0,
    feature_names: Sequence[str] = FEATURE_NAMES,
    use_baseline: bool = True,
    baseline_targets: Sequence[str] = BASELINE_TARGETS,
    **model_kwargs: Any,
) -> FaultClassifier:
    """Round-0 model from in-memory clients' statistics (:func:`federated.server.build_initial_model`)."""
    model, _, excluded = build_initial_model(
        new_model(seed, feature_names, **model_kwargs),
        InProcessExecutor(clients),
        list(clients),
        baseline_spec=replace(PUMP_BASELINE, targets=tuple(baseline_targets)) if use_baseline else None,
    )
    if excluded:
        raise ValueError(f"round-0 statistics failed at {sorted(excluded)}: {excluded}")
    return model


def train_centralised(
    clients: Mapping[str, ClientData], seed: int = 0, epochs: int = 60, **model_kwargs: Any
) -> FaultClassifier:
    """Baseline: the same model trained on the pooled rows (what federation is compared against)."""
    model = initial_model(clients, seed, **model_kwargs)
    X = np.vstack([c.X for c in clients.values()])
    Y = np.vstack([c.Y for c in clients.values()])
    train_local(model, X, Y, epochs=epochs, seed=seed)
    return model


def train_strategy(
    name: str,
    clients: Mapping[str, ClientData] | SiteExecutor,
    *,
    sites: Sequence[str] | None = None,
    rounds: int = 30,
    seed: int = 0,
    fit_config: Mapping[str, Any] | None = None,
    strategy_kwargs: Mapping[str, Any] | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    centralised_epochs: int = 60,
    timeout_s: float | None = None,
    max_workers: int | None = None,
    on_quorum_failure: str = "raise",
    evaluate_fn: Callable[[list[np.ndarray], int], Mapping[str, float]] | None = None,
) -> tuple[FaultClassifier, FederatedHistory | None]:
    """Train one strategy (``fedavg`` ... ``krum``, ``ensemble``, ``centralised``); returns model, history.

    ``clients`` is the sites' data in memory (benchmark, tests) or an executor that reaches ``sites`` (the
    training flow's Prefect tasks, site deployments): either way the same run of
    :mod:`federated.server`: validate the sites, build the round-0 model from their statistics, run the
    rounds. ``ensemble`` runs one round in which every site trains and calibrates its own fault head with
    ``local_epochs`` defaulting to ``centralised_epochs``. ``centralised`` pools the rows, so it needs them
    in memory.
    """
    model_kwargs = dict(model_kwargs or {})
    if name == "centralised":
        if not isinstance(clients, Mapping):
            raise ValueError("strategy 'centralised' pools the rows: it needs the sites' data in memory")
        return train_centralised(clients, seed, centralised_epochs, **model_kwargs), None
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; known: {[*STRATEGIES, 'centralised']}")
    if isinstance(clients, Mapping):
        executor: SiteExecutor = InProcessExecutor(clients, max_workers)
        sites = list(clients) if sites is None else list(sites)
    elif sites is None:
        raise ValueError("train_strategy with an executor needs the site ids (sites=...)")
    else:
        executor = clients
    use_baseline = bool(model_kwargs.pop("use_baseline", True))
    targets = tuple(model_kwargs.pop("baseline_targets", BASELINE_TARGETS))
    spec = replace(PUMP_BASELINE, targets=targets) if use_baseline else None
    model = new_model(seed, **model_kwargs)
    n_features, n_faults = len(model.feature_names or ()), len(model.fault_names)
    active, excluded = validate_sites(executor, sites, n_features, n_faults, timeout_s)
    model, active, failed = build_initial_model(
        model, executor, active, baseline_spec=spec, timeout_s=timeout_s
    )
    strategy, rounds = make_configured_strategy(
        name,
        model,
        rounds,
        seed=seed,
        fit_config=fit_config,
        strategy_kwargs=strategy_kwargs,
        expert_epochs=centralised_epochs,
    )
    history = run_rounds(
        strategy,
        executor,
        active,
        rounds,
        get_parameters(model),
        timeout_s=timeout_s,
        on_quorum_failure=on_quorum_failure,
        evaluate_fn=evaluate_fn,
        excluded={**excluded, **failed},
    )
    set_parameters(model, history.params)
    return model, history


def make_configured_strategy(
    name: str,
    model: FaultClassifier,
    rounds: int,
    *,
    seed: int = 0,
    fit_config: Mapping[str, Any] | None = None,
    strategy_kwargs: Mapping[str, Any] | None = None,
    expert_epochs: int = 60,
    **kwargs: Any,
) -> tuple[Strategy, int]:
    """The strategy ``name`` with the recipe's client config for ``model``, and the rounds it should run.

    ``ensemble`` runs one round in which every site trains and calibrates its own fault head alone
    (pooled-style Adam for ``expert_epochs``); ``centralised`` is not federated and is refused here.
    """
    if name not in STRATEGIES:
        raise ValueError(f"unknown federated strategy {name!r}; known: {sorted(STRATEGIES)}")
    overrides = dict(fit_config or {})
    fit = FitOptions.from_plain({**DEFAULT_FIT.to_plain(), **overrides})
    options = {**DEFAULT_STRATEGY_KWARGS.get(name, {}), **(strategy_kwargs or {}), **kwargs}
    if name == "ensemble":
        fit = replace(
            fit,
            local_epochs=int(overrides.get("local_epochs", expert_epochs)),
            optimizer=overrides.get("optimizer", "adam"),
            learning_rate=overrides.get("learning_rate"),
        )
        rounds = 1
    return make_strategy(name, {**fit.to_plain(), "model": model_config(model)}, seed=seed, **options), rounds
