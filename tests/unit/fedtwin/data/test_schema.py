"""Sensor message v1: round trip, every rejection reason and every limit on both sides; no services needed."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from fedtwin.data import schema
from fedtwin.data.schema import (
    MAX_ASSET_LEN,
    MAX_SAMPLES,
    MAX_SEQ,
    PHYSICAL_RANGES,
    SIGNALS,
    SchemaError,
    decode_alert,
    decode_chunk,
    dlq_record,
    dumps,
    encode_alert,
    encode_chunk,
    loads,
    truth_record,
)


def _signals(n: int = 100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {s: rng.normal(10.0, 1.0, n) for s in SIGNALS}


def _msg(**over: object) -> dict:
    base = json.loads(encode_chunk("pump-1", 3, 1_700_000_000.5, 1000.0, _signals(5)))
    base.update(over)
    return base


def _raw(**over: object) -> bytes:
    return json.dumps(_msg(**over)).encode()


def _reason(raw: bytes | None) -> str:
    with pytest.raises(SchemaError) as exc:
        decode_chunk(raw)
    assert str(exc.value) == exc.value.reason  # the DLQ reason is the message
    return exc.value.reason


@pytest.fixture(params=["orjson", "json"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with orjson (when installed) and with the standard-library fallback."""
    if request.param == "json":
        monkeypatch.setattr(schema, "_orjson", None)
    elif schema._orjson is None:  # pragma: no cover - orjson is a dependency
        pytest.skip("orjson not installed")
    return str(request.param)


def test_round_trip_keeps_values_and_header(parser: str) -> None:
    sig = _signals()
    chunk = decode_chunk(encode_chunk("pump-1", 7, 1_700_000_000.25, 1000.0, sig))
    assert (chunk.asset, chunk.seq, chunk.t0, chunk.fs, chunk.n) == (
        "pump-1",
        7,
        1_700_000_000.25,
        1000.0,
        100,
    )
    for s in SIGNALS:
        assert chunk.signals[s].dtype == np.float64
        np.testing.assert_array_equal(chunk.signals[s], sig[s])
    # 100 samples at 1 kHz: the chunk ends 0.1 s after t0
    assert chunk.t_end == pytest.approx(1_700_000_000.35, abs=1e-6)


def test_memoryview_and_bytearray_decode_like_bytes() -> None:
    raw = encode_chunk("a", 0, 0.0, 1000.0, _signals(3))
    assert (
        decode_chunk(memoryview(raw)).signals["flow"].tolist() == decode_chunk(raw).signals["flow"].tolist()
    )
    assert decode_chunk(bytearray(raw)).asset == "a"


def test_decimals_rounds_samples() -> None:
    sig = {s: np.array([1.23456, 2.5]) for s in SIGNALS}
    assert decode_chunk(encode_chunk("a", 0, 0.0, 1000.0, sig, decimals=2)).signals["flow"].tolist() == [
        1.23,
        2.5,
    ]
    assert decode_chunk(encode_chunk("a", 0, 0.0, 1000.0, sig)).signals["flow"].tolist() == [1.23456, 2.5]


