"""Drift history (JSON lines) and the static dashboard page."""

import json
from datetime import datetime, timedelta

from monitoring.dashboard import append_history, load_history, render_dashboard
from monitoring.detectors import DriftResult


def result(status: str, share: float, features: list[str], html_path: str | None = None) -> DriftResult:
    return DriftResult(
        status=status,  # type: ignore[arg-type]
        reason=f"{len(features)} drifted",
        drifted_features=features,
        drift_share=share,
        per_feature={f"f{i}": 0.5 for i in range(4)},
        n_reference=200,
        n_current=100,
        html_path=html_path,
        json_path=None if html_path is None else html_path.replace(".html", ".json"),
    )


def test_append_and_load(tmp_path) -> None:
    history = tmp_path / "sub" / "history.jsonl"
    record = append_history(history, result("no_drift", 0.25, ["f1"]), datetime(2026, 1, 1, 12), window="w1")
    assert record["timestamp"] == "2026-01-01T12:00:00+00:00" and record["window"] == "w1"
    append_history(history, result("drift", 0.75, ["f0", "f1", "f2"]), "2026-01-01T12:05:00+00:00")
    with history.open("a") as fh:
        fh.write('{"broken": \n')  # a crashed writer's half line is skipped
    records = load_history(history)
    assert [r["status"] for r in records] == ["no_drift", "drift"]
    assert records[1]["n_drifted"] == 3 and records[1]["n_compared"] == 4
    assert json.loads(history.read_text().splitlines()[0])["drift_share"] == 0.25


def test_render_html_with_links_and_png(tmp_path) -> None:
    history = tmp_path / "history.jsonl"
    reports = tmp_path / "reports"
    reports.mkdir()
    start = datetime(2026, 1, 1)
    statuses = ["no_drift", "no_drift", "not_enough_data", "drift", "invalid_data", "drift"]
    for i, status in enumerate(statuses):
        report = str(reports / f"drift-{i}.html") if status == "drift" else None
        share = 0.75 if status == "drift" else 0.0
        append_history(
            history, result(status, share, ["f0"] if share else [], report), start + timedelta(minutes=i)
        )
    page = render_dashboard(history, tmp_path / "site" / "index.html")
    text = page.read_text()
    assert "data:image/png;base64," in text
    assert "Latest full report" in text and "../reports/drift-5.html" in text
    assert text.count("<tr>") == 1 + len(statuses)
    png = render_dashboard(history, tmp_path / "drift.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_empty_history(tmp_path) -> None:
    page = render_dashboard(tmp_path / "missing.jsonl", tmp_path / "index.html")
    assert "No drift checks recorded yet" in page.read_text()
