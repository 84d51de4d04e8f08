"""The monitoring UIs on real servers: ``fedtwin stack`` starts and stops the Evidently UI on the drift
workspace and Prometheus on the shipped files; the UI serves the dashboard series of checks recorded while it
runs; promtool accepts the shipped config and rules; Prometheus scrapes a real scorer metrics endpoint and
evaluates the rules on it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fedtwin.adapters import stack
from fedtwin.settings import Settings
from monitoring import prometheus as prom
from monitoring.workspace import dashboard_panels

pytestmark = pytest.mark.integration

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed (Debian: apt-get install prometheus)"
)
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="the prometheus server is not installed (Debian: apt-get install prometheus)",
)


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(state_dir=tmp_path / "stack", evidently_workspace=tmp_path / "evidently", **kw)


def _get(url: str, data: dict[str, Any] | None = None) -> Any:
    body = None if data is None else json.dumps(data).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def _until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout_s:.0f} s; last answer {last!r}")


def _record_check(settings: Settings, fleet: str, shift: float, alert_rows: int) -> None:
    """What the monitor's tasks do for one check: Evidently drift report + alert rate -> the workspace."""
    from evidently.ui.workspace import Workspace

    from monitoring import workspace as mw
    from monitoring.drift import EvidentlyDriftDetector

    rng = np.random.default_rng(int(shift * 10))
    cols = ["a", "b", "c", "d"]
    ref = pd.DataFrame(rng.normal(size=(100, 4)), columns=cols)
    cur = pd.DataFrame(rng.normal(size=(100, 4)), columns=cols)
    cur[["a", "b", "c"]] += shift
    feature = EvidentlyDriftDetector().fit(ref).check(cur)
    flags = np.zeros((100, 2))
    flags[:alert_rows, 0] = 1.0
    alerts = mw.alert_rate_snapshot(mw.alert_flags(flags, ["leak", "blocked_inlet"]))
    ws = Workspace(str(settings.evidently_workspace.resolve()))
    project = mw.get_or_create_project(ws, fleet)
    mw.ensure_dashboard(ws, project.id)
    ws.add_run(project.id, mw.check_snapshot(feature.report, alerts, tags=[feature.status]))


def test_stack_serves_the_evidently_dashboard_of_checks_recorded_while_it_runs(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{stack.free_port()}"
    s = _settings(tmp_path, evidently_ui_url=url)
    lines: list[str] = []
    stack.up(s, ("evidently",), echo=lines.append)
    try:
        assert lines[-1] == f"evidently: healthy at {url}"
        status = {x.name: x for x in stack.status(s)}["evidently"]
        assert status.reachable and status.started_by_fedtwin
        _record_check(s, "north", shift=0.0, alert_rows=5)
        _record_check(s, "north", shift=3.0, alert_rows=20)
        projects = _get(f"{url}/api/projects")
        assert [p["name"] for p in projects] == ["north"]
        pid = projects[0]["id"]
        panels = {p.title: p.values[0] for p in dashboard_panels()}
        filters = [
            {"tags": [], "metadata": {}, "metric": v.metric, "metric_labels": v.metric_labels}
            for v in (panels["Drift share over time"], panels["Alert rate over time"])
        ]
        # In check order: 3 of 4 features shifted in the second; 5 then 20 of 100 windows flagged.
        series = _get(f"{url}/api/v2/snapshots/{pid}/data_series_batch", {"series_filter": filters})
        values = {s_["metric_type"].rsplit(":", 1)[1]: s_["values"] for s_ in series["series"]}
        assert values["DriftedColumnsCount"][1] == pytest.approx(0.75)
        assert values["MeanValue"] == pytest.approx([0.05, 0.2])
    finally:
        stack.down(s, echo=lines.append)
    assert any(line.startswith("evidently: stopped") for line in lines)
    assert not stack._http_ok(url + "/api/version")


def test_stack_skips_prometheus_with_one_line_when_it_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    s = _settings(tmp_path, prometheus_url=f"http://127.0.0.1:{stack.free_port()}")
    lines: list[str] = []
    stack.up(s, ("prometheus",), echo=lines.append)
    assert lines == [
        "prometheus: skipped, the prometheus binary is not installed (Debian: apt-get install prometheus)"
    ]


@needs_promtool
def test_promtool_accepts_the_shipped_and_the_rendered_config_and_the_rules(tmp_path: Path) -> None:
    rendered = tmp_path / "prometheus.yml"
    rendered.write_text(prom.render_config("127.0.0.1:39108"))
    for args in (
        ["check", "config", str(prom.CONFIG_FILE)],
        ["check", "config", str(rendered)],
        ["check", "rules", str(prom.RULES_FILE)],
    ):
        out = subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 5 rules found" in out.stdout


@needs_prometheus
def test_stack_prometheus_scrapes_a_scorer_and_flags_that_it_serves_no_model(tmp_path: Path) -> None:
    from monitoring.metrics import ScorerMetrics

    metrics = ScorerMetrics()
    scorer_port = stack.free_port()
    metrics.serve(scorer_port)
    url = f"http://127.0.0.1:{stack.free_port()}"
    s = _settings(tmp_path, prometheus_url=url, scorer_metrics_port=scorer_port)
    lines: list[str] = []
    try:
        stack.up(s, ("prometheus",), echo=lines.append)
        assert lines[-1] == f"prometheus: healthy at {url}"
        assert f"127.0.0.1:{scorer_port}" in (s.state_dir / "prometheus.yml").read_text()

        def target_up() -> bool:
            targets = _get(f"{url}/api/v1/targets")["data"]["activeTargets"]
            return any(t["labels"]["job"] == prom.SCORER_JOB and t["health"] == "up" for t in targets)

        _until(target_up, 40, "the scorer target is up in Prometheus")

        def alert_state(name: str) -> str | None:
            alerts = _get(f"{url}/api/v1/alerts")["data"]["alerts"]
            return next((a["state"] for a in alerts if a["labels"]["alertname"] == name), None)

        # The scorer has loaded no model yet (version gauge 0): the no-model rule goes pending.
        _until(lambda: alert_state("FedtwinNoModelServed"), 40, "FedtwinNoModelServed is pending")
        assert alert_state("FedtwinScorerDown") is None
    finally:
        metrics.shutdown()
        stack.down(s, echo=lines.append)
    assert any(line.startswith("prometheus: stopped") for line in lines)
    assert not stack._http_ok(url + "/-/ready")
