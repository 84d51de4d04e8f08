"""The truth join on a tiny stream, every expected figure worked out by hand (see the comments)."""

from __future__ import annotations

import json
import math

import pytest

from fedtwin.data.schema import SchemaError, truth_record
from fedtwin.training.live_eval import (
    Decision,
    Truth,
    comparison_markdown,
    evaluate,
    parse_decision,
    parse_truth,
)

# Chunks of 0.1 s from plant time 1000 s: chunk seq starts at t = 1000 + 0.1 * seq. A 1 s window is closed by
# chunk 9, 19, 29, ... and its decision carries that chunk's seq and t.
T0 = 1000.0


def _t(seq: int) -> float:
    return T0 + 0.1 * seq


def _truth() -> list[Truth]:
    # pump-1: healthy from chunk 0, leak from chunk 30 (t 1003), cleared from chunk 70 (t 1007).
    # pump-2: healthy throughout.
    return [
        Truth("pump-1", 0, _t(0), frozenset()),
        Truth("pump-1", 30, _t(30), frozenset({"leak"})),
        Truth("pump-1", 70, _t(70), frozenset()),
        Truth("pump-2", 0, _t(0), frozenset()),
    ]


def _d(model: str, version: int, role: str, asset: str, seq: int, *faults: str) -> Decision:
    return Decision(asset, model, version, role, seq, _t(seq), frozenset(faults))


def _decisions() -> list[Decision]:
    a = [  # champion "a v1"
        _d("a", 1, "champion", "pump-1", 9),
        _d("a", 1, "champion", "pump-1", 19),
        _d("a", 1, "champion", "pump-1", 29),
        _d("a", 1, "champion", "pump-1", 39, "leak"),  # 0.9 s after the change: settling; detects (delay 0.9)
        _d("a", 1, "champion", "pump-1", 49, "leak"),  # exact
        _d("a", 1, "champion", "pump-1", 59, "leak", "bearing"),  # wrong: an extra fault
        _d("a", 1, "champion", "pump-1", 69),  # wrong: misses the leak
        _d("a", 1, "champion", "pump-1", 79, "bearing"),  # settling after the clear: not counted
        _d("a", 1, "champion", "pump-1", 89, "bearing"),  # healthy: false alarm #1
        _d("a", 1, "champion", "pump-1", 99, "bearing"),  # same alarm continues: not a new one
        _d("a", 1, "champion", "pump-2", 9),
        _d("a", 1, "champion", "pump-2", 19),
        _d("a", 1, "champion", "pump-2", 29, "leak"),  # healthy: false alarm #2
        _d("a", 1, "champion", "pump-2", 39),
        _d("a", 1, "champion", "pump-2", 49),
    ]
    b = [_d("b", 2, "shadow", "pump-1", s) for s in range(9, 100, 10) if s != 49]
    b += [
        _d("b", 2, "shadow", "pump-1", 49),  # delivered twice: the last copy wins
        _d("b", 2, "shadow", "pump-1", 49, "leak"),
    ]
    return a + b


def test_truth_join_by_hand() -> None:
    res = evaluate(_decisions(), _truth(), window_s=1.0, faults=("leak", "bearing", "blocked_inlet"))
    a, b = res["a v1"], res["b v2"]
    # a: labelled windows outside settling: pump-1 seq 9,19,29,49,59,69,89,99 (8) + pump-2 9..49 (5) = 13.
    # Exact: pump-1 9,19,29,49 (4) + pump-2 9,19,39,49 (4) = 8.
    assert a["windows"] == 13 and a["settling_windows"] == 2 and a["unlabelled_windows"] == 0
    assert a["exact_match"] == pytest.approx(8 / 13)
    # leak decided in p1/49, p1/59, p2/29 (3), of which p1/49, p1/59 right; active in p1/49, 59, 69 (3).
    assert a["precision_leak"] == pytest.approx(2 / 3)
    assert a["recall_leak"] == pytest.approx(2 / 3)
    # bearing decided in p1/59, 89, 99 and never active: precision 0, recall undefined.
    assert a["precision_bearing"] == 0.0 and math.isnan(a["recall_bearing"])
    assert math.isnan(a["precision_blocked_inlet"]) and math.isnan(a["recall_blocked_inlet"])
    # Delay: leak took effect at chunk 30 (t 1003.0), first decision with it is chunk 39 (t 1003.9).
    assert a["onsets"] == 1 and a["missed_onsets"] == 0
    assert a["detection_delay_p50_s"] == pytest.approx(0.9)
    # Healthy windows: pump-1 9,19,29,89,99 + pump-2 five = 10 windows of 1 s = 1/360 h; 2 false alarms.
    assert a["healthy_hours"] == pytest.approx(10 / 3600)
    assert a["false_alarms"] == 2
    assert a["false_alarms_per_asset_hour"] == pytest.approx(720.0)
    assert a["faults_seen"] == 1 and a["is_champion"] == 1.0
    # b: healthy except leak at chunk 49 (t 1004.9): exact in 9,19,29,49,89,99 of the 8 windows.
    assert b["windows"] == 8 and b["exact_match"] == pytest.approx(6 / 8)
    assert b["detection_delay_p50_s"] == pytest.approx(1.9)
    assert b["false_alarms"] == 0 and b["false_alarms_per_asset_hour"] == 0.0
    assert b["recall_leak"] == pytest.approx(1 / 3) and b["precision_leak"] == 1.0
    assert b["is_champion"] == 0.0