def test_integers_and_extra_fields_are_accepted() -> None:
    m = _msg(pressure=[1, 2, 3, 4, 5], extra="ignored")
    assert decode_chunk(json.dumps(m).encode()).signals["pressure"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object, got list"),
        (None, "empty message (null value)"),
        (_raw(v=2), "unsupported schema version 2 (expected 1)"),
        (_raw(v=True), "unsupported schema version True"),
        (_raw(v=1.0), "unsupported schema version 1.0 (expected 1)"),
        (json.dumps({k: v for k, v in _msg().items() if k != "asset"}).encode(), "'asset' must be"),
        (_raw(asset=""), "'asset' must be a non-empty string of at most 128 characters"),
        (_raw(asset=7), "'asset' must be"),
        (_raw(seq=-1), "'seq' must be an integer in 0..9223372036854775806, got -1"),
        (_raw(seq=1.5), "'seq' must be an integer"),
        (_raw(seq=True), "'seq' must be an integer"),
        (_raw(t0="now"), "'t0' must be a finite number, got 'now'"),
        (_raw(t0=True), "'t0' must be a finite number"),
        (_raw(fs=0), "'fs' must be a positive finite number, got 0"),
        (_raw(fs=-1000.0), "'fs' must be a positive finite number"),
        (_raw(fs="1000"), "'fs' must be a positive finite number"),
        (
            json.dumps({k: v for k, v in _msg().items() if k != "current"}).encode(),
            "missing or non-array signal 'current'",
        ),
        (_raw(flow=[1.0, 2.0]), "signal 'flow' has 2 samples, 'pressure' has 5"),
        (_raw(flow=[1.0, "x", 2.0, 3.0, 4.0]), "signal 'flow' is not a flat array of numbers"),
        (_raw(flow=[1.0, None, 2.0, 3.0, 4.0]), "signal 'flow' is not a flat array of numbers"),
        (_raw(flow=[[1.0], [2.0], [3.0], [4.0], [5.0]]), "signal 'flow' is not a flat array of numbers"),
        (_raw(flow=[[1.0], 2.0, 3.0, 4.0, 5.0]), "signal 'flow' is not a flat array of numbers"),
        (_raw(flow=[True] * 5), "signal 'flow' is not a flat array of numbers"),
        (_raw(flow=[1, True, 1, 1, 1]), "signal 'flow' is not a flat array of numbers (it holds a boolean)"),
        (
            _raw(flow=[1.5, 2.5, 3.5, 4.5, False]),
            "signal 'flow' is not a flat array of numbers (it holds a boolean)",
        ),
        (_raw(flow="1,2,3"), "missing or non-array signal 'flow'"),
        (_raw(pressure=[], flow=[], speed=[], current=[]), "chunk length must be 1..10000, got 0"),
        (
            b'{"v":1,"asset":"a","seq":0,"t0":0,"fs":1000,"pressure":[NaN],"flow":[1],"speed":[1],"current":[1]}',
            "invalid JSON",
        ),
        (
            _raw(flow=[1e308] * 5),
            "signal 'flow' has 5 samples outside its physical range [-5, 80] L/min (e.g. 1e+308)",
        ),
        (_raw(speed=[1916.0, 1916.0, -1e308, 1916.0, 1916.0]), "signal 'speed' has 1 samples outside"),
        (_raw(seq=2**64 - 1), "'seq' must be an integer in 0..9223372036854775806, got 18446744073709551615"),
        (_raw(seq=2**63 - 1), "'seq' must be an integer"),
    ],
)
def test_invalid_messages_raise_with_reason(raw: bytes | None, reason: str, parser: str) -> None:
    got = _reason(raw)
    # A reason ending in a quote, a digit or ')' is the whole line; others are its start.
    assert got == reason if reason[-1] in "'0123456789)" else got.startswith(reason), got


def test_integers_beyond_64_bit_are_refused(parser: str) -> None:
    # json gives an object array, orjson a float of 1.2e21: refused either way
    expected = {
        "json": "signal 'flow' is not a flat array of numbers",
        "orjson": "signal 'flow' has 5 samples outside its physical range [-5, 80] L/min (e.g. 1.18059e+21)",
    }
    assert _reason(_raw(flow=[2**70] * 5)) == expected[parser]


def test_invalid_json_reason_carries_the_parsers_first_line(parser: str) -> None:
    reason = _reason(b"{not json")
    assert reason.startswith("invalid JSON: ") and "line 1 column 2" in reason
    if parser == "json":
        assert _reason(b'{"pressure":[NaN]}') == "invalid JSON: NaN is not valid JSON"


def test_non_finite_samples_are_refused_by_both_parsers(parser: str) -> None:
    # 1e400 overflows a double: orjson refuses the text, the standard library turns it into inf.
    raw = _raw(pressure=[1.0] * 5).replace(b'"pressure": [1.0,', b'"pressure": [1e400,')
    reason = _reason(raw)
    expected = "invalid JSON" if parser == "orjson" else "signal 'pressure' contains NaN or infinity"
    assert expected in reason


def test_nan_literal_is_refused_by_the_standard_library_path(parser: str) -> None:
    assert "invalid JSON" in _reason(b'{"v":1,"pressure":[NaN]}')
    assert "invalid JSON" in _reason(b'{"v":1,"pressure":[-Infinity]}')


