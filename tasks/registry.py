"""Prefect tasks that touch MLflow and Redis: log, register, gate the champion, promote to serving."""

from __future__ import annotations

from typing import Any

import numpy as np
from prefect import get_run_logger, task

from fedtwin.settings import get_settings

CHAMPION, CHALLENGER = "champion", "challenger"
GATE_METRIC = "exact_match_8class"


def is_better(
    candidate: dict[str, float], champion: dict[str, float] | None, metric: str = GATE_METRIC
) -> bool:
    """The champion gate: a candidate wins when there is no champion or it scores strictly higher.

    Ties go to the candidate only when its false-alarm rate is lower, so an equal model never churns serving.
    """
    if champion is None:
        return True
    if candidate[metric] != champion[metric]:
        return candidate[metric] > champion[metric]
    return candidate.get("false_alarm_rate", 1.0) < champion.get("false_alarm_rate", 1.0)


# No retries here and in register_and_gate: a retry after a partial success would log a second run or
# register a second version and move the aliases onto it.
@task(timeout_seconds=300)
def log_strategy_run(
    parent_run_id: str,
    strategy: str,
    arrays: dict[str, np.ndarray],
    meta: dict[str, Any],
    params: dict[str, Any],
    metrics: dict[str, float],
    confusion: list[list[int]] | None,
    class_labels: list[str] | None,
    history: list[dict[str, float]] | None = None,
) -> str:
    """Child run of the pipeline run: parameters, metrics, round history, confusion figure, model."""
    import mlflow

    from fedtwin import tracking

    tracking.configure(get_settings())
    with mlflow.start_run(run_id=parent_run_id), mlflow.start_run(run_name=strategy, nested=True) as child:
        mlflow.set_tag("strategy", strategy)
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
        for step, row in enumerate(history or []):
            mlflow.log_metrics({f"round_{k}": float(v) for k, v in row.items()}, step=step)
        if confusion is not None and class_labels is not None:
            tracking.log_confusion_figure(
                np.asarray(confusion), class_labels, "confusion_matrix.png", strategy
            )
        model_uri = tracking.log_model(arrays, meta, list(meta["feature_names"]), list(meta["faults"]))
        mlflow.set_tag("model_uri", model_uri)
        return str(child.info.run_id) + "|" + model_uri


@task(timeout_seconds=300)
def register_and_gate(
    child: str, candidate_metrics: dict[str, float], champion_metrics: dict[str, float] | None
) -> dict[str, Any]:
    """Register the candidate as ``challenger``; move ``champion`` only if it beats the current one."""
    from fedtwin import tracking

    settings = get_settings()
    tracking.configure(settings)
    run_id, model_uri = child.split("|", 1)
    name = settings.registered_model
    mv = tracking.register(model_uri, name, run_id)
    tracking.set_alias(name, CHALLENGER, mv.version)
    previous = tracking.alias_version(name, CHAMPION)
    won = is_better(candidate_metrics, champion_metrics)
    if won:
        tracking.set_alias(name, CHAMPION, mv.version)
    get_run_logger().info(
        "registered %s v%d; champion %s (was v%s, candidate %s vs champion %s)",
        name,
        mv.version,
        "moved" if won else "kept",
        previous,
        candidate_metrics.get(GATE_METRIC),
        None if champion_metrics is None else champion_metrics.get(GATE_METRIC),
    )
    return {"name": name, "version": mv.version, "promoted": won, "previous_champion": previous}


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120)
def load_champion() -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The current champion's arrays and metadata from MLflow, or None."""
    from fedtwin import tracking

    settings = get_settings()
    tracking.configure(settings)
    if tracking.alias_version(settings.registered_model, CHAMPION) is None:
        return None
    return tracking.load_arrays(settings.registered_model, CHAMPION)


@task(retries=2, retry_delay_seconds=1, timeout_seconds=60)
def put_model(arrays: dict[str, np.ndarray], meta: dict[str, Any], registry: dict[str, Any]) -> int:
    """Store the champion as an immutable signed record (not serving yet); returns its Redis version."""
    from fedtwin.model_store import ModelStore

    meta = {**meta, "registered_model": registry["name"], "registry_version": registry["version"]}
    return ModelStore.from_settings(get_settings()).put(arrays, meta)


@task(retries=3, retry_delay_seconds=1, timeout_seconds=60)
def promote_model(version: int) -> int:
    """Verify a stored version and switch the serving pointer to it (idempotent); scorers hot-swap."""
    from fedtwin.model_store import ModelStore

    ModelStore.from_settings(get_settings()).promote(version)
    get_run_logger().info("Redis serving pointer -> version %d", version)
    return version


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120)
def start_parent_run(name: str, params: dict[str, Any], tags: dict[str, str]) -> str:
    """Parent MLflow run of one pipeline run; strategies log as its children."""
    import mlflow

    from fedtwin import tracking

    tracking.configure(get_settings())
    with mlflow.start_run(run_name=name, tags=tags) as parent:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        return str(parent.info.run_id)


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120)
def finish_parent_run(parent_run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
    """Winner's metrics and tags on the parent run, so the runs list shows the outcome at a glance."""
    import mlflow

    from fedtwin import tracking

    tracking.configure(get_settings())
    with mlflow.start_run(run_id=parent_run_id):
        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
        mlflow.set_tags(tags)


@task(retries=3, retry_delay_seconds=1, timeout_seconds=60)
def store_reference(version: int, X: np.ndarray, feature_names: list[str]) -> str:
    """Healthy feature windows the serving model is compared against by the drift monitor."""
    import json

    from fedtwin.model_store import pack_arrays
    from fedtwin.redis_io import redis_client

    settings = get_settings()
    key = settings.key("reference", str(version))
    with redis_client(settings) as client:
        client.mset({key: pack_arrays({"X": X}), key + ":features": json.dumps(feature_names)})
    return key
