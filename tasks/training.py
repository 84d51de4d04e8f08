"""Prefect tasks of the training flow: per-site simulation and validation, federated rounds, evaluation.

A site's rows stay in its own tasks (``simulate_site`` writes the site's file; the site-call tasks run by
:class:`PrefectTaskExecutor` read it); only feature statistics, parameters, counts and scalar metrics come
back to the flow. The round loop itself is ``federated.server`` (via
``fedtwin.training.recipe.train_strategy``),
the same the benchmark measures.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prefect import get_run_logger, task

from federated.client import ClientData
from federated.evaluate import evaluate_model
from federated.executor import SiteCall, SiteExecutor, failure_reason
from federated.model import from_arrays, to_arrays
from federated.server import FederatedHistory
from federated.site import run_site_op
from federated.strategy import ClientFailure
from fedtwin.data.datasets import (
    SweepConfig,
    load_windows,
    reference_windows,
    save_windows,
    scenario_windows,
    test_scenarios,
    train_scenarios,
    windows_frame,
)
from fedtwin.data.features import FEATURE_NAMES
from fedtwin.data.validation import validate_dataset
from fedtwin.errors import DataValidationError
from fedtwin.training.recipe import train_strategy
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
    return reference_windows(speed_rpm, load_area_factor, window_s)


@task(task_run_name="validate-{summary.site}")
def validate_site(summary: SiteSummary, faults: list[str]) -> dict[str, Any]:
    """Great Expectations checks of a site's table; raises DataValidationError with readable reasons.

    Each fault in ``faults`` must have both classes (a site: its own fault; the held-out set: every fault).
    """
    df = windows_frame(load_windows(summary.path), FEATURE_NAMES)
    outcome = validate_dataset(
        df, signal_columns=list(FEATURE_NAMES), label_columns=faults, min_rows=20, site=summary.site
    )
    if not outcome.success:
        raise DataValidationError("data validation failed: " + "; ".join(outcome.failures))
    return {"site": summary.site, "rows": summary.rows, **outcome.stats}


def _site_data(summary: SiteSummary) -> ClientData:
    lw = load_windows(summary.path)
    return ClientData(lw.X, lw.Y.astype(float), summary.site)


# One task per site and operation so the Prefect UI shows each; the bodies are the same site-side dispatch
# every executor runs (federated.site.run_site_op), reading the site's own file.
@task(task_run_name="check-{summary.site}")
def site_check(summary: SiteSummary, call: SiteCall) -> dict[str, Any]:
    """Whether the site's data can train (shape, finiteness, both classes), never rows."""
    return run_site_op(call, _site_data(summary))


@task(task_run_name="gram-{summary.site}")
def site_gram(summary: SiteSummary, call: SiteCall) -> dict[str, Any]:
    """Sums of the site's healthy-baseline regression (normal equations), not rows."""
    return run_site_op(call, _site_data(summary))


@task(task_run_name="residuals-{summary.site}")
def site_residual_ss(summary: SiteSummary, call: SiteCall) -> dict[str, Any]:
    """Sum of squared healthy residuals per baseline target at the site."""
    return run_site_op(call, _site_data(summary))


@task(task_run_name="stats-{summary.site}")
def site_stats(summary: SiteSummary, call: SiteCall) -> dict[str, Any]:
    """Per-column count, sum and sum of squares of the site's model inputs (federated scaling)."""
    return run_site_op(call, _site_data(summary))


@task(task_run_name="update-{summary.site}-r{call.server_round}", retries=2, retry_delay_seconds=1)
def site_update(summary: SiteSummary, call: SiteCall) -> dict[str, Any]:
    """One site's local training on its own data; returns parameters, count and scalar metrics only."""
    return run_site_op(call, _site_data(summary))


_SITE_TASKS = {
    "validate": site_check,
    "gram": site_gram,
    "residual_ss": site_residual_ss,
    "stats": site_stats,
    "update": site_update,
}


class PrefectTaskExecutor:
    """Runs each site call as a Prefect task reading the site's file (the training flow's executor)."""

    def __init__(self, sites: Mapping[str, SiteSummary]) -> None:
        self.sites = dict(sites)

    def run(
        self, calls: Sequence[SiteCall], timeout_s: float | None = None
    ) -> tuple[dict[str, Any], list[ClientFailure]]:
        """Submit every call, then collect; a task that fails after its retries or times out is a failure."""
        futures = [(c.site, _SITE_TASKS[c.op].submit(self.sites[c.site], c)) for c in calls]
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        results: dict[str, Any] = {}
        failures: list[ClientFailure] = []
        for site, fut in futures:
            fut.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if not fut.state.is_final():
                failures.append(ClientFailure(site, f"timed out after {timeout_s:g} s"))
                continue
            try:
                results[site] = fut.result()
            except Exception as exc:  # one site down must not end the run; the quorum decides
                failures.append(ClientFailure(site, failure_reason(exc)))
        return results, failures


@task
def evaluate(arrays: dict[str, np.ndarray], meta: dict[str, Any], holdout: SiteSummary) -> dict[str, Any]:
    """Held-out metrics of a model: exact match over 8 classes, fault detection, false alarms, per fault."""
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


def round_rows(history: FederatedHistory | None) -> list[dict[str, float]]:
    """Per-round scalars logged with a strategy's run: training loss, sites used, failures."""
    return [
        {
            "train_loss": r.metrics.get("train_loss", float("nan")),
            "clients": float(r.n_results),
            "failures": float(len(r.failures)),
        }
        for r in (history.rounds if history is not None else [])
    ]


def federate(
    strategy_name: str,
    sites: Mapping[str, SiteSummary] | Sequence[str],
    rounds: int,
    seed: int = 0,
    executor: SiteExecutor | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any], list[dict[str, float]]]:
    """Federated training of one strategy: the benchmark's run (fedtwin.training.recipe.train_strategy),
    each site
    call a Prefect task on ``sites``' files, or a call of ``executor`` (then ``sites`` may be the ids only).
    Returns the model as arrays + metadata and a per-round history."""
    if executor is None:
        if not isinstance(sites, Mapping):
            raise ValueError("federate without an executor needs the sites' summaries")
        executor = PrefectTaskExecutor(sites)
    model, history = train_strategy(
        strategy_name,
        executor,
        sites=list(sites),
        rounds=rounds,
        seed=seed,
        strategy_kwargs={"min_fit_clients": min(2, len(sites))},
    )
    arrays, meta = to_arrays(model)
    meta["strategy"] = strategy_name
    meta["faults"] = list(FAULTS)
    return arrays, meta, round_rows(history)
