"""Drift checks as an Evidently UI workspace: one project per fleet, one snapshot per check, one dashboard.

Each drift check becomes one Evidently snapshot that holds the feature-drift report the detector already
ran (``DriftedColumnsCount`` + one ``ValueDrift`` per feature) and, next to it, the alert rate of the same
windows: a small second report of ``MeanValue`` over the serving model's 0/1 outputs (``any_fault`` = share of
windows flagged with any fault, plus one column per fault). The project dashboard plots both over time; its
panels have fixed ids, so ``ensure_dashboard`` adds only what is missing and can run before every check.

Nothing here starts a server or knows about Prefect: the functions take a workspace object (``Workspace(dir)``
for a local directory, which ``evidently ui --workspace dir`` serves) and data frames. Evidently is imported
lazily (~3 s).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from evidently.core.report import Snapshot
    from evidently.sdk.models import DashboardPanelPlot
    from evidently.ui.workspace import Project, WorkspaceBase

__all__ = [
    "ANY_FAULT",
    "DASHBOARD_TAB",
    "age_out",
    "alert_flags",
    "alert_rate_snapshot",
    "check_snapshot",
    "dashboard_panels",
    "ensure_dashboard",
    "get_or_create_project",
    "project_id_for",
    "without_widgets",
]

#: Column of the alert-rate dataset that is 1 when the model flags a window with any fault.
ANY_FAULT = "any_fault"
#: Title of the dashboard tab fedtwin owns (panels a user adds elsewhere are left alone).
DASHBOARD_TAB = "Drift and alerts"

# Fixed namespace: the same fleet or panel name always gives the same id, in every process and on every host.
_NAMESPACE = uuid.UUID("6b1f0a52-3c1e-4f0e-9d7c-5b8f2f0c9a11")
_DRIFT_METRIC = "evidently:metric_v2:DriftedColumnsCount"
_MEAN_METRIC = "evidently:metric_v2:MeanValue"


def project_id_for(fleet: str) -> uuid.UUID:
    """The project id of a fleet: a name-based UUID, so concurrent monitors agree without a lookup race."""
    if not isinstance(fleet, str) or not fleet.strip():
        raise ValueError(f"fleet: expected a non-empty name, got {fleet!r}")
    return uuid.uuid5(_NAMESPACE, f"fedtwin.fleet.{fleet}")


def get_or_create_project(workspace: WorkspaceBase, fleet: str) -> Project:
    """The fleet's project: by its fixed id, else an existing project of that name, else a new one."""
    # lazy: Evidently imports in ~3 s (14 s on the busy 2-core box), see the module docstring
    from evidently.sdk.models import ProjectModel

    pid = project_id_for(fleet)
    project = workspace.get_project(pid)
    if project is not None:
        return project
    named = workspace.search_project(fleet)
    if named:
        return named[0]
    model = ProjectModel(
        id=pid,
        name=fleet,
        description=f"fedtwin drift monitor of fleet {fleet!r}: feature drift and alert rate per check",
    )
    return workspace.add_project(model)


def _panel_id(key: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"panel.{key}")


def dashboard_panels() -> list[DashboardPanelPlot]:
    """The dashboard: latest drift share and alert rate, both over time, drifted features and rate per fault.

    Panel ids are fixed (name-based UUIDs), which is what makes ``ensure_dashboard`` idempotent.
    """
    # lazy: Evidently imports in ~3 s (14 s on the busy 2-core box), see the module docstring
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel

    share = PanelMetric(legend="drift share", metric=_DRIFT_METRIC, metric_labels={"value_type": "share"})
    count = PanelMetric(
        legend="drifted features", metric=_DRIFT_METRIC, metric_labels={"value_type": "count"}
    )
    rate = PanelMetric(legend="alert rate", metric=_MEAN_METRIC, metric_labels={"column": ANY_FAULT})
    # No column label: every MeanValue series of the snapshot, i.e. one per fault plus any_fault.
    per_fault = PanelMetric(metric=_MEAN_METRIC)
    panels = [
        (
            "latest-drift-share",
            counter_panel(
                "Drift share (latest check)",
                [share],
                description="Share of features whose distribution drifted from the model's training data",
                size="half",
            ),
        ),
        (
            "latest-alert-rate",
            counter_panel(
                "Alert rate (latest check)",
                [rate],
                description="Share of checked windows the serving model flags with any fault",
                size="half",
            ),
        ),
        (
            "drift-share",
            line_plot_panel(
                "Drift share over time",
                [share],
                description="A retrain is triggered when the share reaches the drift_share setting",
            ),
        ),
        (
            "alert-rate",
            line_plot_panel(
                "Alert rate over time",
                [rate],
                description="Share of the checked windows the serving model flags with any fault",
            ),
        ),
        ("drifted-count", bar_plot_panel("Drifted features per check", [count], size="half")),
        ("alert-rate-by-fault", line_plot_panel("Alert rate by fault", [per_fault], size="half")),
    ]
    out = []
    for key, panel in panels:
        panel.id = _panel_id(key)
        out.append(panel)
    return out


