"""Model record and pointer formats: signing, verification and every way a stored value can be wrong.

These are the pure functions the Redis store runs on what it reads; the store itself is tested against a real
Redis in tests/integration/test_model_store.py.
"""

import hashlib
import io
import json

import numpy as np
import pytest

from fedtwin.adapters.model_store import (
    RECORD_FORMAT,
    check_finite,
    pack_arrays,
    sign_pointer,
    sign_record,
    unpack_arrays,
    verify_pointer,
    verify_record,
)
from fedtwin.errors import InvalidModel

KEY = b"k1"
ARRAYS = {"w": np.array([1.0, -2.0, 0.5]), "n": np.array([3], dtype=np.int64)}
META = {"faults": ["leak"], "thresholds": [0.5]}


def record(version: int = 4, **over: object) -> tuple[bytes, bytes]:
    blob = pack_arrays(ARRAYS)
    rec = sign_record(blob, META, name="m", version=version, created=1_700_000_000.5, key=KEY)
    rec.update(over)
    return json.dumps(rec).encode(), blob


def refused(raw: bytes | str | None, blob: bytes | None, version: int = 4, key: bytes = KEY) -> str:
    with pytest.raises(InvalidModel) as exc:
        verify_record(raw, blob, key, version)
    return str(exc.value)


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
    with pytest.raises(ValueError, match="array 'bad' has an object dtype"):
        pack_arrays({"ok": np.ones(2), "bad": np.array([{"a": 1}], dtype=object)})
    buf = io.BytesIO()
    np.savez(buf, bad=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        unpack_arrays(buf.getvalue())


def test_a_signed_record_verifies_and_returns_its_fields() -> None:
    raw, blob = record()
    model = verify_record(raw, blob, KEY, 4)
    assert (model.version, model.name, model.created, model.meta) == (4, "m", 1_700_000_000.5, META)
    np.testing.assert_array_equal(model.arrays["w"], ARRAYS["w"])
    rec = json.loads(raw)
    assert rec["format"] == RECORD_FORMAT == 2
    assert rec["sha256"] == hashlib.sha256(blob).hexdigest()
    assert len(rec["signature"]) == 64


def test_the_signature_covers_name_version_creation_time_metadata_and_hash() -> None:
    raw, blob = record()
    for field, value in (
        ("name", "other"),
        ("created", 1_700_000_001.5),
        ("meta", {**META, "thresholds": [0.9]}),
        ("sha256", hashlib.sha256(b"x").hexdigest()),
    ):
        bad = json.dumps({**json.loads(raw), field: value})
        assert refused(bad, blob) == "model version 4: signature does not verify with this signing key", field
    assert (
        refused(raw, blob, key=b"other-key")
        == "model version 4: signature does not verify with this signing key"
    )


def test_a_valid_record_copied_under_another_version_fails() -> None:
    raw, blob = record(version=4)
    assert refused(raw, blob, version=5) == (
        "model version 5: the record is signed as version 4 (copied under another)"
    )
    # rewriting the version field breaks the signature instead
    moved = json.dumps({**json.loads(raw), "version": 5})
    assert (
        refused(moved, blob, version=5) == "model version 5: signature does not verify with this signing key"
    )


def test_tampered_arrays_fail_their_checksum() -> None:
    raw, _ = record()
    tampered = pack_arrays({**ARRAYS, "w": np.zeros(3)})
    assert refused(raw, tampered) == "model version 4: arrays do not match their sha256 checksum"
    assert refused(raw, None) == "model version 4: arrays are missing"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_arrays_are_refused_even_when_signed(bad: float) -> None:
    arrays = {"ok": np.ones(2), "feature_mean": np.array([1.0, bad])}
    blob = pack_arrays(arrays)
    raw = json.dumps(sign_record(blob, META, name="m", version=1, created=0.0, key=KEY))
    assert (
        refused(raw, blob, version=1)
        == "model version 1: model array 'feature_mean' contains NaN or infinity"
    )


def test_check_finite_ignores_integer_arrays_and_names_complex_ones() -> None:
    check_finite({"i": np.array([1, 2]), "f": np.array([0.0]), "b": np.array([True])})
    with pytest.raises(InvalidModel, match="'c' contains NaN"):
        check_finite({"c": np.array([1 + 1j, complex(np.nan, 0)])})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "model version 4: record is missing"),
        (b"not json", "model version 4: record is not JSON"),
        (b"\xff\xfe", "model version 4: record is not JSON"),
        (b"[]", "model version 4: record is not a JSON object (got list)"),
        (b"3", "model version 4: record is not a JSON object (got int)"),
        (
            json.dumps(
                {"meta": META, "sha256": "x", "signature": "y"}
            ),  # format 1, as earlier releases wrote
            "model version 4: record format 1 is not 2 (older records do not sign their version); "
            "publish the model again",
        ),
        (json.dumps({"format": "2"}), "model version 4: record format '2' is not 2"),
        (json.dumps({"format": True}), "model version 4: record format True is not 2"),
        (json.dumps({"format": 2}), "model version 4: field 'name' is missing or not a str"),
    ],
)
def test_garbage_records_raise_invalid_model(raw: bytes | str | None, reason: str) -> None:
    _, blob = record()
    assert refused(raw, blob).startswith(reason)


