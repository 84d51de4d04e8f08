"""MLflow adapter: parent/child runs, model logging without pickle, registry aliases and the champion gate."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from fedtwin.adapters.model_store import pack_arrays, unpack_arrays
from fedtwin.adapters.stack import _http_ok
from fedtwin.errors import ServiceUnavailable
from fedtwin.settings import mask_url

if TYPE_CHECKING:
    from fedtwin.settings import Settings

_MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
_PIP_REQUIREMENTS = ["numpy", "pandas<3", "scikit-learn", "mlflow"]


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# MLflow 3's UI opens an experiment of this kind on its runs table, not on the GenAI overview (traces).
EXPERIMENT_KIND = "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"  # what the UI shows as a run's description

#: MLflow's HTTP client defaults (7 retries with backoff factor 2, 120 s per request) keep a call to a dead
#: server retrying for minutes; fedtwin's calls give up after about 10 s of retries (3 retries with backoff
#: factor 1: sleeps of about 0, 2 and 4 s plus jitter) and 30 s per request. Set only when the user has not.
HTTP_CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


@dataclass(frozen=True)
class LoggedRun:
    """A strategy's child run and the model logged in it."""

    run_id: str
    model_uri: str
    model_id: str | None = None


@dataclass(frozen=True)
class ParentRun:
    """A training's parent run: its id, the link to its runs table and its own page (None: no UI)."""

    run_id: str
    url: str | None = None
    run_page: str | None = None


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version in the MLflow registry."""

    name: str
    version: int
    run_id: str


def configure(settings: Settings) -> None:
    """Point MLflow at the configured server and experiment, failing with one clear line when unreachable."""
    for name, value in HTTP_CLIENT_DEFAULTS.items():
        os.environ.setdefault(name, value)  # read by MLflow on each request
    uri = settings.mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    auth = settings.mlflow_auth()
    if auth is not None:
        # The stack started this MLflow with its basic-auth app; MLflow's client reads these on each request.
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = auth
    if uri.startswith("http") and not _http_ok(uri.rstrip("/") + "/health"):
        raise ServiceUnavailable(
            f"MLflow is not reachable at {mask_url(uri)}: run `fedtwin stack up` or set "
            "FEDTWIN_MLFLOW_TRACKING_URI"
        )
    exp = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    if exp is None:
        artifact_location = None
        if not uri.startswith("http"):
            # A file/sqlite store would otherwise write ./mlruns in whatever directory we run from.
            artifact_location = (settings.artifact_dir.resolve() / "mlflow").as_uri()
        mlflow.create_experiment(
            settings.mlflow_experiment,
            artifact_location=artifact_location,
            tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
        )
    elif exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        # Experiments made before this tag existed (or inferred as GenAI by the UI) open on their runs too.
        mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    mlflow.set_experiment(settings.mlflow_experiment)


def ui_base(settings: Settings) -> str | None:
    """The MLflow UI's address, or None when tracking goes to a local store without a server."""
    uri = settings.mlflow_tracking_uri
    return uri.rstrip("/") if uri.startswith("http") else None


def run_url(settings: Settings, experiment_id: str, run_id: str) -> str | None:
    """The UI page of one run, in the UI's model-training mode (not its GenAI overview)."""
    base = ui_base(settings)
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?{_ML_MODE}" if base else None


_ML_MODE = "workflowType=machine_learning"
SHARED_VIEW_TAG = "mlflow.sharedViewState."  # the UI reads a saved runs-table view from this experiment tag


def training_view_state(parent_run_id: str, metrics: tuple[str, ...]) -> dict[str, Any]:
    """A runs-table view of one training: its strategies' runs, headline metrics shown, best first (pure)."""
    columns = [f"metrics.`{m}`" for m in metrics]
    return {
        "searchFilter": f"tags.mlflow.parentRunId = '{parent_run_id}'",
        "orderByKey": columns[0],
        "orderByAsc": False,
        "selectedColumns": [*columns, "tags.`strategy`"],
        "columnWidths": dict.fromkeys(columns, 180),
        "runsExpanded": {parent_run_id: True},
        "runListHidden": False,
    }


def share_training_view(
    settings: Settings, experiment_id: str, parent_run_id: str, metrics: tuple[str, ...]
) -> str | None:
    """Save the training's runs view on the experiment; returns the link that opens it (None: no UI)."""
    key = f"train-{parent_run_id[:12]}"
    state = json.dumps(training_view_state(parent_run_id, metrics))
    MlflowClient().set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, state)
    base = ui_base(settings)
    return f"{base}/#/experiments/{experiment_id}/runs?{_ML_MODE}&viewStateShareKey={key}" if base else None


def model_version_url(settings: Settings, name: str, version: int) -> str | None:
    """The UI page of one registered model version."""
    base = ui_base(settings)
    return f"{base}/#/models/{name}/versions/{version}?{_ML_MODE}" if base else None


