"""MLflow adapter: parent/child runs, model logging without pickle, registry aliases and the champion gate."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fedtwin.errors import ServiceUnavailable

if TYPE_CHECKING:
    from fedtwin.settings import Settings

_MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
_PIP_REQUIREMENTS = ["numpy", "pandas<3", "scikit-learn", "mlflow"]


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version in the MLflow registry."""

    name: str
    version: int
    run_id: str


def configure(settings: Settings) -> None:
    """Point MLflow at the configured server and experiment, failing with one clear line when unreachable."""
    import os

    import mlflow

    from fedtwin.settings import mask_url

    uri = settings.mlflow_tracking_uri
    mlflow.set_tracking_uri(uri)
    auth = settings.mlflow_auth()
    if auth is not None:
        # The stack started this MLflow with its basic-auth app; MLflow's client reads these on each request.
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = auth
    if uri.startswith("http"):
        from fedtwin.stack import _http_ok

        if not _http_ok(uri.rstrip("/") + "/health"):
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
        mlflow.create_experiment(settings.mlflow_experiment, artifact_location=artifact_location)
    mlflow.set_experiment(settings.mlflow_experiment)


def log_model(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], feature_names: list[str], faults: list[str]
) -> str:
    """Log the classifier in the active run as a pyfunc from code; returns the model URI."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature

    from fedtwin.model_store import pack_arrays

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
    return str(info.model_uri)


def register(model_uri: str, name: str, run_id: str, tags: dict[str, str] | None = None) -> RegisteredVersion:
    """Register a logged model; returns the new version."""
    import mlflow

    mv = mlflow.register_model(model_uri, name, tags=tags)
    return RegisteredVersion(name=name, version=int(mv.version), run_id=run_id)


def set_alias(name: str, alias: str, version: int) -> None:
    """Point a registry alias (``champion``, ``challenger``) at a version."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, str(version))


def alias_version(name: str, alias: str) -> int | None:
    """Version behind an alias, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def load_arrays(name: str, alias_or_version: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and metadata behind ``models:/name@alias`` or ``models:/name/version``."""
    import mlflow

    from fedtwin.model_store import unpack_arrays

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

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
