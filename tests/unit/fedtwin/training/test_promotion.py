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


# The live gate: offline, the candidate (0.92) beats the champion (0.90) in every case below.
_OFFLINE_CAND, _OFFLINE_CHAMP = {GATE_METRIC: 0.92}, {GATE_METRIC: 0.90}
_LIVE_CHAMP = {
    "exact_match": 0.80,
    "false_alarms_per_asset_hour": 2.0,
    "detection_delay_p50_s": 1.5,
    "windows": 600,
    "faults_seen": 3,
}


def _live(**overrides: float) -> dict[str, float]:
    return {**_LIVE_CHAMP, **overrides}


def _promote(live_cand: dict[str, float] | None, require: bool = True) -> tuple[bool, str]:
    from fedtwin.training.promotion import should_promote

    return should_promote(
        _OFFLINE_CAND,
        _OFFLINE_CHAMP,
        live_candidate=live_cand,
        live_champion=_LIVE_CHAMP,
        require_live=require,
        min_windows=300,
        min_faults=3,
    )


def test_worse_challenger_live_is_not_promoted_even_if_it_wins_offline() -> None:
    ok, why = _promote(_live(exact_match=0.95, false_alarms_per_asset_hour=2.5))
    assert ok is False and "false alarms" in why
    ok, why = _promote(_live(exact_match=0.79, false_alarms_per_asset_hour=0.0))
    assert ok is False and "exact match" in why
    ok, _ = _promote(_live(exact_match=0.95, false_alarms_per_asset_hour=2.5), require=False)
    assert ok is True  # without the live gate the offline win is enough


def test_better_challenger_live_is_promoted() -> None:
    ok, why = _promote(_live(exact_match=0.85, false_alarms_per_asset_hour=1.0))
    assert ok is True and "0.8500" in why
    # Equal exact match and false alarms: only a shorter median detection delay passes.
    assert _promote(_live(detection_delay_p50_s=1.0))[0] is True
    assert _promote(_live())[0] is False


def test_live_gate_needs_enough_windows_and_faults() -> None:
    better = _live(exact_match=0.99, false_alarms_per_asset_hour=0.0)
    assert _promote({**better, "windows": 299})[0] is False
    assert _promote({**better, "faults_seen": 2})[0] is False
    assert _promote(None)[0] is False
    assert _promote({**better, "exact_match": math.nan})[0] is False  # a broken evaluation never wins


def test_live_gate_never_rescues_an_offline_loss() -> None:
    from fedtwin.training.promotion import should_promote

    better_live = _live(exact_match=0.99, false_alarms_per_asset_hour=0.0)
    ok, why = should_promote(
        _OFFLINE_CHAMP,
        _OFFLINE_CAND,
        live_candidate=better_live,
        live_champion=_LIVE_CHAMP,
        require_live=True,
        min_windows=0,
        min_faults=0,
    )
    assert ok is False and "offline" in why


def test_live_pair_finds_the_candidate_shadow_and_the_main_champion() -> None:
    from fedtwin.training.promotion import live_pair

    results = {
        "fedadam@v1": {"is_champion": 1.0, "windows": 500},
        "fedavg@v2": {"is_champion": 0.0, "windows": 500},
        "fedprox@v3": {"is_champion": 0.0, "windows": 480},
        "fedprox@v3 (as champion)": {"is_champion": 1.0, "windows": 20},
    }
    models = {
        "fedadam@v1": {"registry_version": 1},
        "fedavg@v2": {"registry_version": 2},
        "fedprox@v3": {"registry_version": 3},
        "fedprox@v3 (as champion)": {"registry_version": 3},
    }
    cand, champ = live_pair(results, models, 3)
    assert cand is results["fedprox@v3"] and champ is results["fedadam@v1"]
    assert live_pair(results, models, 9)[0] is None
    assert live_pair({}, {}, 1) == (None, None)
