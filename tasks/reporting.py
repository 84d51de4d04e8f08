"""Prefect tasks that tell a flow run's story in the Prefect UI: one markdown artifact per run."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from fedtwin.adapters.tracking import comparison_markdown
from fedtwin.training.promotion import HEADLINE_METRICS


def training_report(result: dict[str, Any], metrics: dict[str, dict[str, float]]) -> str:
    """The training run's result as markdown: the comparison, the gate's decision, where to look."""
    reg = result["registry"]
    moved = "moved to this version" if reg["promoted"] else f"kept (v{reg['previous_champion']})"
    champ = result["champion_exact_match"]
    served = result["redis_version"]
    lines = [
        f"## Training: {result['best']} won",
        "",
        comparison_markdown(metrics, HEADLINE_METRICS, result["best"]),
        "",
        f"- registered **{reg['name']} v{reg['version']}**; champion {moved}"
        + ("" if champ is None else f" (champion's exact match on this sweep: {champ:.4f})"),
        f"- Redis serving version: {'unchanged' if served is None else served}",
    ]
    if result.get("mlflow_run_url"):
        lines.append(f"- MLflow: [this training's runs]({result['mlflow_run_url']})")
    if reg.get("url"):
        lines.append(f"- MLflow: [registered version]({reg['url']})")
    return "\n".join(lines)


@task
def publish_training_report(result: dict[str, Any], metrics: dict[str, dict[str, float]]) -> str:
    """The training report as the flow run's markdown artifact (key ``fedtwin-training``)."""
    markdown = training_report(result, metrics)
    create_markdown_artifact(markdown, key="fedtwin-training", description="fedtwin training result")
    return markdown