@pytest.mark.parametrize("signal", SIGNALS)
def test_physical_range_is_inclusive_on_both_sides(signal: str) -> None:
    lo, hi = PHYSICAL_RANGES[signal]
    ok = decode_chunk(_raw(**{signal: [lo, hi, lo, hi, lo]}))
    assert ok.signals[signal].tolist() == [lo, hi, lo, hi, lo]
    for bad in (np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)):
        reason = _reason(_raw(**{signal: [lo, hi, float(bad), hi, lo]}))
        assert reason.startswith(
            f"signal {signal!r} has 1 samples outside its physical range [{lo:g}, {hi:g}]"
        )


def test_physical_ranges_cover_every_signal_and_admit_a_running_pump() -> None:
    assert set(PHYSICAL_RANGES) == set(SIGNALS)
    running = {"pressure": 7.0, "flow": 38.0, "speed": 1916.0, "current": 6.6}
    for s, v in running.items():
        lo, hi = PHYSICAL_RANGES[s]
        assert lo < 0.0 < v < hi  # sensor noise around zero passes on a stopped pump


@pytest.mark.parametrize(
    ("field", "ok", "bad"),
    [
        ("seq", [0, 1, MAX_SEQ], [-1, MAX_SEQ + 1]),
        ("asset", ["a", "x" * MAX_ASSET_LEN], ["", "x" * (MAX_ASSET_LEN + 1)]),
        ("fs", [1e-9, 1, 1000.0], [0, 0.0, -1e-9]),
        ("t0", [0, -1.5, 1e12], []),
    ],
)
def test_header_limits_on_both_sides(field: str, ok: list, bad: list) -> None:
    for value in ok:
        chunk = decode_chunk(_raw(**{field: value}))
        assert getattr(chunk, field) == value
    for value in bad:
        assert f"'{field}' must be" in _reason(_raw(**{field: value}))


def test_max_seq_leaves_room_for_the_next_expected_seq_in_a_signed_64_bit_int() -> None:
    assert MAX_SEQ + 1 == 2**63 - 1
    dumps({"next_seq": MAX_SEQ + 1})  # what the engine snapshot stores: must serialise


@pytest.mark.parametrize("n", [1, MAX_SAMPLES])
def test_chunk_length_limits_accept(n: int) -> None:
    assert decode_chunk(_raw(**{s: [1.0] * n for s in SIGNALS})).n == n


def test_too_long_chunk_is_rejected() -> None:
    n = MAX_SAMPLES + 1
    assert (
        _reason(_raw(**{s: [1.0] * n for s in SIGNALS})) == f"chunk length must be 1..{MAX_SAMPLES}, got {n}"
    )


def test_a_field_given_twice_is_refused(parser: str) -> None:
    good = encode_chunk("pump-1", 0, 0.0, 1000.0, _signals(2))
    twice = good[:-1] + b',"asset":"pump-2"}'
    assert _reason(twice) == "field 'asset' appears more than once"
    twice_seq = b'{"seq":1,' + good[1:]
    assert _reason(twice_seq) == "field 'seq' appears more than once"
    # The same key spelt with a JSON escape is still the same key.
    escaped = good[:-1] + b',"\\u0061sset":"pump-2"}'
    assert _reason(escaped) == "field 'asset' appears more than once"


def test_field_names_inside_values_are_not_duplicates(parser: str) -> None:
    assert decode_chunk(encode_chunk('"asset"', 0, 0.0, 1000.0, _signals(2))).asset == '"asset"'
    assert decode_chunk(encode_chunk("asset", 0, 0.0, 1000.0, _signals(2))).asset == "asset"
    assert decode_chunk(encode_chunk("p\u00e9-1", 0, 0.0, 1000.0, _signals(2))).asset == "p\u00e9-1"
    assert decode_chunk(_raw(note='a "true" story', asset="true")).asset == "true"


