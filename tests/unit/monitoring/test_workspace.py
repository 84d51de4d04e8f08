"""The Evidently UI workspace of the drift monitor: a project per fleet, one snapshot per check holding the
feature drift and the alert rate, and dashboard panels that read exactly those values, added once."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from monitoring import workspace as mw
from monitoring.drift import EvidentlyDriftDetector

FAULTS = ["leak", "blocked_inlet"]


@pytest.fixture(scope="module")
def feature_result() -> Any:
    """A real Evidently check: 4 features, the first two shifted by 3 sigma, so drift share is 2/4."""
    rng = np.random.default_rng(7)
    cols = ["a", "b", "c", "d"]
    ref = pd.DataFrame(rng.normal(size=(200, 4)), columns=cols)
    cur = pd.DataFrame(rng.normal(size=(200, 4)), columns=cols)
    cur[["a", "b"]] += 3.0
    result = EvidentlyDriftDetector(drift_share=0.5).fit(ref).check(cur)
    assert result.drifted_features == ["a", "b"]
    return result


def _flags(rows: list[list[int]]) -> pd.DataFrame:
    return mw.alert_flags(np.array(rows, dtype=float), FAULTS)


def _workspace(tmp_path: Path) -> Any:
    from evidently.ui.workspace import Workspace

    return Workspace(str(tmp_path / "ws"))


def _series(path: Path, project_id: Any) -> dict[str, list[float | None]]:
    """What the UI server plots: each dashboard panel's filters run through Evidently's own local storage."""
    from evidently.ui.service.base import SeriesFilter
    from evidently.ui.service.storage.local.base import InMemoryDataStorage

    storage = InMemoryDataStorage(str(path))
    out: dict[str, list[float | None]] = {}
    for panel in mw.dashboard_panels():
        filters = [
            SeriesFilter(tags=v.tags, metadata=v.metadata, metric=v.metric, metric_labels=v.metric_labels)
            for v in panel.values
        ]
        response = asyncio.run(storage.get_data_series(project_id, filters, None, None))
        for series in response.series:
            label = series.params.get("column", series.params.get("value_type"))
            out[f"{panel.title}|{label}"] = series.values
    return out


def test_project_id_is_fixed_per_fleet_and_a_blank_fleet_is_refused() -> None:
    assert mw.project_id_for("north") == mw.project_id_for("north")
    assert mw.project_id_for("north") != mw.project_id_for("south")
    with pytest.raises(ValueError, match="fleet"):
        mw.project_id_for(" ")


def test_one_project_per_fleet_and_an_existing_one_of_that_name_is_reused(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    first = mw.get_or_create_project(ws, "north")
    again = mw.get_or_create_project(ws, "north")
    assert first.id == again.id == mw.project_id_for("north")
    assert first.name == "north"
    made_by_hand = ws.create_project("south")
    assert mw.get_or_create_project(ws, "south").id == made_by_hand.id
    assert sorted(p.name for p in ws.list_projects()) == ["north", "south"]


def test_dashboard_panels_are_added_once_and_a_missing_one_is_restored(tmp_path: Path) -> None:
    from evidently.sdk.models import DashboardModel
    from evidently.sdk.panels import text_panel

    ws = _workspace(tmp_path)
    project = mw.get_or_create_project(ws, "north")
    n = len(mw.dashboard_panels())
    assert n == 6
    assert mw.ensure_dashboard(ws, project.id) == n
    assert mw.ensure_dashboard(ws, project.id) == 0
    model = ws.get_dashboard(project.id)
    assert len(model.panels) == n
    assert [t.title for t in model.tabs] == [mw.DASHBOARD_TAB]
    assert model.tabs[0].panels == [p.id for p in mw.dashboard_panels()]

    # A user's own panel in our tab survives; one of ours that a user deleted comes back, in its place.
    mine = text_panel("my notes")
    tab = model.tabs[0]
    tab.panels = [*tab.panels[1:], mine.id]
    ws.save_dashboard(project.id, DashboardModel(tabs=[tab], panels=[*model.panels[1:], mine]))
    assert mw.ensure_dashboard(ws, project.id) == 1
    model = ws.get_dashboard(project.id)
    assert model.tabs[0].panels == [*(p.id for p in mw.dashboard_panels()), mine.id]
    assert {p.title for p in model.panels} == {*(p.title for p in mw.dashboard_panels()), "my notes"}


def test_alert_flags_add_the_any_fault_column_and_refuse_bad_outputs() -> None:
    flags = _flags([[1, 0], [0, 0], [1, 1], [0, 1]])
    assert list(flags.columns) == [*FAULTS, mw.ANY_FAULT]
    assert flags[mw.ANY_FAULT].tolist() == [1.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="predictions: expected shape"):
        mw.alert_flags(np.zeros((3, 3)), FAULTS)
    with pytest.raises(ValueError, match="predictions: expected 0/1"):
        mw.alert_flags(np.full((3, 2), 0.7), FAULTS)
    with pytest.raises(ValueError, match="faults"):
        mw.alert_flags(np.zeros((3, 2)), ["leak", mw.ANY_FAULT])
    with pytest.raises(ValueError, match="current"):
        mw.alert_rate_snapshot(mw.alert_flags(np.zeros((0, 2)), FAULTS))


def test_a_check_is_one_snapshot_and_the_panels_plot_its_drift_share_and_alert_rate(
    tmp_path: Path, feature_result: Any
) -> None:
    ws = _workspace(tmp_path)
    project = mw.get_or_create_project(ws, "north")
    mw.ensure_dashboard(ws, project.id)
    # 10 windows: 3 flagged (one with both faults) -> alert rate 0.3, leak 0.2, blocked_inlet 0.2.
    current = _flags([[1, 0], [1, 1], [0, 1]] + [[0, 0]] * 7)
    reference = _flags([[0, 0]] * 9 + [[1, 0]])
    stamps = [datetime(2026, 12, 1, 10, 0), datetime(2026, 12, 1, 10, 5)]
    for i, stamp in enumerate(stamps):
        snap = mw.check_snapshot(
            feature_result.report,
            mw.alert_rate_snapshot(current if i else reference, reference),
            name=f"check {i}",
            metadata={"status": feature_result.status},
            tags=[feature_result.status],
            timestamp=stamp,
        )
        ws.add_run(project.id, snap)
    assert len(ws.list_runs(project.id)) == 2

    series = _series(tmp_path / "ws", project.id)
    assert series["Drift share over time|share"] == [0.5, 0.5]
    assert series["Drifted features per check|count"] == [2, 2]
    # First check: the reference's own rate (1 of 10); second: the current windows' (3 of 10).
    assert series["Alert rate over time|any_fault"] == pytest.approx([0.1, 0.3])
    assert series["Alert rate by fault|leak"] == pytest.approx([0.1, 0.2])
    assert series["Alert rate by fault|blocked_inlet"] == pytest.approx([0.0, 0.2])
    assert series["Drift share (latest check)|share"][-1] == 0.5

    stored = ws.get_run(project.id, ws.list_runs(project.id)[0])
    assert stored.tags == ["drift"] and stored.metadata == {"status": "drift"}
    kinds = [str(r.metric_value_location.metric.params["type"]) for r in stored.metric_results.values()]
    assert kinds.count("evidently:metric_v2:ValueDrift") == 4
    assert kinds.count("evidently:metric_v2:MeanValue") == 3


def test_the_same_metric_twice_is_refused(feature_result: Any) -> None:
    with pytest.raises(ValueError, match="alerts: metric ids"):
        mw.check_snapshot(feature_result.report, feature_result.report)


def test_without_widgets_keeps_every_value_and_drops_the_weight(tmp_path: Path, feature_result: Any) -> None:
    snap = mw.check_snapshot(feature_result.report, mw.alert_rate_snapshot(_flags([[1, 0], [0, 0]])))
    full = snap.to_snapshot_model()
    light = mw.without_widgets(full)
    assert light.widgets == [] and light.tests_widgets == []
    assert all(not r.widget for r in light.metric_results.values())
    assert {k: r.dict(exclude={"widget"}) for k, r in light.metric_results.items()} == {
        k: r.dict(exclude={"widget"}) for k, r in full.metric_results.items()
    }
    assert full.widgets  # the original is untouched
    size = len(json.dumps(light.dict(), default=str))
    assert size < len(json.dumps(full.dict(), default=str)) / 10


def test_age_out_strips_only_checks_beyond_the_newest_and_the_dashboard_keeps_every_point(
    tmp_path: Path, feature_result: Any
) -> None:
    ws = _workspace(tmp_path)
    project = mw.get_or_create_project(ws, "north")
    for i in range(4):
        alerts = mw.alert_rate_snapshot(_flags([[1, 0]] * i + [[0, 0]] * (4 - i)))
        snap = mw.check_snapshot(feature_result.report, alerts, timestamp=datetime(2026, 12, 1, 10, i))
        ws.add_run(project.id, snap)
    assert mw.age_out(ws, project.id, keep_full=2) == 2
    assert mw.age_out(ws, project.id, keep_full=2) == 0  # already stripped: nothing rewritten
    ids = sorted(ws.list_runs(project.id))
    assert [bool(ws.get_run(project.id, i).widgets) for i in ids] == [False, False, True, True]
    # The stripped checks still feed the dashboard: 0, 1, 2, 3 of 4 windows flagged.
    series = _series(tmp_path / "ws", project.id)
    assert series["Alert rate over time|any_fault"] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    with pytest.raises(ValueError, match="keep_full"):
        mw.age_out(ws, project.id, keep_full=0)
