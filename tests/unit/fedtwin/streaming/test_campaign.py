"""Campaign files: validation with one-line errors (exit 2), the standard exam's coverage, the schedule."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedtwin.streaming.campaign import FAULTS, CampaignError, Schedule, load_campaign, parse_campaign
from tests._cli import run_cli

STANDARD = Path(__file__).resolve().parents[4] / "campaigns" / "standard.yaml"
BASE = {"name": "t", "assets": 2, "duration_s": 10}


def test_standard_campaign_covers_every_fault_and_two_operating_points() -> None:
    spec = load_campaign(STANDARD)
    assert spec.faults_covered() == set(FAULTS)
    assert len(spec.operating_points()) >= 1  # plus the nominal one every asset starts at
    # Every fault is injected at the second operating point too (exam-4 and exam-5 run there).
    moved = {ev.asset for ev in spec.events if ev.operating_point is not None and ev.at <= 5}
    at_second = {ev.fault for ev in spec.events if ev.asset in moved and ev.fault is not None}
    assert {"leak", "bearing", "blocked_inlet"} <= at_second
    # One pump never gets a fault: the false-alarm reference.
    faulted = {ev.asset for ev in spec.events if ev.fault is not None}
    assert set(spec.asset_names) - faulted


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"events": [{"at": 1, "asset": "exam-1", "fault": "rust", "severity": 0.5}]},
            "unknown fault 'rust'",
        ),
        ({"events": [{"at": 1, "asset": "exam-1", "fault": "leak"}]}, "needs a severity"),
        ({"events": [{"at": 1, "asset": "exam-1", "fault": "leak", "severity": 2}]}, "events.0.severity"),
        (
            {"events": [{"at": 1, "asset": "exam-9", "clear": True}]},
            "'exam-9' is not in the campaign's fleet",
        ),
        ({"events": [{"at": 10, "asset": "exam-1", "clear": True}]}, "not before duration_s"),
        (
            {"events": [{"at": 1, "asset": "exam-1", "clear": True, "fault": "leak", "severity": 1}]},
            "exactly one",
        ),
        (
            {"events": [{"at": 1, "asset": "exam-1", "operating_point": {"speed_rpm": 9000}}]},
            "events.0.operating_point.speed_rpm",
        ),
        ({"events": [{"at": 1, "asset": "exam-1", "operating_point": {}}]}, "speed_rpm and/or"),
        ({"events": [{"at": 1, "asset": "exam-1", "sensor": {"stuck": "vibes"}}]}, "unknown sensor 'vibes'"),
        (
            {"events": [{"at": 1, "asset": "exam-1", "sensor": {"drift_rate": 1}}]},
            "drift_rate goes with drift",
        ),
        ({"duration_s": -1}, "duration_s"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_campaign_is_one_line_naming_the_field(change: dict, message: str) -> None:
    with pytest.raises(CampaignError) as err:
        parse_campaign({**BASE, **change}, "c.yaml")
    text = str(err.value)
    assert message in text and text.startswith("c.yaml: ") and "\n" not in text


def test_cli_exits_2_with_one_line_on_an_invalid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nduration_s: 5\nevents:\n  - {at: 1, asset: exam-1, fault: rust, severity: 1}\n")
    assert run_cli(monkeypatch, "campaign", "run", str(bad)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown fault 'rust'" in err
    (tmp_path / "notyaml.yaml").write_text("name: [unclosed\n")
    assert run_cli(monkeypatch, "campaign", "check", str(tmp_path / "notyaml.yaml")) == 2
    assert run_cli(monkeypatch, "campaign", "check", str(tmp_path / "missing.yaml")) == 2
    assert run_cli(monkeypatch, "campaign", "check", str(STANDARD)) == 0
    assert "campaign standard" in capsys.readouterr().out


def test_schedule_hands_out_events_once_in_time_order() -> None:
    spec = parse_campaign(
        {
            **BASE,
            "events": [
                {"at": 5, "asset": "exam-1", "clear": True},
                {"at": 0.3, "asset": "exam-2", "fault": "leak", "severity": 0.4},
                {"at": 0.3, "asset": "exam-2", "fault": "bearing", "severity": 0.4},
            ],
        }
    )
    sched = Schedule(spec.events)
    assert sched.due(0.0) == []
    # 3 ticks of 0.1 s: 0.30000000000000004 vs at=0.3 still falls on that chunk; same-time events keep order.
    assert [e.fault for e in sched.due(3 * 0.1)] == ["leak", "bearing"]
    assert sched.due(4.9) == [] and not sched.done
    assert [e.clear for e in sched.due(5.0)] == [True] and sched.done
    assert sched.due(9.9) == []


def test_sensor_faults_reach_the_fleet_but_not_the_labels() -> None:
    from fedtwin.data.schema import truth_record
    from fedtwin.streaming.live import conditions_from_control
    from fedtwin.training.live_eval import parse_truth

    # Control codes: 1 + index in (pressure, flow, speed, current): stuck current, flow drifting at 0.05/s.
    cond = conditions_from_control(
        {"leak": 0.5, "sensor_stuck": 4.0, "sensor_drift": 2.0, "sensor_drift_rate": 0.05}
    )
    assert (cond.faults.stuck_signal, cond.faults.drift_signal, cond.faults.drift_rate) == (
        "current",
        "flow",
        0.05,
    )
    assert cond.sensor() == {"stuck": "current", "drift": "flow", "drift_rate": 0.05}
    rec = truth_record("p", cond.severities, 7, 1.0, sensor=cond.sensor())
    assert parse_truth(rec).active == {"leak"}  # the lying sensors are no label
    repaired = conditions_from_control({"sensor_stuck": 0.0, "sensor_drift": 0.0, "sensor_drift_rate": 0.05})
    assert repaired.sensor() is None and repaired.faults.drift_rate == 0.0
    assert conditions_from_control({"sensor_stuck": 9.0}).sensor() is None  # an unknown code: no fault