def log_model(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], feature_names: list[str], faults: list[str]
) -> tuple[str, str | None]:
    """Log the classifier in the active run as a pyfunc from code; returns the model URI and model id."""
    with tempfile.TemporaryDirectory() as tmp:
        arrays_path = Path(tmp) / "arrays.npz"
        meta_path = Path(tmp) / "meta.json"
        arrays_path.write_bytes(pack_arrays(arrays))
        meta_path.write_text(json.dumps(meta, sort_keys=True))
        example = pd.DataFrame(np.zeros((1, len(feature_names))), columns=feature_names)
        signature = infer_signature(example, pd.DataFrame(np.zeros((1, len(faults))), columns=faults))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(_MODEL_CODE),
            artifacts={"arrays": str(arrays_path), "meta": str(meta_path)},
            signature=signature,
            input_example=example,
            pip_requirements=_PIP_REQUIREMENTS,
        )
    return str(info.model_uri), getattr(info, "model_id", None)


def register(
    model_uri: str,
    name: str,
    run_id: str,
    tags: dict[str, str] | None = None,
    description: str | None = None,
) -> RegisteredVersion:
    """Register a logged model with its tags and description; returns the new version."""
    mv = mlflow.register_model(model_uri, name, tags=tags)
    if description:
        MlflowClient().update_model_version(name, str(mv.version), description=description)
    return RegisteredVersion(name=name, version=int(mv.version), run_id=run_id)


def set_alias(name: str, alias: str, version: int) -> None:
    """Point a registry alias (``champion``, ``challenger``) at a version."""
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def alias_version(name: str, alias: str) -> int | None:
    """Version behind an alias, or None."""
    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def load_arrays(name: str, alias_or_version: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata behind ``models:/name@alias`` or ``models:/name/version``."""
    ref = (
        f"models:/{name}@{alias_or_version}"
        if not alias_or_version.isdigit()
        else (f"models:/{name}/{alias_or_version}")
    )
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(ref, dst_path=tmp))
        arrays_file = next(local.rglob("arrays.npz"))
        meta_file = next(local.rglob("meta.json"))
        return unpack_arrays(arrays_file.read_bytes()), json.loads(meta_file.read_text())


def log_confusion_figure(cm: np.ndarray, labels: list[str], artifact_file: str, title: str) -> None:
    """Log a confusion matrix as a PNG figure of the active run."""
    # local: selects the Agg backend before pyplot loads, and costs 1.7 s that only these figures need
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    mlflow.log_figure(fig, artifact_file)
    plt.close(fig)


def log_metrics_first(metrics: dict[str, float], first: tuple[str, ...]) -> None:
    """Log the finite ``metrics`` on the active run, the ``first`` ones before the rest: MLflow's UI offers
    metrics (runs-table columns, the compare view's default axis) in logging order."""
    finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
    head = {k: finite[k] for k in first if k in finite}
    mlflow.log_metrics(head)
    mlflow.log_metrics({k: v for k, v in finite.items() if k not in head})


def comparison_markdown(rows: dict[str, dict[str, float]], metrics: tuple[str, ...], winner: str) -> str:
    """A markdown table of every strategy's headline metrics, the winner marked (pure)."""
    head = "| strategy | " + " | ".join(metrics) + " |"
    rule = "|---|" + "---|" * len(metrics)
    lines = [head, rule]
    for name, row in rows.items():
        label = f"**{name}** (winner)" if name == winner else name
        cells = " | ".join(f"{row.get(m, float('nan')):.4f}" for m in metrics)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def log_comparison(rows: dict[str, dict[str, float]], metrics: tuple[str, ...], winner: str) -> None:
    """The strategies' comparison on the active (parent) run: a table, a bar chart and the description."""
    # local: selects the Agg backend before pyplot loads, and costs 1.7 s that only these figures need
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    mlflow.log_table(
        {"strategy": names, **{m: [float(rows[n].get(m, float("nan"))) for n in names] for m in metrics}},
        artifact_file="comparison/strategies.json",
    )
    table = comparison_markdown(rows, metrics, winner)
    mlflow.log_text(table + "\n", "comparison/strategies.md")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = [float(rows[n].get(metric, float("nan"))) for n in names]
        colors = ["tab:green" if n == winner else "tab:gray" for n in names]
        ax.bar(names, values, color=colors)
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=45, labelsize=8)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
    fig.suptitle(f"strategies on the held-out sweep (winner: {winner})")
    fig.tight_layout()
    mlflow.log_figure(fig, "comparison/strategies.png")
    plt.close(fig)
    mlflow.set_tag(DESCRIPTION_TAG, f"Winner: **{winner}** by {metrics[0]}.\n\n{table}")