@pytest.mark.parametrize(
    ("field", "value", "kinds"),
    [
        ("name", 7, "str"),
        ("version", "4", "int"),
        ("version", True, "int"),
        ("created", "now", "float/int"),
        ("created", None, "float/int"),
        ("meta", [], "dict"),
        ("sha256", 1, "str"),
        ("signature", None, "str"),
    ],
)
def test_ill_typed_record_fields_raise_invalid_model(field: str, value: object, kinds: str) -> None:
    raw, blob = record()
    bad = json.dumps({**json.loads(raw), field: value})
    assert refused(bad, blob) == f"model version 4: field {field!r} is missing or not a {kinds}"


def test_integer_creation_time_is_accepted() -> None:
    blob = pack_arrays(ARRAYS)
    raw = json.dumps(sign_record(blob, META, name="", version=2, created=5, key=KEY))
    assert verify_record(raw, blob, KEY, 2).created == 5.0


# ---------------------------------------------------------------- the pointer
def pointer(**over: object) -> str:
    rec = sign_pointer(7, 3, rollback=False, set_at=1_700_000_000.25, key=KEY)
    rec.update(over)
    return json.dumps(rec)


def test_a_signed_pointer_verifies() -> None:
    ptr = verify_pointer(pointer(), KEY)
    assert (ptr.version, ptr.generation, ptr.rollback, ptr.set_at) == (7, 3, False, 1_700_000_000.25)
    rb = verify_pointer(json.dumps(sign_pointer(2, 4, rollback=True, set_at=9, key=KEY)).encode(), KEY)
    assert (rb.version, rb.generation, rb.rollback, rb.set_at) == (2, 4, True, 9.0)


@pytest.mark.parametrize("field", ["version", "generation", "rollback", "set_at"])
def test_the_pointer_signature_covers_every_field(field: str) -> None:
    value = {"version": 6, "generation": 9, "rollback": True, "set_at": 1.0}[field]
    with pytest.raises(InvalidModel, match="model pointer: signature does not verify with this signing key"):
        verify_pointer(pointer(**{field: value}), KEY)
    with pytest.raises(InvalidModel, match="signature does not verify"):
        verify_pointer(pointer(), b"other-key")


