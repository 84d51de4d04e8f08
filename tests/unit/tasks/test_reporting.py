"""The training run's markdown report and the MLflow comparison table, checked as text."""

from __future__ import annotations

from fedtwin.adapters.tracking import comparison_markdown
from tasks.reporting import training_report

METRICS = ("exact_match_8class", "fault_detection_acc", "false_alarm_rate")


def test_comparison_table_marks_the_winner_and_keeps_order() -> None:
    rows = {
        "fedavg": {"exact_match_8class": 0.5, "fault_detection_acc": 0.75, "false_alarm_rate": 0.0},
        "fedadam": {"exact_match_8class": 0.875, "fault_detection_acc": 1.0, "false_alarm_rate": 0.125},
    }
    lines = comparison_markdown(rows, METRICS, "fedadam").splitlines()
    assert lines[0] == "| strategy | exact_match_8class | fault_detection_acc | false_alarm_rate |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| fedavg | 0.5000 | 0.7500 | 0.0000 |"
    assert lines[3] == "| **fedadam** (winner) | 0.8750 | 1.0000 | 0.1250 |"


def _result(promoted: bool, served: int | None) -> dict:
    return {
        "best": "fedadam",
        "champion_exact_match": 0.25,
        "redis_version": served,
        "mlflow_run_url": "http://127.0.0.1:5000/#/experiments/1/runs/abc",
        "registry": {
            "name": "pump",
            "version": 3,
            "promoted": promoted,
            "previous_champion": 2,
            "url": "http://127.0.0.1:5000/#/models/pump/versions/3",
        },
    }


def test_report_says_who_won_what_moved_and_where_to_look() -> None:
    metrics = {"fedadam": {"exact_match_8class": 0.5, "fault_detection_acc": 1.0, "false_alarm_rate": 0.0}}
    text = training_report(_result(True, 7), metrics)
    assert text.startswith("## Training: fedadam won")
    assert "registered **pump v3**; champion moved to this version" in text
    assert "(champion's exact match on this sweep: 0.2500)" in text
    assert "Redis serving version: 7" in text
    assert "[this training's runs](http://127.0.0.1:5000/#/experiments/1/runs/abc)" in text
    kept = training_report(_result(False, None), metrics)
    assert "champion kept (v2)" in kept
    assert "Redis serving version: unchanged" in kept


def test_training_view_lists_this_trainings_runs_best_first() -> None:
    from fedtwin.adapters.tracking import training_view_state

    state = training_view_state("abc123", METRICS)
    assert state["searchFilter"] == "tags.mlflow.parentRunId = 'abc123'"
    assert state["orderByKey"] == "metrics.`exact_match_8class`"
    assert state["orderByAsc"] is False
    assert state["selectedColumns"][:3] == [
        "metrics.`exact_match_8class`",
        "metrics.`fault_detection_acc`",
        "metrics.`false_alarm_rate`",
    ]
