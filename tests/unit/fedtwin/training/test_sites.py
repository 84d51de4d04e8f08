"""Site side of a remote call (fedtwin.training.sites) and the coordinator's reading of a site's stored
result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from federated import codec
from federated.executor import SiteCall
from fedtwin.data.datasets import load_windows, save_windows
from fedtwin.errors import DataValidationError, FedtwinError
from fedtwin.training.site_executor import SiteRunError, read_result_record
from fedtwin.training.sites import DatasetSpec, answer, parse_request, request_payload, site_windows

SPEC = DatasetSpec("demo", 958.0, 1.0)


def test_request_round_trip_carries_args_and_dataset() -> None:
    call = SiteCall("leak-site0", "stats", 0, {"params": [np.ones((2, 2))], "model": {"n": 3}})
    got, spec = parse_request("leak-site0", "stats", 0, request_payload(call, SPEC))
    assert spec == SPEC and got.site == "leak-site0" and got.op == "stats" and got.server_round == 0
    np.testing.assert_array_equal(got.args["params"][0], np.ones((2, 2)))
    assert got.args["model"] == {"n": 3}


@pytest.mark.parametrize(
    ("op", "rnd", "body", "reason"),
    [
        ("rm -rf", 0, {"v": 1, "args": {}, "dataset": SPEC.to_plain()}, "unknown site operation"),
        ("gram", -1, {"v": 1, "args": {}, "dataset": SPEC.to_plain()}, "non-negative"),
        ("gram", 0, {"v": 2, "args": {}, "dataset": SPEC.to_plain()}, "payload must be"),
        (
            "gram",
            0,
            {"v": 1, "args": {}, "dataset": {**SPEC.to_plain(), "profile": "huge"}},
            "unknown training",
        ),
        ("gram", 0, {"v": 1, "args": {}, "dataset": {**SPEC.to_plain(), "speed_rpm": 1e9}}, "out of range"),
        ("gram", 0, {"v": 1, "args": {}, "dataset": {**SPEC.to_plain(), "path": "/etc"}}, "exactly"),
    ],
)
def test_parse_request_refuses_bad_requests(op: str, rnd: int, body: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_request("leak-site0", op, rnd, codec.encode(body))


def test_dataset_key_names_profile_operating_point_and_seed() -> None:
    assert SPEC.key.startswith("demo-958rpm-1load-seed")


def _stored(value: object) -> bytes:
    # What Prefect's JSONSerializer writes for a flow that returned the str ``value``.
    return json.dumps(value).encode()


def test_read_result_accepts_a_json_stored_codec_payload() -> None:
    payload = codec.encode({"count": np.array(3.0), "reason": None})
    out = read_result_record(_stored(payload), "json")
    assert float(out["count"]) == 3.0 and out["reason"] is None


def test_read_result_accepts_a_whole_record_too() -> None:
    record = {"metadata": {"serializer": {"type": "json"}}, "result": json.dumps(codec.encode([1, 2]))}
    assert read_result_record(json.dumps(record).encode(), "json") == [1, 2]


@pytest.mark.parametrize(
    ("raw", "serializer", "reason"),
    [
        (None, "json", "not found"),
        (b"\x80\x04K\x01.", "pickle", "refusing"),  # a pickle: never loaded
        (_stored(codec.encode(1)), "pickle", "refusing"),
        (b"{not json", "json", "not JSON"),
        (_stored({"a": 1}), "json", "not a site payload"),
        (_stored('{"$nd": ["|O", [1], ""]}'), "json", "invalid site result"),
        (
            json.dumps({"metadata": {"serializer": {"type": "pickle"}}, "result": "x"}).encode(),
            "json",
            "refusing",
        ),
    ],
)
def test_read_result_refuses_anything_else(raw: bytes | None, serializer: str, reason: str) -> None:
    with pytest.raises(SiteRunError, match=reason):
        read_result_record(raw, serializer)


def test_site_settings_are_checked_when_settings_load() -> None:
    from pydantic import ValidationError

    from fedtwin.settings import Settings

    with pytest.raises(ValidationError, match="site_executor"):
        Settings(site_executor="sites")
    with pytest.raises(ValidationError, match="site_timeout_s"):
        Settings(site_timeout_s=0)
    with pytest.raises(ValidationError, match="site_pickup_timeout_s"):
        Settings(site_pickup_timeout_s=-1)
    assert Settings().site_pickup_timeout_s == 30.0
    assert Settings().site_executor == "in_process"


@pytest.mark.parametrize(
    ("site", "reason"), [("../etc", "invalid site id"), ("nosuch-site0", "not in profile")]
)
def test_a_site_refuses_ids_it_cannot_hold(tmp_path: Path, site: str, reason: str) -> None:
    with pytest.raises((ValueError, FedtwinError), match=reason):
        site_windows(site, SPEC, tmp_path)


def test_a_site_answers_from_its_own_directory_and_validates_each_file_once(tmp_path: Path) -> None:
    from fedtwin.data.features import FEATURE_NAMES
    from fedtwin.training.recipe import PUMP_BASELINE

    site = "leak-site0"
    call = SiteCall(site, "gram", 0, {"feature_names": list(FEATURE_NAMES), "spec": PUMP_BASELINE.to_json()})
    out = codec.decode(answer(site, "gram", 0, request_payload(call, SPEC), tmp_path))
    assert set(out) == {"gram", "cross", "count"} and float(out["count"]) > 0  # sums, not rows
    path = tmp_path / SPEC.key / f"{site}.npz"
    marker = path.with_suffix(".valid.json")
    assert path.exists() and marker.exists()
    first = marker.stat().st_mtime_ns
    site_windows(site, SPEC, tmp_path)
    assert marker.stat().st_mtime_ns == first  # same file: not validated again
    lw = load_windows(path)
    save_windows(
        type(lw)(
            lw.X * np.nan, *[getattr(lw, f) for f in ("Y", "severity", "speed_rpm", "load", "scenario_id")]
        ),
        path,
    )
    with pytest.raises(DataValidationError, match="leak-site0"):
        site_windows(site, SPEC, tmp_path)  # a changed file is validated again, and this one fails
