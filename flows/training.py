"""Training flow: simulate per site, validate (GX), federate, evaluate, MLflow champion gate, Redis."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow

from fedtwin.data.datasets import get_profile, train_scenarios
from fedtwin.settings import get_settings
from fedtwin.training.promotion import GATE_METRIC, best_strategy
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
    evaluate,
    federate,
    scalar_metrics,
    simulate_reference,
    simulate_site,
    validate_site,
)


@flow(name="fedtwin-train", flow_run_name="train-{reason}-{profile}", log_prints=True)
def training_flow(
    strategy: str | None = None,
    rounds: int | None = None,
    profile: str = "demo",
    speed_rpm: float = 958.0,
    load_area_factor: float = 1.0,
    compare: list[str] | None = None,
    reason: str = "manual",
) -> dict[str, Any]:
    """Train the fault classifier around an operating point; promote it only if it beats the champion."""
    s = get_settings()
    # MLflow and Redis are first needed after minutes of simulation: a service down fails the run now.
    preflight()
    names = list(dict.fromkeys([strategy or s.federated_strategy, *(compare or [])]))
    rounds = rounds or s.federated_rounds
    cfg = get_profile(profile, speed_rpm, load_area_factor)
    out_dir = str(
        Path(s.data_dir).resolve() / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**6}"
    )
    site_ids = list(train_scenarios(cfg))
    futures = {sid: simulate_site.submit(sid, cfg, out_dir) for sid in [*site_ids, "holdout"]}
    summaries = {sid: f.result() for sid, f in futures.items()}
    holdout = summaries.pop("holdout")
    checks = [
        validate_site.submit(x, [f for f in FAULTS if sid.startswith(f)]) for sid, x in summaries.items()
    ]
    checks.append(validate_site.submit(holdout, list(FAULTS)))
    for check in checks:
        check.result()  # a failed validation stops the flow here, with its readable reason
    run_params = {
        "profile": profile,
        "rounds": rounds,
        "speed_rpm": speed_rpm,
        "load_area_factor": load_area_factor,
        "strategies": names,
        "sites": site_ids,
    }
    parent = start_parent_run(f"train-{reason}", run_params, {"reason": reason, "profile": profile})
    trained = {n: federate(n, summaries, rounds) for n in names}
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
    reg = register_and_gate(children[best], metrics[best], champ_metrics, version_tags)
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
        "registry": reg,
        "redis_version": served,
        "mlflow_run_url": parent.url,
    }
    publish_training_report(result, metrics)
    return result