def test_encode_refuses_what_decode_would_reject() -> None:
    with pytest.raises(SchemaError, match="missing signal 'current'"):
        encode_chunk("a", 0, 0.0, 1000.0, {s: np.ones(3) for s in SIGNALS[:3]})
    with pytest.raises(SchemaError, match="signal 'flow' must be 1-D with the same length"):
        encode_chunk("a", 0, 0.0, 1000.0, {**_signals(3), "flow": np.ones(4)})
    with pytest.raises(SchemaError, match="signal 'pressure' must be 1-D"):
        encode_chunk("a", 0, 0.0, 1000.0, {**_signals(3), "pressure": np.ones((3, 1))})
    with pytest.raises(SchemaError, match="'asset'"):
        encode_chunk("", 0, 0.0, 1000.0, _signals(3))
    with pytest.raises(SchemaError, match=r"chunk length must be 1\.\.10000, got 0"):
        encode_chunk("a", 0, 0.0, 1000.0, {s: np.ones(0) for s in SIGNALS})
    with pytest.raises(SchemaError, match="got 10001"):
        encode_chunk("a", 0, 0.0, 1000.0, {s: np.ones(MAX_SAMPLES + 1) for s in SIGNALS})
    assert (
        decode_chunk(encode_chunk("a", 0, 0.0, 1000.0, {s: np.ones(MAX_SAMPLES) for s in SIGNALS})).n
        == MAX_SAMPLES
    )


def test_dumps_is_compact_json_on_both_paths(parser: str) -> None:
    assert dumps({"a": [1, 2], "b": "x"}) == b'{"a":[1,2],"b":"x"}'


def test_encode_writes_samples_as_floats() -> None:
    raw = encode_chunk("a", 0, 0.0, 1000.0, {s: [1, 2] for s in SIGNALS})
    assert b'"flow":[1.0,2.0]' in raw
    assert decode_chunk(encode_chunk("a", 0, 0.0, 1000.0, {s: [3.5] for s in SIGNALS})).n == 1


def test_dumps_and_loads_numpy_on_both_paths(parser: str) -> None:
    out = loads(dumps({"a": np.array([1.5, 2.0]), "b": np.float64(0.25), "c": np.int64(3)}))
    assert out == {"a": [1.5, 2.0], "b": 0.25, "c": 3}
    assert loads(b'{"x": 1}'.decode()) == {"x": 1}


def test_json_fallback_refuses_what_it_cannot_serialise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "_orjson", None)
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        dumps({"x": object()})
    with pytest.raises(ValueError):
        dumps({"x": float("nan")})


def test_alert_round_trip_and_rejections() -> None:
    alert = {"v": 1, "asset": "a", "kind": "raise", "faults": ["leak"], "scores": {"leak": 0.9}}
    assert decode_alert(encode_alert(alert)) == alert
    assert decode_alert(encode_alert({**alert, "kind": "clear"}))["kind"] == "clear"
    for bad in (b'{"v":1,"kind":"maybe"}', b'{"v":2,"kind":"raise"}', b'["v"]', b'{"kind":"raise"}'):
        with pytest.raises(SchemaError) as exc:
            decode_alert(bad)
        assert exc.value.reason == "not a v1 alert"
    with pytest.raises(SchemaError, match="invalid JSON"):
        decode_alert(b"{")


def test_dlq_record_keeps_origin_and_bytes() -> None:
    rec = json.loads(dlq_record(b"\xff\x00", "bad", topic="t", partition=1, offset=5, key=b"k\xff"))
    assert rec["v"] == 1 and rec["reason"] == "bad" and rec["topic"] == "t"
    assert (rec["partition"], rec["offset"], rec["key"]) == (1, 5, "k\ufffd")
    assert base64.b64decode(rec["value_b64"]) == b"\xff\x00"
    assert isinstance(rec["rejected_at"], float) and rec["rejected_at"] > 1.7e9
    empty = json.loads(dlq_record(None, "empty", topic="t", partition=0, offset=0))
    assert empty["key"] is None and empty["value_b64"] is None


def test_truth_record() -> None:
    truth = json.loads(
        truth_record(
            "a", {"leak": 0.5, "bearing": 0.0}, 4, 1.0, operating_point={"speed_rpm": 900.0}, rev=2.5
        )
    )
    assert truth == {
        "v": 1,
        "asset": "a",
        "faults": {"leak": 0.5, "bearing": 0.0},
        "active": ["leak"],
        "operating_point": {"speed_rpm": 900.0},
        "seq": 4,
        "t": 1.0,
        "rev": 2.5,
    }
    assert json.loads(truth_record("a", {}, 0, 0.0))["operating_point"] is None


