"""Training flow: simulate per site, validate (GX), federate, evaluate, MLflow champion gate, Redis."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow

from federated.executor import SiteExecutor
from fedtwin.data.datasets import SweepConfig, get_profile, train_scenarios
from fedtwin.settings import Settings, get_settings
from fedtwin.training.promotion import GATE_METRIC, best_strategy
from fedtwin.training.recipe import strategy_names
from fedtwin.training.site_executor import executor_from_settings
from fedtwin.training.sites import DatasetSpec
from plant_models import FAULTS
from tasks.preflight import preflight
from tasks.registry import (
    finish_parent_run,
    load_champion,
    log_strategy_run,
    promote_model,
    put_model,
    register_and_gate,
    start_parent_run,
    store_reference,
)
from tasks.reporting import publish_training_report
from tasks.training import (
    SiteSummary,
    evaluate,
    federate,
    scalar_metrics,
    simulate_reference,
    simulate_site,
    validate_site,
)


def model_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of a model's arrays (names, dtypes, shapes, bytes): equal digests, the same model."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _prepare_sites(
    s: Settings,
    site_ids: list[str],
    cfg: SweepConfig,
    out_dir: str,
    profile: str,
    speed_rpm: float,
    load_area_factor: float,
) -> tuple[SiteExecutor | None, dict[str, SiteSummary], SiteSummary]:
    """The executor of the sites' work, the sites' summaries (in_process only) and the held-out set.

    ``in_process``: every site is simulated and validated here, each call a Prefect task of this run.
    ``site_workers``: each site simulates (or loads) and validates its own data on its own worker; only the
    held-out set, the coordinator's own, is made here.
    """
    train_ids = [] if s.site_executor == "site_workers" else site_ids
    futures = {sid: simulate_site.submit(sid, cfg, out_dir) for sid in [*train_ids, "holdout"]}
    summaries = {sid: f.result() for sid, f in futures.items()}
    holdout = summaries.pop("holdout")
    checks = [
        validate_site.submit(x, [f for f in FAULTS if sid.startswith(f)]) for sid, x in summaries.items()
    ]
    checks.append(validate_site.submit(holdout, list(FAULTS)))
    for check in checks:
        check.result()  # a failed validation stops the flow here, with its readable reason
    if s.site_executor != "site_workers":
        return None, summaries, holdout
    return executor_from_settings(s, DatasetSpec(profile, speed_rpm, load_area_factor)), {}, holdout


@flow(name="fedtwin-train", flow_run_name="train-{reason}-{profile}", log_prints=True)
def training_flow(
    strategy: str | None = None,
    rounds: int | None = None,
    profile: str = "demo",
    speed_rpm: float = 958.0,
    load_area_factor: float = 1.0,
    compare: list[str] | None = None,
    reason: str = "manual",
    promote: bool = True,
) -> dict[str, Any]:
    """Train the fault classifier around an operating point; promote it only if it beats the champion.

    With ``promote`` False the new version is only registered (alias ``challenger``); the caller decides
    (the candidate flow: shadow, campaign, then the offline and live gates).
    """
    s = get_settings()
    names = strategy_names(strategy or s.federated_strategy, compare)
    # MLflow and Redis are first needed after minutes of simulation: a service down fails the run now.
    preflight()
    rounds = rounds or s.federated_rounds
    cfg = get_profile(profile, speed_rpm, load_area_factor)
    out_dir = str(
        Path(s.data_dir).resolve() / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6}"
    )
    site_ids = list(train_scenarios(cfg))
    executor, summaries, holdout = _prepare_sites(
        s, site_ids, cfg, out_dir, profile, speed_rpm, load_area_factor
    )
    run_params = {
        "profile": profile,
        "rounds": rounds,
        "speed_rpm": speed_rpm,
        "load_area_factor": load_area_factor,
        "strategies": names,
        "sites": site_ids,
    }
    parent = start_parent_run(f"train-{reason}", run_params, {"reason": reason, "profile": profile})
    trained = {n: federate(n, summaries or site_ids, rounds, executor=executor) for n in names}
    reports = {n: evaluate(a, m, holdout) for n, (a, m, _) in trained.items()}
    metrics = {n: scalar_metrics(r) for n, r in reports.items()}
    children = {
        n: log_strategy_run(
            parent.run_id,
            n,
            a,
            m,
            {"strategy": n, **run_params},
            metrics[n],
            reports[n]["confusion"].tolist(),
            reports[n]["subset_names"],
            h,
        )
        for n, (a, m, h) in trained.items()
    }
    best = best_strategy(metrics)
    champion = load_champion()
    champ_metrics = scalar_metrics(evaluate(*champion, holdout)) if champion else None
    version_tags = {
        "strategy": best,
        "profile": profile,
        "rounds": str(rounds),
        "speed_rpm": f"{speed_rpm:g}",
        "load_area_factor": f"{load_area_factor:g}",
        "sweep_seed": str(cfg.seed),
        "reason": reason,
    }
    reg = register_and_gate(children[best], metrics[best], champ_metrics, version_tags, promote)
    finish_parent_run(
        parent.run_id, metrics, best, {"best_strategy": best, "champion_moved": str(reg["promoted"])}
    )
    served = None
    if reg["promoted"]:
        # The drift reference is stored before the pointer moves, so a served model always has one.
        reference = simulate_reference(speed_rpm, load_area_factor, cfg.window_s)
        version = put_model(trained[best][0], trained[best][1], reg)
        store_reference(version, reference, list(trained[best][1]["feature_names"]))
        served = promote_model(version)
    result = {
        "best": best,
        "exact_match": {n: reports[n][GATE_METRIC] for n in names},
        "champion_exact_match": None if champ_metrics is None else champ_metrics[GATE_METRIC],
        "candidate_metrics": metrics[best],
        "champion_metrics": champ_metrics,
        "registry": reg,
        "redis_version": served,
        "mlflow_run_url": parent.url,
        "model_sha256": {n: model_digest(a) for n, (a, _m, _h) in trained.items()},
    }
    publish_training_report(result, metrics)
    return result
