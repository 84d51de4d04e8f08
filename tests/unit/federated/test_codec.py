"""The site wire codec: round trips of plain data, and refusal of everything else before it allocates."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from federated import codec


def test_round_trip_keeps_values_dtypes_and_shapes() -> None:
    value = {
        "params": [np.arange(6, dtype=np.float64).reshape(2, 3), np.array([1, 2], dtype=np.int64)],
        "count": np.float64(3.5),
        "n": np.int32(4),
        "ok": np.bool_(True),
        "mask": np.array([True, False]),
        "names": ("a", "b"),
        "nested": {"x": None, "loss": float("nan")},
        "empty": np.zeros((0, 3)),
        "scalar": np.array(2.5),
    }
    out = codec.decode(codec.encode(value))
    assert out["params"][0].dtype == np.float64 and out["params"][0].shape == (2, 3)
    np.testing.assert_array_equal(out["params"][0], value["params"][0])
    np.testing.assert_array_equal(out["params"][1], [1, 2])
    assert out["params"][1].dtype == np.int64
    assert out["count"] == 3.5 and out["n"] == 4 and out["ok"] is True
    assert out["mask"].dtype == np.bool_ and out["names"] == ["a", "b"]
    assert out["nested"]["x"] is None and np.isnan(out["nested"]["loss"])
    assert out["empty"].shape == (0, 3) and out["scalar"].shape == () and float(out["scalar"]) == 2.5
    out["params"][0][0, 0] = 99.0  # decoded arrays are writable copies, not views of the payload
    assert out["params"][0][0, 0] == 99.0


def test_big_endian_arrays_arrive_little_endian_with_the_same_values() -> None:
    a = np.arange(4, dtype=">f8")
    np.testing.assert_array_equal(codec.decode(codec.encode(a)), a)


@pytest.mark.parametrize(
    "value",
    [object(), {1: "x"}, np.array(["a"]), np.array([object()], dtype=object), {"$nd": 1}, b"raw"],
)
def test_encode_refuses_what_is_not_plain_data(value: object) -> None:
    with pytest.raises(codec.CodecError):
        codec.encode(value)


def _arr(dtype: object, shape: object, data: object) -> str:
    return json.dumps({"$nd": [dtype, shape, data]})


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("not json", "not JSON"),
        (_arr("|O", [1], base64.b64encode(b"x" * 8).decode()), "dtype"),
        (_arr("<f8", [2], base64.b64encode(b"x" * 8).decode()), "needs 16"),
        (_arr("<f8", [-1], ""), "non-negative"),
        (_arr("<f8", [10**9, 10**9], ""), "size limit"),
        (_arr("<f8", [1], "!!!!!!!!!!!!"), "base64"),
        (_arr("<f8", [1] * 9, ""), "at most"),
        (json.dumps({"$nd": ["<f8", [1], ""], "extra": 1}), "only the key"),
        ("[" * 100 + "]" * 100, "deeper"),
    ],
)
def test_decode_refuses_malformed_payloads_with_a_reason(payload: str, reason: str) -> None:
    with pytest.raises(codec.CodecError, match=reason):
        codec.decode(payload)


def test_decode_checks_the_size_before_parsing() -> None:
    with pytest.raises(codec.CodecError, match="exceeds the limit"):
        codec.decode("[" + "1," * 100 + "1]", max_bytes=50)