def test_a_model_signature_is_not_a_pointer_signature() -> None:
    """Both are HMACs under the same key: the kind inside the signed text keeps them apart."""
    fields = {"format": 2, "version": 7, "generation": 3, "rollback": False, "set_at": 0.0}
    as_model = sign_record(b"", {}, name="", version=7, created=0.0, key=KEY)["signature"]
    with pytest.raises(InvalidModel, match="signature does not verify"):
        verify_pointer(json.dumps({**fields, "signature": as_model}), KEY)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"abc", "model pointer is not JSON"),
        (b"3", "model pointer is not a JSON object (got int)"),  # the bare version of earlier releases
        (b"[]", "model pointer is not a JSON object (got list)"),
        (b"{}", "model pointer is not a signed format-2 pointer; promote a version again"),
        (b'{"format": 2.0}', "model pointer is not a signed format-2 pointer"),
        (pointer(version="7"), "model pointer: field 'version' is missing or not a int"),
        (pointer(generation=None), "model pointer: field 'generation' is missing or not a int"),
        (pointer(rollback=1), "model pointer: field 'rollback' is missing or not a bool"),
        (pointer(set_at="now"), "model pointer: field 'set_at' is missing or not a float/int"),
        (pointer(signature=5), "model pointer: field 'signature' is missing or not a str"),
        (pointer(version=0), "model pointer: version and generation must be >= 1"),
        (pointer(generation=0), "model pointer: version and generation must be >= 1"),
    ],
)
def test_garbage_pointers_raise_invalid_model(raw: bytes | str, reason: str) -> None:
    with pytest.raises(InvalidModel) as exc:
        verify_pointer(raw, KEY)
    assert str(exc.value).startswith(reason)


def test_pointer_limits_accept_one() -> None:
    raw = json.dumps(sign_pointer(1, 1, rollback=False, set_at=0.0, key=KEY))
    assert verify_pointer(raw, KEY).version == 1


def test_non_finite_creation_time_is_refused() -> None:
    raw, blob = record()
    text = raw.decode().replace('"created": 1700000000.5', '"created": 1e400')
    assert refused(text, blob) == "model version 4: field 'created' is not finite"
    assert refused(raw.decode().replace('"created": 1700000000.5', '"created": NaN'), blob).endswith(
        "field 'created' is not finite"
    )


@pytest.mark.parametrize(
    ("blob", "kind"),
    [(b"garbage", "ValueError"), (b"PK\x03\x04xx", "BadZipFile"), (b"", "EOFError")],
)
def test_signed_but_unreadable_arrays_raise_invalid_model(blob: bytes, kind: str) -> None:
    """Only a key holder can sign these; the store still reports them as its own error type."""
    raw = json.dumps(sign_record(blob, META, name="m", version=4, created=0.0, key=KEY))
    assert refused(raw, blob).startswith(f"model version 4: arrays unreadable ({kind}: ")
    buf = io.BytesIO()
    np.save(buf, np.ones(2))  # a bare .npy, not an archive
    npy = buf.getvalue()
    raw = json.dumps(sign_record(npy, META, name="m", version=4, created=0.0, key=KEY))
    assert refused(raw, npy).startswith("model version 4: arrays unreadable (")


def test_not_json_reason_carries_the_parsers_message() -> None:
    assert refused(b"not json", b"") == (
        "model version 4: record is not JSON (Expecting value: line 1 column 1 (char 0))"
    )


def test_signatures_follow_the_documented_canonical_form() -> None:
    """HMAC-SHA256 over compact, key-sorted JSON of the fields plus ``"kind"``: what another implementation
    must reproduce to sign or verify a model or a pointer."""
    import hmac

    blob = pack_arrays(ARRAYS)
    rec = sign_record(blob, {"b": 1, "a": [2]}, name="m", version=4, created=1.5, key=KEY)
    text = (
        '{"created":1.5,"format":2,"kind":"model","meta":{"a":[2],"b":1},"name":"m",'
        f'"sha256":"{hashlib.sha256(blob).hexdigest()}","version":4}}'
    )
    assert rec["signature"] == hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()
    ptr = sign_pointer(7, 3, rollback=True, set_at=2.5, key=KEY)
    text = '{"format":2,"generation":3,"kind":"pointer","rollback":true,"set_at":2.5,"version":7}'
    assert ptr["signature"] == hmac.new(KEY, text.encode(), hashlib.sha256).hexdigest()
