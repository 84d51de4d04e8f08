import io

import numpy as np
import pytest

from fedtwin.errors import InvalidModel
from fedtwin.model_store import pack_arrays, sign, unpack_arrays, verify


def test_arrays_round_trip_exactly() -> None:
    arrays = {
        "w0": np.arange(6, dtype=np.float64).reshape(2, 3),
        "b0": np.array([1.5, -2.0], dtype=np.float32),
    }
    back = unpack_arrays(pack_arrays(arrays))
    assert set(back) == {"w0", "b0"}
    np.testing.assert_array_equal(back["w0"], arrays["w0"])
    assert back["b0"].dtype == np.float32


def test_object_arrays_are_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="object dtype"):
        pack_arrays({"bad": np.array([{"a": 1}], dtype=object)})
    buf = io.BytesIO()
    np.savez(buf, bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError):
        unpack_arrays(buf.getvalue())


def test_tampering_is_detected() -> None:
    blob = pack_arrays({"w": np.ones(3)})
    meta = {"faults": ["leak"], "thresholds": [0.5]}
    digest, sig = sign(blob, meta, b"k1")
    record = {"meta": meta, "sha256": digest, "signature": sig}
    verify(blob, record, b"k1")
    with pytest.raises(InvalidModel, match="checksum"):
        verify(pack_arrays({"w": np.zeros(3)}), record, b"k1")
    with pytest.raises(InvalidModel, match="signature"):
        verify(blob, record, b"other-key")
    with pytest.raises(InvalidModel, match="signature"):
        verify(blob, {**record, "meta": {**meta, "thresholds": [0.9]}}, b"k1")
