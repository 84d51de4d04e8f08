"""Live evaluation flow: every served model's decisions joined with the plant's truth, to MLflow, Prefect."""

from __future__ import annotations

import math
from typing import Any

from prefect import flow, get_run_logger

from fedtwin.errors import FedtwinError
from fedtwin.settings import get_settings
from fedtwin.training.live_eval import comparison_markdown, evaluate, parse_decision, parse_truth
from plant_models import FAULTS
from tasks.live_eval import (
    display_name,
    log_live_eval,
    plant_cursors,
    publish_live_report,
    read_decisions,
    read_truth,
    resolve_models,
)


@flow(name="fedtwin-live-eval", flow_run_name="live-eval-{campaign}", log_prints=True)
def live_eval_flow(
    campaign: str,
    assets: list[str],
    since_wall_s: float,
    wait_s: float | None = None,
    log_to_mlflow: bool = True,
) -> dict[str, Any]:
    """Evaluate every model that decided on ``assets`` since wall time ``since_wall_s`` (a campaign's start).

    Waits (up to ``wait_s``, default ``Settings.live_eval_timeout_s``) until each model has decided up to the
    plant's last complete window, joins the decisions with the truth
    (:func:`fedtwin.training.live_eval.evaluate`),
    logs ``live_*`` metrics on each model's MLflow run and a ``live-eval-<campaign>`` comparison run, and
    publishes the comparison as a markdown artifact.

    Returns
    -------
    dict
        ``campaign``, ``results`` (figures per model, keyed ``<strategy>@v<registry version>`` when known),
        ``models`` (label -> registry version, run id, strategy), ``markdown`` and ``mlflow_run_id``.
    """
    settings = get_settings()
    truth = [parse_truth(raw) for raw in read_truth(assets, since_wall_s)]
    if not truth:
        raise FedtwinError(
            f"no truth records of {assets} since {since_wall_s:.0f}: did the campaign's plant run?"
        )
    since_t = min(rec.t for rec in truth)
    chunks_per_window = max(1, round(settings.window_s / settings.chunk_s))
    targets = {a: seq - chunks_per_window for a, seq in plant_cursors(assets).items()}
    wait = settings.live_eval_timeout_s if wait_s is None else wait_s
    raws = read_decisions(assets, since_t, since_wall_s, targets, wait)
    decisions = [parse_decision(raw) for raw in raws]
    results = evaluate(
        decisions, truth, window_s=settings.window_s, settle_s=settings.live_settle_s, faults=FAULTS
    )
    if not results:
        raise FedtwinError(f"no model decided on {assets}: is a scorer running with a served model?")
    models = resolve_models(sorted(results)) if log_to_mlflow else {m: {"label": m} for m in results}
    # Display names, kept unique: the same version may have decided as champion and as shadow.
    names = {m: display_name(models[m]) for m in results}
    for m in results:
        if list(names.values()).count(names[m]) > 1:
            names[m] += " (champion)" if results[m]["is_champion"] else f" ({m})"
    named = {names[m]: results[m] for m in results}
    markdown = comparison_markdown(named, title=f"Live evaluation: campaign {campaign}")
    run_id = log_live_eval(campaign, results, models, markdown) if log_to_mlflow else None
    publish_live_report(campaign, markdown)
    log = get_run_logger()
    for name, figures in named.items():
        log.info(
            "%s: live exact match %.4f, detection delay p50 %s s, %s false alarms per asset-hour",
            name,
            figures["exact_match"],
            _fmt(figures["detection_delay_p50_s"]),
            _fmt(figures["false_alarms_per_asset_hour"]),
        )
    return {
        "campaign": campaign,
        "results": named,
        "models": {names[m]: models[m] for m in results},
        "markdown": markdown,
        "mlflow_run_id": run_id,
    }


def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "n/a"
