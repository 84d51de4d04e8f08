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

from fedtwin.data.datasets import (
    SweepConfig,
    load_windows,
    save_windows,
    scenario_windows,
    test_scenarios,
    train_scenarios,
    windows_frame,
)
from fedtwin.data.features import FEATURE_NAMES
from fedtwin.errors import DataValidationError
from plant_models import FAULTS


@dataclass(frozen=True)
class SiteSummary:
    """What a site reports about its data set: where it lives (site-local) and counts, never rows."""

    site: str
    path: str
    rows: int
    positives: dict[str, int]
    failed_runs: int


@task(task_run_name="simulate-{site}")
def simulate_site(site: str, cfg: SweepConfig, out_dir: str) -> SiteSummary:
    """Simulate one site's design (``holdout``: the held-out design) into a feature file kept at the site."""
    design = test_scenarios(cfg) if site == "holdout" else train_scenarios(cfg)[site]
    lw = scenario_windows(design, cfg.window_s)
    path = save_windows(lw, Path(out_dir) / f"{site}.npz")
    if lw.info.get("n_failed"):
        get_run_logger().warning(
            "%s: %d of %d runs failed", site, lw.info["n_failed"], lw.info["n_scenarios"]
        )
    pos = {f: int(lw.Y[:, k].sum()) for k, f in enumerate(FAULTS)}
    return SiteSummary(site, str(path), len(lw.X), pos, int(lw.info.get("n_failed", 0)))


@task
def simulate_reference(speed_rpm: float, load_area_factor: float, window_s: float) -> np.ndarray:
    """Healthy feature windows at the design operating point (the drift monitor's reference)."""
    from fedtwin.data.datasets import reference_windows

    return reference_windows(speed_rpm, load_area_factor, window_s)


@task(task_run_name="validate-{summary.site}")
def validate_site(summary: SiteSummary, faults: list[str]) -> dict[str, Any]:
    """Great Expectations checks of a site's table; raises DataValidationError with readable reasons.

    Each fault in ``faults`` must have both classes (a site: its own fault; the held-out set: every fault).
    """
    from fedtwin.data.validation import validate_dataset

    df = windows_frame(load_windows(summary.path), FEATURE_NAMES)
    outcome = validate_dataset(
        df, signal_columns=list(FEATURE_NAMES), label_columns=faults, min_rows=20, site=summary.site
    )
    if not outcome.success:
        raise DataValidationError("data validation failed: " + "; ".join(outcome.failures))
    return {"site": summary.site, "rows": summary.rows, **outcome.stats}


def _site_xy(summary: SiteSummary) -> tuple[np.ndarray, np.ndarray]:
    lw = load_windows(summary.path)
    return lw.X, lw.Y


@task(task_run_name="gram-{summary.site}")
def site_gram(summary: SiteSummary) -> dict[str, np.ndarray]:
    """Sums of the site's healthy-baseline regression (normal equations), not rows."""
    from federated.baseline import local_gram

    return local_gram(*_site_xy(summary), list(FEATURE_NAMES))


@task(task_run_name="residuals-{summary.site}")
def site_residual_ss(summary: SiteSummary, baseline: Any) -> dict[str, np.ndarray]:
    """Sum of squared healthy residuals per baseline target at the site."""
    from federated.baseline import local_residual_ss

    return local_residual_ss(*_site_xy(summary), list(FEATURE_NAMES), baseline)


@task(task_run_name="stats-{summary.site}")
def site_stats(summary: SiteSummary, config: dict[str, Any], params: list[np.ndarray]) -> dict[str, Any]:
    """Per-column count, sum and sum of squares of the site's model inputs (federated scaling)."""
    from federated.model import model_from_config
    from federated.stats import local_stats

    model = model_from_config(config, params)
    return local_stats(model.augment(_site_xy(summary)[0])).to_dict()


@task(task_run_name="update-{summary.site}-r{server_round}", retries=2, retry_delay_seconds=1)
def site_update(
    summary: SiteSummary, server_round: int, params: list[np.ndarray], config: dict[str, Any]
) -> Any:
    """One site's local training on its own data; returns parameters, count and scalar metrics only."""
    from federated.client import ClientData, client_update

    X, Y = _site_xy(summary)
    return client_update(params, ClientData(X, Y.astype(float), summary.site), config)


@task
def evaluate(arrays: dict[str, np.ndarray], meta: dict[str, Any], holdout: SiteSummary) -> dict[str, Any]:
    """Held-out metrics of a model: exact match over 8 classes, fault detection, false alarms, per fault."""
    from federated.evaluate import evaluate_model
    from federated.model import from_arrays

    lw = load_windows(holdout.path)
    return dict(evaluate_model(from_arrays(arrays, meta), lw.X, lw.Y))


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
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, Any], list[dict[str, float]]]:
    """Federated training inside a flow: scaling from site statistics, then per round one task per site.

    A site whose task fails (after its retries) is a failure of that round; the strategy's quorum decides
    whether the round counts. Returns the model as arrays + metadata and a per-round history.
    """
    from federated.baseline import set_residual_scale, solve_baseline
    from federated.model import FaultClassifier, get_parameters, model_config, set_parameters, to_arrays
    from federated.stats import FeatureStats, mean_std, merge_stats
    from federated.strategy import ClientFailure
    from fedtwin.training.recipe import DEFAULT_MODEL, make_configured_strategy

    logger = get_run_logger()
    names = list(FEATURE_NAMES)
    # Round 0 from site statistics only: healthy baseline (normal equations), its residual scale, the scaler.
    baseline = solve_baseline(f.result() for f in [site_gram.submit(x) for x in sites.values()])
    ss = [f.result() for f in [site_residual_ss.submit(x, baseline) for x in sites.values()]]
    model = FaultClassifier(
        **DEFAULT_MODEL, feature_names=tuple(names), fault_names=FAULTS, random_state=seed
    )
    model.initialize(len(names), None, None, set_residual_scale(baseline, ss))
    cfg0, p0 = model_config(model), get_parameters(model)
    futures0 = [site_stats.submit(x, cfg0, p0) for x in sites.values()]
    stats = [FeatureStats.from_dict(f.result()) for f in futures0]
    model.mean_, model.scale_ = mean_std(merge_stats(stats))
    # The same recipe the federated benchmark measures (per-rule options, the ensemble's single round).
    strategy, rounds = make_configured_strategy(
        strategy_name, model, rounds, seed=seed, min_fit_clients=min(2, len(sites))
    )
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
