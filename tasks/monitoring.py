"""Prefect tasks of the drift monitor and the physics-informed retrain."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from federated.model import from_arrays
from fedtwin.adapters import tracking
from fedtwin.adapters.model_store import ModelStore
from fedtwin.adapters.redis_io import redis_client
from fedtwin.data.features import FEATURE_NAMES
from fedtwin.settings import get_settings
from fedtwin.training.recalibrate import estimate_from_features, summary, to_operating_point
from monitoring.detectors import DriftResult
from monitoring.drift import EvidentlyDriftDetector, PredictionDriftDetector, save_reports
from monitoring.events import DRIFT_EVENT, fleet_resource
from monitoring.workspace import (
    age_out,
    alert_flags,
    alert_rate_snapshot,
    check_snapshot,
    ensure_dashboard,
    get_or_create_project,
)

KEEP_REPORTS = 100
#: Checks whose Evidently snapshot keeps its report widgets. Measured with 56 features: a full snapshot is
#: ~3.7 MB on disk and ~18 MB of the UI's memory, a stripped one ~70 kB and too little to measure.
KEEP_FULL_SNAPSHOTS = 12


def _redis() -> Any:
    return redis_client(get_settings())


@task(retries=2, retry_delay_seconds=1, timeout_seconds=60)
def load_reference() -> tuple[pd.DataFrame, str, int] | str:
    """Healthy reference windows of the serving model with its id and version, or why there are none."""
    store = ModelStore.from_settings(get_settings())
    version = store.current_version()  # the verified, signed pointer
    if version is None:
        return "no model is served yet, so there is no reference"
    ref = store.load_reference(version)
    if ref is None:
        return f"the served model v{version} has no drift reference"
    X, names = ref
    return pd.DataFrame(X, columns=names), f"reference:model-v{version}", version


@task(retries=2, retry_delay_seconds=1, timeout_seconds=60)
def read_recent_windows(
    count: int, since_s: float | None = None, window_ids: str | None = None
) -> tuple[pd.DataFrame, str]:
    """The last ``count`` scored windows from the scorer's Redis stream (optionally scored after ``since_s``).

    Returns a frame with one column per feature plus ``asset``, ``window_start`` and ``model_version``, and an
    id naming the stream range it covers; ``window_ids`` (such an id) reads exactly that range again.
    """
    s = get_settings()
    # Stream ids are the wall-clock ms of scoring; window times are plant time, which may run behind.
    low, high = "-" if since_s is None else f"{int(since_s * 1000)}-0", "+"
    if window_ids and window_ids.startswith("features:") and ".." in window_ids:
        low, high = window_ids.removeprefix("features:").split("..", 1)
    with _redis() as client:
        entries = client.xrevrange(s.key("features"), max=high, min=low, count=count)
    rows, starts, assets, versions = [], [], [], []
    for _id, f in reversed(entries):
        rows.append(json.loads(f[b"x"]))
        starts.append(float(f[b"window_start"]))
        assets.append(f[b"asset"].decode())
        versions.append(int(f[b"model_version"]))
    values = np.asarray(rows, dtype=float).reshape(len(rows), len(FEATURE_NAMES))
    frame = pd.DataFrame(values, columns=list(FEATURE_NAMES))
    frame["asset"], frame["window_start"], frame["model_version"] = assets, starts, versions
    ident = f"features:{entries[-1][0].decode()}..{entries[0][0].decode()}" if entries else "features:empty"
    return frame, ident


@task(retries=1, retry_delay_seconds=2)
def check_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    drift_share: float,
    version: int,
    reference_id: str = "",
    current_id: str = "",
) -> dict[str, Any]:
    """Evidently feature drift plus alert-rate drift of model ``version``; reports written to disk.

    When the comparison is valid, ``"snapshot"`` holds the check's Evidently snapshot (the feature-drift
    report plus the alert rate of both window sets) for ``record_in_workspace``; it is None otherwise.
    """
    s = get_settings()
    cols = [c for c in reference.columns if c in current.columns]
    feature = EvidentlyDriftDetector(drift_share=drift_share).fit(reference[cols]).check(current[cols])
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out_dir = Path(s.monitoring_dir).resolve() / "reports"
    html, js = save_reports(feature, out_dir, f"drift-{stamp}")
    # Bounded disk use at one check per 5 min.
    for old in sorted(out_dir.glob("drift-*"))[: -2 * KEEP_REPORTS]:
        old.unlink(missing_ok=True)
    prediction = None
    snapshot = None
    if feature.is_valid:
        # The model the reference belongs to, even if another was promoted meanwhile.
        stored = ModelStore.from_settings(s).load(version)
        model = from_arrays(stored.arrays, stored.meta)
        faults = list(stored.meta["fault_names"])
        ref_pred = pd.DataFrame(model.predict(reference[cols].to_numpy()), columns=faults).astype(float)
        cur_pred = pd.DataFrame(model.predict(current[cols].to_numpy()), columns=faults).astype(float)
        prediction = PredictionDriftDetector().fit(ref_pred).check(cur_pred).to_dict()
        if feature.report is not None:
            alerts = alert_rate_snapshot(alert_flags(cur_pred, faults), alert_flags(ref_pred, faults))
            snapshot = check_snapshot(
                feature.report,
                alerts,
                name=f"drift check {stamp}: {feature.status}",
                metadata={
                    "status": feature.status,
                    "model_version": str(version),
                    "reference_id": reference_id,
                    "current_id": current_id,
                    "report": str(html),
                },
                tags=[feature.status, f"model-v{version}"],
            )
    return {
        "feature": feature.to_dict(),
        "prediction": prediction,
        "html": str(html),
        "json": str(js),
        "snapshot": snapshot,
    }


@task(retries=2, retry_delay_seconds=1, timeout_seconds=60, cache_policy=NO_CACHE)
def record_in_workspace(snapshot: Any, fleet: str) -> str | None:
    """Add a check's snapshot to the fleet's project of the Evidently UI workspace; return its dashboard URL.

    Creates the project and its dashboard panels when missing; keeps the newest ``KEEP_FULL_SNAPSHOTS``
    snapshots whole and strips the widgets of older ones (their values stay on the dashboard). Returns None
    (with a log line) when there is no snapshot, i.e. the check was not a valid comparison.
    """
    # lazy: Evidently, 2.5 s after this module's imports; flows.retrain imports this module and never uses it
    from evidently.ui.workspace import Workspace

    log = get_run_logger()
    if snapshot is None:
        log.info("nothing recorded in the Evidently workspace: the check was not a valid comparison")
        return None
    s = get_settings()
    workspace = Workspace(str(Path(s.evidently_workspace).resolve()))
    project = get_or_create_project(workspace, fleet)
    added = ensure_dashboard(workspace, project.id)
    ref = workspace.add_run(project.id, snapshot)
    stripped = age_out(workspace, project.id, KEEP_FULL_SNAPSHOTS)
    url = f"{s.evidently_ui_url.rstrip('/')}/projects/{project.id}"
    if stripped:
        _reload_ui(url)
    log.info(
        "recorded snapshot %s in Evidently project %r (%s)%s%s",
        ref.id,
        fleet,
        url,
        f", {added} dashboard panels added" if added else "",
        f", widgets of {stripped} older snapshots dropped" if stripped else "",
    )
    return url


def _reload_ui(project_url: str) -> None:
    """Ask a running Evidently UI to re-read the project, so it frees the widgets just dropped on disk."""
    api = project_url.replace("/projects/", "/api/projects/", 1) + "/reload"
    try:
        with urllib.request.urlopen(api, timeout=10):
            pass
    except (urllib.error.URLError, OSError):
        pass  # no UI running: it reads the files when it starts


@task(retries=2, retry_delay_seconds=2, timeout_seconds=120)
def log_drift_to_mlflow(result: dict[str, Any], reference_id: str, current_id: str) -> str:
    """The drift reports as artifacts of a ``drift-monitor`` run in the pipeline's experiment."""
    tracking.configure(get_settings())
    feature = result["feature"]
    with mlflow.start_run(
        run_name="drift-monitor", tags={"kind": "drift", "status": feature["status"]}
    ) as run:
        mlflow.log_params({"reference_id": reference_id, "current_id": current_id})
        mlflow.log_metrics(
            {
                "drift_share": float(feature["drift_share"]),
                "n_drifted": float(len(feature["drifted_features"])),
            }
        )
        if feature["status"] == "drift":  # ~5 MB of HTML per check: keep the ones that mattered
            for path in (result["html"], result["json"]):
                mlflow.log_artifact(path, artifact_path="drift")
        return str(run.info.run_id)


