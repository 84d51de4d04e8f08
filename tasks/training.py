"""Prefect tasks of the training flow: per-site simulation and validation, federated rounds, evaluation.

A site's rows stay in its own tasks (``simulate_site``, ``site_stats``, ``site_update`` read the site's file);
only feature statistics, parameters, counts and scalar metrics come back to the flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task

from fedtwin.datasets import FeatureTable, Profile, holdout_design, simulate_table, site_design
from fedtwin.errors import DataValidationError
from fedtwin.features import FEATURE_NAMES
from plant_models import FAULTS, OperatingPoint


@dataclass(frozen=True)
class SiteSummary:
    """What a site reports about its data set: where it lives (site-local) and counts, never rows."""

    site: str
    path: str
    rows: int
    positives: dict[str, int]
    failed_runs: int


@task(task_run_name="simulate-{site}")
def simulate_site(
    site: str,
    fault: str | None,
    profile: Profile,
    center: OperatingPoint,
    out_dir: str,
    site_index: int = 0,
    window_s: float = 1.0,
) -> SiteSummary:
    """Simulate one site's design (or the held-out design when ``fault`` is None) into a feature file."""
    design = site_design(fault, profile, center, site_index) if fault else holdout_design(profile, center)
    table = simulate_table(design, window_s)
    path = table.save(Path(out_dir) / f"{site}.npz")
    for err in table.errors:
        get_run_logger().warning("%s: %s", site, err)
    pos = {f: int(table.Y[:, k].sum()) for k, f in enumerate(FAULTS)}
    return SiteSummary(site, str(path), len(table.X), pos, len(table.errors))


@task(task_run_name="validate-{summary.site}")
def validate_site(summary: SiteSummary, fault: str | None) -> dict[str, Any]:
    """Great Expectations checks of a site's table; raises DataValidationError with readable reasons.

    A site must hold both classes of its own fault; the held-out set (``fault=None``) both of every fault.
    """
    from fedtwin.validation import validate_dataset

    df = FeatureTable.load(summary.path).frame()
    outcome = validate_dataset(
        df, signal_columns=list(FEATURE_NAMES), label_columns=[fault] if fault else list(FAULTS), min_rows=20
    )
    if not outcome.success:
        raise DataValidationError(f"{summary.site}: data validation failed: " + "; ".join(outcome.failures))
    return {"site": summary.site, "rows": summary.rows, **outcome.stats}


@task(task_run_name="stats-{summary.site}")
def site_stats(summary: SiteSummary) -> dict[str, Any]:
    """Per-feature count, sum and sum of squares of a site (federated scaling)."""
    from federated.stats import local_stats

    return local_stats(FeatureTable.load(summary.path).X).to_dict()


@task(
    task_run_name="update-{summary.site}-r{server_round}",
    retries=2,
    retry_delay_seconds=1,
    timeout_seconds=600,
)
def site_update(
    summary: SiteSummary, server_round: int, params: list[np.ndarray], config: dict[str, Any]
) -> Any:
    """One site's local training on its own data; returns parameters, count and scalar metrics only."""
    from federated.client import ClientData, client_update

    table = FeatureTable.load(summary.path)
    return client_update(params, ClientData(table.X, table.Y.astype(float), summary.site), config)


@task
def evaluate(arrays: dict[str, np.ndarray], meta: dict[str, Any], holdout: SiteSummary) -> dict[str, Any]:
    """Held-out metrics of a model: exact match over 8 classes, fault detection, false alarms, per fault."""
    from federated.evaluate import evaluate_model
    from federated.model import from_arrays

    table = FeatureTable.load(holdout.path)
    model = from_arrays(arrays, meta)
    return dict(evaluate_model(model, table.X, table.Y))


def scalar_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The float-valued entries of an evaluation report (what MLflow logs as metrics)."""
    out: dict[str, float] = {}
    for k, v in report.items():
        if isinstance(v, int | float | np.floating | np.integer):
            out[k] = float(v)
        elif isinstance(v, dict):
            out.update({f"{k}_{kk}": float(vv) for kk, vv in v.items() if isinstance(vv, int | float)})
    # MLflow metric names allow no "+" (class names such as "leak+bearing").
    return {k.replace("+", "__"): v for k, v in out.items()}


def federate(
    strategy_name: str,
    sites: dict[str, SiteSummary],
    rounds: int,
    hyper: dict[str, Any] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any], list[dict[str, float]]]:
    """Federated training inside a flow: scaling from site statistics, then per round one task per site.

    A site whose task fails (after its retries) is a failure of that round; the strategy's quorum decides
    whether the round counts. Returns the model as arrays + metadata and a per-round history.
    """
    from federated.model import FaultClassifier, get_parameters, model_config, set_parameters, to_arrays
    from federated.stats import FeatureStats, mean_std, merge_stats
    from federated.strategy import ClientFailure, make_strategy

    logger = get_run_logger()
    stats = [FeatureStats.from_dict(f.result()) for f in [site_stats.submit(s) for s in sites.values()]]
    mean, scale = mean_std(merge_stats(stats))
    hyper = {"hidden": 16, "local_epochs": 5, "learning_rate": 0.01, "batch_size": 64, **(hyper or {})}
    model = FaultClassifier(hidden=int(hyper["hidden"]), feature_names=FEATURE_NAMES, fault_names=FAULTS)
    model.initialize(len(FEATURE_NAMES), mean, scale)
    fit_config = {"model": model_config(model), **{k: v for k, v in hyper.items() if k != "hidden"}}
    strategy = make_strategy(strategy_name, fit_config, min_fit_clients=max(1, len(sites) - 1))
    params = get_parameters(model)
    history: list[dict[str, float]] = []
    for rnd in range(1, rounds + 1):
        instructions = strategy.configure_fit(rnd, params, list(sites))
        futures = {
            i.client_id: site_update.submit(sites[i.client_id], rnd, i.params, i.config) for i in instructions
        }
        results, failures = [], []
        for cid, fut in futures.items():
            try:
                results.append(fut.result())
            except Exception as exc:  # one site down must not end the run; the quorum decides
                failures.append(ClientFailure(cid, f"{type(exc).__name__}: {exc}"))
        params = strategy.aggregate_fit(rnd, results, failures, global_params=params)
        w = np.array([r.num_examples for r in results], dtype=float)
        loss = float(np.average([r.metrics.get("train_loss", np.nan) for r in results], weights=w))
        history.append({"train_loss": loss, "clients": float(len(results)), "failures": float(len(failures))})
        logger.info(
            "round %d/%d: %d sites, %d failed, loss %.4f", rnd, rounds, len(results), len(failures), loss
        )
    set_parameters(model, params)
    arrays, meta = to_arrays(model)
    meta["strategy"] = strategy_name
    meta["faults"] = list(FAULTS)
    return arrays, meta, history