def test_missed_onset_and_unlabelled_windows() -> None:
    truth = [Truth("p", 10, _t(10), frozenset()), Truth("p", 20, _t(20), frozenset({"bearing"}))]
    decisions = [_d("m", 1, "shadow", "p", s) for s in (9, 19, 29, 39)]  # never decides bearing
    res = evaluate(decisions, truth, window_s=1.0)["m v1"]
    # Chunk 9 precedes the first truth record: unlabelled. Chunk 19: healthy, exact. Chunk 29: 0.9 s after the
    # onset, settling. Chunk 39: bearing active, decided healthy.
    assert res["unlabelled_windows"] == 1 and res["settling_windows"] == 1 and res["windows"] == 2
    assert res["exact_match"] == 0.5
    assert res["onsets"] == 1 and res["missed_onsets"] == 1 and math.isnan(res["detection_delay_p50_s"])
    assert res["recall_bearing"] == 0.0


def test_severity_or_operating_point_change_is_not_a_transition() -> None:
    # Same active set in a new record (new severity / operating point): no settling window, no new onset.
    truth = [
        Truth("p", 0, _t(0), frozenset({"leak"})),
        Truth("p", 15, _t(15), frozenset({"leak"})),
    ]
    res = evaluate([_d("m", 1, "shadow", "p", s, "leak") for s in (9, 19)], truth, window_s=1.0)["m v1"]
    assert res["settling_windows"] == 0 and res["exact_match"] == 1.0
    assert res["onsets"] == 1 and res["detection_delay_p50_s"] == pytest.approx(0.9)


def test_parse_records_strictly() -> None:
    rec = {
        "v": 1,
        "asset": "pump-1",
        "model": "m",
        "version": 3,
        "role": "shadow",
        "seq": 9,
        "t": 1.5,
        "ts": 2.0,
        "faults": ["leak"],
        "scores": {"leak": 0.9},
    }
    d = parse_decision(json.dumps(rec).encode())
    assert (d.asset, d.label, d.seq, d.t, d.faults) == ("pump-1", "m v3", 9, 1.5, frozenset({"leak"}))
    for bad, msg in (
        ({**rec, "v": 2}, "v1 decision"),
        ({**rec, "role": "boss"}, "role"),
        ({**rec, "seq": "9"}, "wrong type"),
        ({**rec, "faults": "leak"}, "wrong type"),
        ({**rec, "t": True}, "wrong type"),
        ({**rec, "seq": -1}, ">= 0"),
    ):
        with pytest.raises(SchemaError, match=msg):
            parse_decision(json.dumps(bad))
    with pytest.raises(SchemaError, match="JSON"):
        parse_decision(b"{nope")
    t = parse_truth(truth_record("pump-2", {"leak": 0.0, "bearing": 0.4}, 12, 99.0))
    assert t == Truth("pump-2", 12, 99.0, frozenset({"bearing"}))


def test_comparison_markdown_lists_champion_first() -> None:
    res = evaluate(_decisions(), _truth(), window_s=1.0)
    text = comparison_markdown(res)
    rows = [line for line in text.splitlines() if line.startswith("| a v1") or line.startswith("| b v2")]
    assert rows[0].startswith("| a v1 | champion") and rows[1].startswith("| b v2 | shadow")