# ---------------------------------------------------------------- the fast path and the detailed path
@pytest.fixture(params=["fast", "detailed"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Decode plain messages through the one-block fast path, or force the detailed per-signal path."""
    if request.param == "detailed":
        monkeypatch.setattr(schema, "_plain_text", lambda raw, msg: False)
    return str(request.param)


def test_both_paths_decode_the_same_chunk(path: str) -> None:
    sig = _signals(7)
    chunk = decode_chunk(encode_chunk("pump-1", 9, 12.5, 1000.0, sig))
    assert (chunk.asset, chunk.seq, chunk.t0, chunk.fs, chunk.n) == ("pump-1", 9, 12.5, 1000.0, 7)
    for s in SIGNALS:
        assert chunk.signals[s].dtype == np.float64 and chunk.signals[s].tolist() == sig[s].tolist()
    ints = decode_chunk(_raw(**{s: [1, 2, 3, 4, 5] for s in SIGNALS}))
    assert ints.signals["speed"].dtype == np.float64
    assert ints.signals["speed"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("n", [1, MAX_SAMPLES])
def test_both_paths_accept_the_length_limits(path: str, n: int) -> None:
    assert decode_chunk(_raw(**{s: [1.0] * n for s in SIGNALS})).n == n
    assert _reason(_raw(**{s: [1.0] * (MAX_SAMPLES + 1) for s in SIGNALS})).startswith("chunk length must be")


@pytest.mark.parametrize("signal", SIGNALS)
def test_both_paths_apply_the_physical_range_inclusively(path: str, signal: str) -> None:
    lo, hi = PHYSICAL_RANGES[signal]
    edges = [lo, hi, lo, hi, lo]
    assert decode_chunk(_raw(**{signal: edges})).signals[signal].tolist() == edges
    for bad in (np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)):
        reason = _reason(_raw(**{signal: [lo, hi, float(bad), hi, lo]}))
        assert " samples outside its physical range " in reason


def test_both_paths_refuse_nested_and_ragged_arrays(path: str) -> None:
    nested = _raw(flow=[[1.0], [2.0], [3.0], [4.0], [5.0]])
    assert _reason(nested) == "signal 'flow' is not a flat array of numbers"
    assert _reason(_raw(current=[1.0, 2.0])) == "signal 'current' has 2 samples, 'pressure' has 5"


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"note": "quite a full label"},  # strings with u and l
        {"flags": [True, False, None], "more": {"deep": ["ul", 1.5], "n": None}},
        {"ok": True, "off": False, "nothing": None},
        {"ok": True},
        {"off": False},
    ],
)
def test_plain_messages_take_the_fast_path(extra: dict) -> None:
    raw = json.dumps(_msg(**extra)).encode()
    assert schema._plain_text(raw, json.loads(raw))
    compact = encode_chunk("pump-lulu", 0, 0.0, 1000.0, _signals(3))
    assert schema._plain_text(compact, json.loads(compact))


@pytest.mark.parametrize(
    "raw",
    [
        _raw()[:-1] + b', "asset": "x"}',  # a key twice
        _raw(extra={"a": 1})[:-2] + b', "a": 2}}',  # a nested key twice
        _raw(flow=[1.0, True, 1.0, 1.0, 1.0]),  # a boolean in an array
        _raw(flow=[1.0, False, 1.0, 1.0, 1.0]),
        _raw(flow=[1.0, None, 1.0, 1.0, 1.0]),  # a null in an array
        _raw(flow=[1.0, "x", 1.0, 1.0, 1.0]),  # a string in an array
        _raw(asset='a"b'),  # an escaped quote
    ],
)
def test_anything_else_takes_the_detailed_path(raw: bytes) -> None:
    assert not schema._plain_text(raw, json.loads(raw))


@pytest.mark.parametrize(
    "signals",
    [
        {s: [PHYSICAL_RANGES[s][0], PHYSICAL_RANGES[s][1]] for s in SIGNALS},  # both range edges
        {s: [1] for s in SIGNALS},  # one integer sample
        {s: [2.5] * MAX_SAMPLES for s in SIGNALS},  # the longest chunk
    ],
)
def test_valid_plain_messages_never_need_the_detailed_path(
    signals: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-block path takes every valid plain message (one conversion instead of one per signal)."""

    def detailed(*args: object) -> None:
        raise AssertionError("took the detailed path")

    monkeypatch.setattr(schema, "_check_range", detailed)
    chunk = decode_chunk(_raw(**signals))
    assert {s: chunk.signals[s].tolist() for s in SIGNALS} == {
        s: [float(x) for x in v] for s, v in signals.items()
    }
