"""Sensor message v1: round trip and every rejection reason, no services needed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedtwin.schema import (
    MAX_SAMPLES,
    SIGNALS,
    SchemaError,
    decode_alert,
    decode_chunk,
    dlq_record,
    encode_alert,
    encode_chunk,
    truth_record,
)


def _signals(n: int = 100) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {s: rng.normal(10.0, 1.0, n) for s in SIGNALS}


def _msg(**over: object) -> dict:
    base = json.loads(encode_chunk("pump-1", 3, 1_700_000_000.5, 1000.0, _signals(5)))
    base.update(over)
    return base


def test_round_trip_keeps_values_and_header() -> None:
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
    assert chunk.t_end == pytest.approx(1_700_000_000.35)


def test_decimals_shrinks_message() -> None:
    full = encode_chunk("a", 0, 0.0, 1000.0, _signals())
    short = encode_chunk("a", 0, 0.0, 1000.0, _signals(), decimals=3)
    assert len(short) < 0.7 * len(full)
    assert np.allclose(decode_chunk(short).signals["flow"], _signals()["flow"], atol=5e-4)


def test_integers_and_extra_fields_are_accepted() -> None:
    m = _msg(pressure=[1, 2, 3, 4, 5], extra="ignored")
    assert decode_chunk(json.dumps(m).encode()).signals["pressure"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (None, "empty message"),
        (json.dumps(_msg(v=2)).encode(), "unsupported schema version"),
        (json.dumps(_msg(v=True)).encode(), "unsupported schema version"),
        (json.dumps({k: v for k, v in _msg().items() if k != "asset"}).encode(), "'asset'"),
        (json.dumps(_msg(asset="")).encode(), "'asset'"),
        (json.dumps(_msg(seq=-1)).encode(), "'seq'"),
        (json.dumps(_msg(seq=1.5)).encode(), "'seq'"),
        (json.dumps(_msg(t0="now")).encode(), "'t0'"),
        (json.dumps(_msg(fs=0)).encode(), "'fs'"),
        (json.dumps({k: v for k, v in _msg().items() if k != "current"}).encode(), "'current'"),
        (json.dumps(_msg(flow=[1.0, 2.0])).encode(), "has 2 samples"),
        (json.dumps(_msg(flow=[1.0, "x", 2.0, 3.0, 4.0])).encode(), "not a flat array"),
        (json.dumps(_msg(flow=[1.0, None, 2.0, 3.0, 4.0])).encode(), "not a flat array"),
        (json.dumps(_msg(flow=[[1.0], [2.0], [3.0], [4.0], [5.0]])).encode(), "not a flat array"),
        (json.dumps(_msg(flow=[True] * 5)).encode(), "not a flat array"),
        (json.dumps(_msg(flow="1,2,3")).encode(), "non-array"),
        (json.dumps(_msg(pressure=[], flow=[], speed=[], current=[])).encode(), "chunk length"),
        (
            b'{"v":1,"asset":"a","seq":0,"t0":0,"fs":1000,"pressure":[NaN],"flow":[1],"speed":[1],"current":[1]}',
            "invalid JSON",
        ),
        (json.dumps(_msg(flow=[1e308 * 10] * 5)).encode(), ""),
    ],
)
def test_invalid_messages_raise_with_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(SchemaError) as exc:
        decode_chunk(raw)
    assert reason in exc.value.reason


def test_too_long_chunk_is_rejected() -> None:
    n = MAX_SAMPLES + 1
    raw = json.dumps(_msg(**{s: [1.0] * n for s in SIGNALS})).encode()
    with pytest.raises(SchemaError, match="chunk length"):
        decode_chunk(raw)


def test_encode_refuses_what_decode_would_reject() -> None:
    with pytest.raises(SchemaError):
        encode_chunk("a", 0, 0.0, 1000.0, {s: np.ones(3) for s in SIGNALS[:3]})
    with pytest.raises(SchemaError):
        encode_chunk("a", 0, 0.0, 1000.0, {**_signals(3), "flow": np.ones(4)})
    with pytest.raises(SchemaError):
        encode_chunk("", 0, 0.0, 1000.0, _signals(3))


def test_alert_dlq_and_truth_records() -> None:
    alert = {"v": 1, "asset": "a", "kind": "raise", "faults": ["leak"], "scores": {"leak": 0.9}}
    assert decode_alert(encode_alert(alert)) == alert
    with pytest.raises(SchemaError):
        decode_alert(b'{"v":1,"kind":"maybe"}')
    rec = json.loads(dlq_record(b"\xff\x00", "bad", topic="t", partition=1, offset=5, key=b"k"))
    assert rec["reason"] == "bad" and rec["value_b64"] == "/wA=" and rec["offset"] == 5
    truth = json.loads(truth_record("a", {"leak": 0.5, "bearing": 0.0}, 4, 1.0))
    assert truth["active"] == ["leak"] and truth["seq"] == 4