@task
def publish_summary(
    result: dict[str, Any], reference_id: str, current_id: str, dashboard_url: str | None = None
) -> str:
    """A markdown artifact in the Prefect UI: the verdict, the top features and where the reports are."""
    feature = DriftResult.from_dict(result["feature"])
    top = sorted(feature.per_feature.items(), key=lambda kv: kv[1])[:8]
    where = f"Evidently UI: {dashboard_url}" if dashboard_url else "not in the Evidently UI (invalid check)"
    lines = [
        f"## Drift check: **{feature.status}**",
        f"{feature.reason}",
        "",
        f"- drifted share: {feature.drift_share:.2f} (threshold {feature.threshold:.2f}), "
        f"reference {feature.n_reference} windows ({reference_id}), "
        f"current {feature.n_current} ({current_id})",
        f"- prediction drift: {(result.get('prediction') or {}).get('status', 'n/a')}",
        f"- Evidently report: `{result['html']}`; {where}",
        "",
        "| feature | score | drifted |",
        "|---|---|---|",
        *[f"| {k} | {v:.3g} | {'yes' if k in feature.drifted_features else ''} |" for k, v in top],
    ]
    return str(
        create_markdown_artifact("\n".join(lines), key="fedtwin-drift", description="fedtwin drift check")
    )


@task(retries=2, retry_delay_seconds=1, timeout_seconds=30)
def emit_drift_event(payload: dict[str, Any], fleet: str) -> str | None:
    """Emit the Prefect event the retrain deployment's trigger matches."""
    event = emit_event(event=DRIFT_EVENT, resource=fleet_resource(fleet), payload=payload)
    get_run_logger().info("emitted %s for fleet %s", DRIFT_EVENT, fleet)
    return None if event is None else str(event.id)


@task
def estimate_operating_point(windows: pd.DataFrame) -> dict[str, float]:
    """The operating point the stream shows (median over windows of the level features)."""
    est = estimate_from_features(windows)
    op = to_operating_point(est)
    get_run_logger().info("stream operating point: %s -> %s", est, op)
    return summary(est, op)
