"""Prefect tasks that touch MLflow and Redis: log, register, gate the champion, promote to serving."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from prefect import get_run_logger, task

from fedtwin.adapters import tracking
from fedtwin.adapters.model_store import ModelStore
from fedtwin.adapters.tracking import LoggedRun, ParentRun
from fedtwin.settings import get_settings
from fedtwin.training.promotion import CHALLENGER, CHAMPION, GATE_METRIC, HEADLINE_METRICS, is_better


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
) -> LoggedRun:
    """Child run of the pipeline run: parameters, metrics, round history, confusion figure, model.

    The model's metrics are linked to the logged model too, so its registered version shows them.
    """
    tracking.configure(get_settings())
    with mlflow.start_run(run_id=parent_run_id), mlflow.start_run(run_name=strategy, nested=True) as child:
        mlflow.set_tag("strategy", strategy)
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        # The held-out size is a count, not a score: as a metric the compare view plotted it first.
        if "n" in metrics:
            mlflow.log_param("holdout_windows", int(metrics["n"]))
        tracking.log_metrics_first({k: v for k, v in metrics.items() if k != "n"}, HEADLINE_METRICS)
        for step, row in enumerate(history or []):
            mlflow.log_metrics({f"round_{k}": float(v) for k, v in row.items()}, step=step)
        if confusion is not None and class_labels is not None:
            tracking.log_confusion_figure(
                np.asarray(confusion), class_labels, "confusion_matrix.png", strategy
            )
        finite = {k: float(v) for k, v in metrics.items() if np.isfinite(v)}
        mlflow.set_tag(tracking.DESCRIPTION_TAG, _run_description(strategy, finite))
        model_uri, model_id = tracking.log_model(
            arrays, meta, list(meta["feature_names"]), list(meta["faults"])
        )
        if model_id is not None:
            mlflow.log_metrics(finite, model_id=model_id)
        mlflow.set_tag("model_uri", model_uri)
        return LoggedRun(str(child.info.run_id), model_uri, model_id)


def _run_description(strategy: str, metrics: dict[str, float]) -> str:
    figures = ", ".join(f"{m} {metrics[m]:.4f}" for m in HEADLINE_METRICS if m in metrics)
    return f"Strategy **{strategy}** on the held-out sweep: {figures}."


@task(timeout_seconds=300)
def register_and_gate(
    child: LoggedRun,
    candidate_metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    tags: dict[str, str] | None = None,
    move_champion: bool = True,
) -> dict[str, Any]:
    """Register the candidate as ``challenger``; move ``champion`` only if it beats the current one.

    With ``move_champion`` False the champion stays whatever the offline gate says (``beats_offline`` tells
    it): a later gate decides (the candidate flow's live evaluation).

    The version carries ``tags`` (strategy, profile, operating point, sweep seed), its headline metrics as
    ``metric.*`` tags and a description, so the registry page says what it is without opening the run.
    """
    settings = get_settings()
    tracking.configure(settings)
    name = settings.registered_model
    version_tags = {**(tags or {}), "run_id": child.run_id}
    version_tags.update(
        {f"metric.{m}": f"{candidate_metrics[m]:.4f}" for m in HEADLINE_METRICS if m in candidate_metrics}
    )
    strategy = version_tags.get("strategy", "?")
    description = _run_description(strategy, candidate_metrics) + (
        f" Trained with profile {version_tags['profile']}." if "profile" in version_tags else ""
    )
    mv = tracking.register(child.model_uri, name, child.run_id, tags=version_tags, description=description)
    tracking.set_alias(name, CHALLENGER, mv.version)
    previous = tracking.alias_version(name, CHAMPION)
    beats = is_better(candidate_metrics, champion_metrics)
    won = beats and move_champion
    if won:
        tracking.set_alias(name, CHAMPION, mv.version)
    champion_score = None if champion_metrics is None else champion_metrics.get(GATE_METRIC)
    get_run_logger().info(
        "registered %s v%d; champion %s (%s; held-out %s: candidate %s, champion %s)",
        name,
        mv.version,
        "moved" if won else "kept",
        "there was none" if previous is None else f"it was v{previous}",
        GATE_METRIC,
        candidate_metrics.get(GATE_METRIC),
        "none" if champion_score is None else champion_score,
    )
    return {
        "name": name,
        "version": mv.version,
        "promoted": won,
        "beats_offline": beats,
        "previous_champion": previous,
        "url": tracking.model_version_url(settings, name, mv.version),
    }


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120)
def load_champion() -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The current champion's arrays and metadata from MLflow, or None."""
    settings = get_settings()
    tracking.configure(settings)
    if tracking.alias_version(settings.registered_model, CHAMPION) is None:
        return None
    return tracking.load_arrays(settings.registered_model, CHAMPION)


@task(retries=2, retry_delay_seconds=1, timeout_seconds=60)
def put_model(arrays: dict[str, np.ndarray], meta: dict[str, Any], registry: dict[str, Any]) -> int:
    """Store the champion as an immutable signed record (not serving yet); returns its Redis version."""
    meta = {**meta, "registered_model": registry["name"], "registry_version": registry["version"]}
    return ModelStore.from_settings(get_settings()).put(arrays, meta)


@task(retries=3, retry_delay_seconds=1, timeout_seconds=60)
def promote_model(version: int) -> int:
    """Verify a stored version and switch the serving pointer to it (idempotent); scorers hot-swap."""
    ModelStore.from_settings(get_settings()).promote(version)
    get_run_logger().info("Redis serving pointer -> version %d", version)
    return version


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120)
def start_parent_run(name: str, params: dict[str, Any], tags: dict[str, str]) -> ParentRun:
    """Parent MLflow run of one pipeline run (strategies log as its children): its id, the link to this
    training's runs table (a saved view: headline metrics shown, best first) and the run's own page."""
    settings = get_settings()
    tracking.configure(settings)
    with mlflow.start_run(run_name=name, tags=tags) as parent:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        run_id, experiment_id = str(parent.info.run_id), str(parent.info.experiment_id)
    url = tracking.share_training_view(settings, experiment_id, run_id, HEADLINE_METRICS)
    return ParentRun(run_id, url, tracking.run_url(settings, experiment_id, run_id))


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120)
def finish_parent_run(
    parent_run_id: str,
    reports: dict[str, dict[str, float]],
    winner: str,
    tags: dict[str, str],
) -> None:
    """The comparison of every strategy (table, bar chart, description) and the winner's metrics and tags on
    the parent run, so the runs list and the run page show the outcome at a glance."""
    tracking.configure(get_settings())
    with mlflow.start_run(run_id=parent_run_id):
        tracking.log_metrics_first(reports[winner], HEADLINE_METRICS)
        mlflow.set_tags(tags)
        tracking.log_comparison(
            {n: {m: r.get(m, float("nan")) for m in HEADLINE_METRICS} for n, r in reports.items()},
            HEADLINE_METRICS,
            winner,
        )


@task(retries=3, retry_delay_seconds=1, timeout_seconds=60)
def store_reference(version: int, X: np.ndarray, feature_names: list[str]) -> str:
    """Healthy feature windows the serving model is compared against by the drift monitor."""
    return ModelStore.from_settings(get_settings()).put_reference(version, X, feature_names)
