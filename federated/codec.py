"""A safe wire format for the plain data a site call carries: JSON text with numpy arrays as tagged base64.

What crosses between the coordinator and a site (call arguments one way; sums, statistics, parameters, counts
and metrics the other) goes through :func:`encode` / :func:`decode`, never pickle: decoding builds only
``None``, ``bool``, ``int``, ``float``, ``str``, lists, dicts with string keys and numeric numpy arrays of a
fixed set of dtypes, and checks sizes before it allocates anything.

An array is the object ``{"$nd": [dtype, shape, base64]}`` (raw little-endian bytes in C order); a dict that
itself has the key ``"$nd"`` cannot be encoded, so the tag is unambiguous.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

ARRAY_TAG = "$nd"

#: Array dtypes a payload may carry (numbers and booleans only: no object, string or void arrays).
ALLOWED_DTYPES = frozenset({"<f8", "<f4", "<i8", "<i4", "<u1", "|u1", "|b1", "|i1"})

#: Default limits of :func:`decode` (a site's update is a few hundred kB; statistics far less).
MAX_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 32
MAX_NDIM = 8


class CodecError(ValueError):
    """A payload that is not valid plain data (wrong type, too large, malformed array)."""


def _encode_array(a: np.ndarray) -> dict[str, Any]:
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one.)
    a = a if a.flags.c_contiguous else a.copy(order="C")
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    dtype = a.dtype.str
    if dtype not in ALLOWED_DTYPES:
        raise CodecError(f"array dtype {a.dtype} cannot be sent (allowed: {sorted(ALLOWED_DTYPES)})")
    return {ARRAY_TAG: [dtype, list(a.shape), base64.b64encode(a.tobytes()).decode("ascii")]}


def _scalar(value: Any) -> tuple[bool, Any]:
    """``(True, plain)`` for a Python or numpy scalar (numpy ones as Python twins), else ``(False, None)``."""
    if value is None or isinstance(value, bool | str | int | float):
        return True, value
    if isinstance(value, np.bool_):
        return True, bool(value)
    if isinstance(value, np.integer):
        return True, int(value)
    if isinstance(value, np.floating):
        return True, float(value)
    return False, None


def _mapping_to_plain(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    if ARRAY_TAG in value:
        raise CodecError(f"a dict key {ARRAY_TAG!r} is reserved for arrays")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str):
            raise CodecError(f"dict keys must be str, got {type(k).__name__}")
        out[k] = to_plain(v, depth + 1)
    return out


def to_plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready plain data (arrays tagged); raises :class:`CodecError` for anything else."""
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH}")
    is_scalar, plain = _scalar(value)
    if is_scalar:
        return plain
    if isinstance(value, np.ndarray):
        return _encode_array(value)
    if isinstance(value, list | tuple):
        return [to_plain(v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return _mapping_to_plain(value, depth)
    raise CodecError(f"{type(value).__name__} is not plain data")


def encode(value: Any) -> str:
    """Plain data -> JSON text (NaN/inf floats allowed: a metric may be NaN)."""
    return json.dumps(to_plain(value), separators=(",", ":"))


def _decode_array(spec: Any) -> np.ndarray:
    if not (isinstance(spec, list) and len(spec) == 3):
        raise CodecError(f"{ARRAY_TAG} must be [dtype, shape, base64]")
    dtype, shape, data = spec
    if dtype not in ALLOWED_DTYPES:
        raise CodecError(f"array dtype {dtype!r} not allowed")
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM):
        raise CodecError(f"array shape must be a list of at most {MAX_NDIM} sizes")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise CodecError("array sizes must be non-negative integers")
    if not isinstance(data, str):
        raise CodecError("array data must be a base64 string")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if expected > MAX_BYTES or len(data) > 4 * (expected // 3 + 1):
        raise CodecError(f"array of {expected} bytes exceeds its declared shape or the size limit")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CodecError(f"array data is not base64: {exc}") from None
    if len(raw) != expected:
        raise CodecError(f"array data has {len(raw)} bytes, shape {shape} of {dtype} needs {expected}")
    return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(tuple(shape)).copy()


def from_plain(value: Any, depth: int = 0) -> Any:
    """Inverse of :func:`to_plain` on parsed JSON; validates every node."""
    if depth > MAX_DEPTH:
        raise CodecError(f"nesting deeper than {MAX_DEPTH}")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [from_plain(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if ARRAY_TAG in value:
            if len(value) != 1:
                raise CodecError(f"an array object has only the key {ARRAY_TAG!r}")
            return _decode_array(value[ARRAY_TAG])
        return {k: from_plain(v, depth + 1) for k, v in value.items()}
    raise CodecError(f"unexpected JSON value of type {type(value).__name__}")


def decode(text: str | bytes, max_bytes: int = MAX_BYTES) -> Any:
    """JSON text from :func:`encode` -> plain data; :class:`CodecError` with the reason if it is not."""
    if not isinstance(text, str | bytes):
        raise CodecError(f"payload must be str or bytes, got {type(text).__name__}")
    if len(text) > max_bytes:
        raise CodecError(f"payload of {len(text)} bytes exceeds the limit of {max_bytes}")
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CodecError(f"payload is not JSON: {exc}") from None
    return from_plain(parsed)
