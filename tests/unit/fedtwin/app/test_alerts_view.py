"""Alert rows as a person reads them, from hand-made stream entries."""

from __future__ import annotations

import json
import time

from fedtwin.app.alerts_view import alert_rows, format_alert


def _alert(kind: str = "raise", **extra: object) -> dict:
    return {
        "v": 1,
        "asset": "pump-1",
        "kind": kind,
        "faults": ["leak", "bearing"],
        "scores": {"leak": 0.5, "bearing": 0.875, "blocked_inlet": 0.0},
        "window_start": 99.0,
        "window_end": 100.0,
        "model_version": 7,
        **extra,
    }


def test_format_alert_cells() -> None:
    row = format_alert("1-0", _alert())
    assert row.cells[0] == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(100.0))
    scores = "bearing=0.88, leak=0.50, blocked_inlet=0.00"
    assert row.cells[1:] == ("pump-1", "raise", "leak+bearing", scores, "v7")
    assert row.kind == "raise"
    assert row.raw_id == "1-0"


def test_clear_without_faults_shows_a_dash() -> None:
    assert format_alert("2-0", _alert("clear", faults=[])).cells[3] == "-"


def test_rows_skip_and_count_entries_that_are_not_alerts() -> None:
    entries = [
        (b"1-0", {b"alert": json.dumps(_alert()).encode()}),
        (b"2-0", {b"other": b"x"}),
        (b"3-0", {b"alert": b"not json"}),
        (b"4-0", {b"alert": json.dumps(_alert("clear")).encode()}),
    ]
    rows, bad = alert_rows(entries)
    assert [r.raw_id for r in rows] == ["1-0", "4-0"]
    assert bad == 2
