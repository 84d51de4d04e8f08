"""The live plant's pure parts: control-hash parsing, control -> plant conditions, input checks made before
any service is touched, pacing. The Redis and Kafka paths are in tests/integration/test_streaming.py."""

from __future__ import annotations

import logging
import math

import pytest

from fedtwin.errors import FedtwinError
from fedtwin.settings import Settings
from fedtwin.streaming import live
from plant_models import LEAK_MAX, Faults, OperatingPoint

# Nothing listens on port 1: a check that reached Redis would fail with "cannot write plant control".
NO_REDIS = Settings(redis_url="redis://127.0.0.1:1/0")


def test_parse_control_keeps_known_finite_numbers_and_warns_about_bad_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = {
        b"leak": b"0.6",
        b"rev": b"3",
        b"speed_rpm": b"900",
        b"requested_at": b"1764220800.5",  # bookkeeping, not a control
        b"colour": b"red",
        b"bearing": b"high",
        b"blocked_inlet": b"nan",
    }
    with caplog.at_level(logging.WARNING, logger="fedtwin.streaming.live"):
        assert live._parse_control(raw) == {"leak": 0.6, "rev": 3.0, "speed_rpm": 900.0}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "bearing=b'high'" in warned and "blocked_inlet=b'nan'" in warned and "colour" not in warned


def test_conditions_from_control_clips_severities_and_maps_them_to_fault_parameters() -> None:
    cond = live.conditions_from_control(
        {"leak": 1.7, "bearing": -0.2, "blocked_inlet": 0.5, "speed_rpm": 900.0, "rev": 4.0}
    )
    assert cond.severities == {"leak": 1.0, "blocked_inlet": 0.5, "bearing": 0.0}
    # Clipped severities go through the plant's own mapping: leak 1 is LEAK_MAX; the inlet's 0.1..1 spans the
    # accuracy study's 0.8..0.53, so 0.5 is 0.8 - (0.5 - 0.1) / 0.9 * 0.27 = 0.68.
    assert cond.faults == Faults.from_severity(leak=1.0, blocked_inlet=0.5, bearing=0.0)
    assert cond.faults.leak == LEAK_MAX
    assert cond.faults.inlet_area_factor == pytest.approx(0.68)
    assert cond.op == OperatingPoint(speed_rpm=900.0, load_area_factor=1.0)
    assert cond.op_fields == {"speed_rpm": 900.0}
    assert live.conditions_from_control({}).faults == Faults()  # an empty hash is a healthy nominal pump


def test_conditions_from_control_refuses_an_operating_point_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"load_area_factor=9\.0 is outside its valid range \[0\.2, 5\]"):
        live.conditions_from_control({"load_area_factor": 9.0})


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda: live.inject(NO_REDIS, "pump-1", "rust", 0.5), "unknown fault 'rust': expected one of leak"),
        (lambda: live.inject(NO_REDIS, "pump-1", "leak", 1.5), "severity must be in [0, 1], got 1.5"),
        (lambda: live.inject(NO_REDIS, "pump-1", "leak", math.nan), "severity must be in [0, 1], got nan"),
        (
            lambda: live.inject(NO_REDIS, "pump-1", "leak", "0.5"),  # type: ignore[arg-type]
            "severity must be in [0, 1], got '0.5'",
        ),
        (lambda: live.set_operating_point(NO_REDIS, "pump-1"), "give speed_rpm and/or load_area_factor"),
        (lambda: live.set_operating_point(NO_REDIS, "pump-1", speed_rpm=0.0), "speed_rpm=0.0 is outside"),
        (lambda: live.run_plant(NO_REDIS, assets=[]), "no assets to simulate"),
    ],
)
def test_bad_requests_are_refused_before_any_service_is_touched(call, needle: str) -> None:
    with pytest.raises(FedtwinError) as info:
        call()
    assert needle in str(info.value)


def test_unreachable_redis_is_one_clear_error() -> None:
    with pytest.raises(
        FedtwinError, match=r"cannot write plant control to Redis at redis://127\.0\.0\.1:1/0"
    ):
        live.clear(NO_REDIS, "pump-1")


def test_pace_delay_spreads_chunks_over_wall_time() -> None:
    # Chunk 10 of 0.1 s at 2x real time is due 0.5 s after the start.
    assert live.pace_delay(100.0, 10, 0.1, 2.0, now=100.2) == pytest.approx(0.3)
    assert live.pace_delay(100.0, 10, 0.1, 2.0, now=100.7) == pytest.approx(-0.2)  # behind: no wait


def test_asset_ids() -> None:
    assert live.asset_ids(3) == ["pump-1", "pump-2", "pump-3"]