def ensure_dashboard(workspace: WorkspaceBase, project_id: uuid.UUID) -> int:
    """Add the panels of ``dashboard_panels`` the project's dashboard lacks; return how many were added."""
    # lazy: Evidently imports in ~3 s (14 s on the busy 2-core box), see the module docstring
    from evidently.sdk.models import DashboardModel, DashboardTabModel

    current = workspace.get_dashboard(project_id)
    have = {p.id for p in current.panels}
    missing = [p for p in dashboard_panels() if p.id not in have]
    if not missing:
        return 0
    tab_id = uuid.uuid5(_NAMESPACE, f"tab.{DASHBOARD_TAB}")
    tabs = list(current.tabs)
    tab = next((t for t in tabs if t.id == tab_id), None)
    if tab is None:
        tab = DashboardTabModel(id=tab_id, title=DASHBOARD_TAB, panels=[])
        tabs.insert(0, tab)
    # fedtwin's panels first, in their listed order (whichever were missing), then any a user put in the tab.
    ours = [p.id for p in dashboard_panels()]
    tab.panels = [*ours, *(i for i in tab.panels if i not in ours)]
    workspace.save_dashboard(project_id, DashboardModel(tabs=tabs, panels=[*current.panels, *missing]))
    return len(missing)


def alert_flags(predictions: np.ndarray | pd.DataFrame, faults: list[str]) -> pd.DataFrame:
    """One 0/1 column per fault plus ``any_fault`` from a model's per-window, per-fault outputs.

    Raises
    ------
    ValueError
        When the outputs are not a 2-D array of 0/1 with one column per fault.
    """
    values = np.asarray(predictions, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(faults):
        raise ValueError(f"predictions: expected shape (windows, {len(faults)}), got {values.shape}")
    if ANY_FAULT in faults:
        raise ValueError(f"faults: {ANY_FAULT!r} is reserved for the any-fault column")
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError("predictions: expected 0/1 flags per fault (the model's predict, not predict_proba)")
    frame = pd.DataFrame(values, columns=list(faults))
    frame[ANY_FAULT] = values.max(axis=1) if len(values) else np.zeros(0)
    return frame


def alert_rate_snapshot(current: pd.DataFrame, reference: pd.DataFrame | None = None) -> Snapshot:
    """Evidently report of the mean of every column of ``alert_flags`` frames (the alert rates)."""
    # lazy: Evidently imports in ~3 s (14 s on the busy 2-core box), see the module docstring
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue

    if current.empty:
        raise ValueError("current: no windows, so there is no alert rate")
    cols = list(current.columns)
    definition = DataDefinition(numerical_columns=cols)
    ordered = [ANY_FAULT, *(c for c in cols if c != ANY_FAULT)] if ANY_FAULT in cols else cols
    report = Report([MeanValue(column=c) for c in ordered])
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=(
            None if reference is None else Dataset.from_pandas(reference, data_definition=definition)
        ),
    )


def check_snapshot(
    feature: Snapshot,
    alerts: Snapshot | None = None,
    *,
    name: str | None = None,
    metadata: dict[str, str] | None = None,
    tags: list[str] | None = None,
    timestamp: datetime | None = None,
) -> Snapshot:
    """One snapshot of a check: the feature-drift report's metrics and widgets, then the alert-rate report's.

    The timestamp (the dashboard's x axis) is the feature report's unless given.
    """
    # lazy: Evidently imports in ~3 s (14 s on the busy 2-core box), see the module docstring
    from evidently.core.report import Snapshot
    from evidently.core.serialization import ReportModel, SnapshotModel

    first = feature.to_snapshot_model()
    parts = [first] if alerts is None else [first, alerts.to_snapshot_model()]
    results: dict[Any, Any] = {}
    for part in parts:
        clash = set(results) & set(part.metric_results)
        if clash:  # same metric in both reports would silently overwrite one value
            raise ValueError(
                f"alerts: metric ids {sorted(map(str, clash))} are already in the feature report"
            )
        results.update(part.metric_results)
    model = SnapshotModel(
        report=ReportModel(items=[]),
        name=name,
        timestamp=timestamp or first.timestamp,
        metadata=dict(metadata or {}),
        tags=list(tags or []),
        metric_results=results,
        top_level_metrics=[m for p in parts for m in p.top_level_metrics],
        widgets=[w for p in parts for w in p.widgets],
        tests_widgets=[w for p in parts for w in p.tests_widgets],
    )
    return Snapshot.load_model(model)


def without_widgets(model: Any) -> Any:
    """A copy of a ``SnapshotModel`` with every widget dropped (top level and per metric), values kept.

    A check's snapshot (56 features) is ~3.7 MB on disk and ~18 MB of the UI's memory, nearly all plotly
    widgets; without them it is ~70 kB and still feeds every dashboard panel, but its report page is empty.
    """
    results = {
        key: result.copy(update={"widget": []}) if getattr(result, "widget", None) else result
        for key, result in model.metric_results.items()
    }
    return model.copy(update={"widgets": [], "tests_widgets": [], "metric_results": results})


def age_out(workspace: Any, project_id: uuid.UUID, keep_full: int, scan: int = 5) -> int:
    """Drop the widgets of the project's snapshots older than the newest ``keep_full``; return how many.

    Only the ``scan`` youngest of the aged snapshots are looked at: run after every check, each snapshot is
    stripped once, when it ages out, so a check reads a handful of files, not the whole history. Needs a
    local ``Workspace`` (it rewrites the snapshot files in place).
    """
    if keep_full < 1:
        raise ValueError(f"keep_full: expected at least 1, got {keep_full}")
    # Snapshot ids are UUIDv7, so sorting them sorts by creation time.
    aged = sorted(workspace.list_runs(project_id))[:-keep_full]
    stripped = 0
    for sid in aged[-scan:]:
        model = workspace.get_run(project_id, sid)
        if model is not None and (model.widgets or model.tests_widgets):
            workspace.state.write_snapshot(project_id, sid, without_widgets(model))
            stripped += 1
    return stripped
