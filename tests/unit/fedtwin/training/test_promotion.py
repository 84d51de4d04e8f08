"""The champion gate and the strategy pick, by hand."""

from __future__ import annotations

import math

import pytest

from fedtwin.training.promotion import GATE_METRIC, HEADLINE_METRICS, best_strategy, is_better


def test_no_champion_any_finite_candidate_wins() -> None:
    assert is_better({GATE_METRIC: 0.1}, None) is True


def test_no_champion_a_broken_evaluation_does_not_win() -> None:
    assert is_better({GATE_METRIC: math.nan}, None) is False
    assert is_better({}, None) is False


@pytest.mark.parametrize(
    ("cand", "champ", "expected"),
    [
        (0.80, 0.79, True),  # strictly higher wins
        (0.79, 0.80, False),  # lower loses
        (0.80, math.nan, True),  # a champion whose score cannot be computed is beaten
        (math.nan, 0.10, False),  # and a candidate's NaN never wins
    ],
)
def test_gate_metric_decides(cand: float, champ: float, expected: bool) -> None:
    assert is_better({GATE_METRIC: cand}, {GATE_METRIC: champ}) is expected


def test_tie_goes_to_fewer_false_alarms_only() -> None:
    champ = {GATE_METRIC: 0.8, "false_alarm_rate": 0.02}
    assert is_better({GATE_METRIC: 0.8, "false_alarm_rate": 0.01}, champ) is True
    assert is_better({GATE_METRIC: 0.8, "false_alarm_rate": 0.02}, champ) is False  # equal: no churn
    assert is_better({GATE_METRIC: 0.8}, champ) is False  # unknown false alarms count as 1.0


def test_gate_on_another_metric() -> None:
    assert is_better({"m": 2.0, GATE_METRIC: 0.0}, {"m": 1.0, GATE_METRIC: 1.0}, metric="m") is True


def test_best_strategy_is_the_highest_first_on_ties() -> None:
    reports = {"fedavg": {GATE_METRIC: 0.7}, "fedadam": {GATE_METRIC: 0.9}, "krum": {GATE_METRIC: 0.9}}
    assert best_strategy(reports) == "fedadam"
    assert best_strategy({"a": {GATE_METRIC: math.nan}, "b": {GATE_METRIC: 0.0}}) == "b"


def test_best_strategy_of_nothing_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no strategy"):
        best_strategy({})


def test_headline_metric_is_the_gate_metric() -> None:
    assert HEADLINE_METRICS[0] == GATE_METRIC
