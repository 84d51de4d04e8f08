"""Wire formats of the streaming path: sensor chunks (v1), alerts (v1), ground truth and dead letters.

Sensor message v1 (Kafka value, key = asset id as UTF-8)::

    {"v": 1, "asset": "pump-1", "seq": 42, "t0": 1767225600.0, "fs": 1000.0,
     "pressure": [...], "flow": [...], "speed": [...], "current": [...]}

``t0`` is the epoch time (s) of the first sample, ``fs`` the sample rate (Hz), and the four arrays (bar,
L/min, rpm, A) have the same length n, 1 <= n <= 10000, of numbers (not booleans) inside the signal's
``PHYSICAL_RANGES``. ``seq`` counts chunks per asset from 0 without gaps, up to ``MAX_SEQ``. A key given
twice is refused (parsers disagree on which copy wins). Unknown extra fields are ignored, so producers may add
fields without a version bump; removing or changing one needs v2.

JSON is parsed with orjson when it is installed (about 3x faster than the standard library), else ``json``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedtwin.errors import FedtwinError
from plant_models import spec

_orjson: Any
try:  # optional fast path; the standard library is the fallback
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

SCHEMA_VERSION = 1
ALERT_VERSION = 1
#: Signal names in message order, with their units (plant_models.spec, the asset's one description).
SIGNALS: tuple[str, ...] = spec.SIGNALS
UNITS: dict[str, str] = {s.name: s.unit for s in spec.SIGNAL_SPECS}
#: Span of physically possible readings of each signal, in ``UNITS``, inclusive (why each bound: see
#: ``plant_models.spec.SIGNAL_SPECS``). A sample outside cannot come from a working sensor on the reference
#: pump, so the message is refused instead of scored.
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {s.name: s.physical_range for s in spec.SIGNAL_SPECS}
_RANGE_LO = tuple(PHYSICAL_RANGES[s][0] for s in SIGNALS)
_RANGE_HI = tuple(PHYSICAL_RANGES[s][1] for s in SIGNALS)
MAX_SAMPLES = 10_000
MAX_ASSET_LEN = 128
#: Largest ``seq``: the engine stores ``seq + 1`` and snapshots it as JSON (signed 64-bit at most).
MAX_SEQ = 2**63 - 2


class SchemaError(FedtwinError, ValueError):
    """A message that does not follow its schema; ``reason`` is the short text that goes to the DLQ."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SensorChunk:
    """One decoded sensor message: ``signals`` maps each name of SIGNALS to a float64 array of n samples."""

    asset: str
    seq: int
    t0: float
    fs: float
    signals: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        """Number of samples per signal."""
        return int(self.signals[SIGNALS[0]].shape[0])

    @property
    def t_end(self) -> float:
        """Epoch time just after the last sample."""
        return self.t0 + self.n / self.fs


def dumps(obj: Any) -> bytes:
    """Serialise plain data (and numpy arrays) to compact JSON bytes."""
    if _orjson is not None:
        data: bytes = _orjson.dumps(obj, option=_orjson.OPT_SERIALIZE_NUMPY)
        return data
    return json.dumps(obj, separators=(",", ":"), default=_np_default, allow_nan=False).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes; NaN/Infinity literals are rejected on both paths."""
    if _orjson is not None:
        return _orjson.loads(data)
    return json.loads(data, parse_constant=_reject_constant)


def _np_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def encode_chunk(
    asset: str,
    seq: int,
    t0: float,
    fs: float,
    signals: Mapping[str, npt.ArrayLike],
    *,
    decimals: int | None = None,
) -> bytes:
    """Encode one chunk as a v1 sensor message; ``decimals`` rounds samples to shrink the message.

    Raises
    ------
    SchemaError
        If the header or the array shapes would not decode (so producers fail loudly instead of feeding the
        DLQ). Sample values are not range-checked here: a faulty sensor's reading is data for the DLQ, not a
        reason to stop the plant.
    """
    msg: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "asset": asset,
        "seq": int(seq),
        "t0": float(t0),
        "fs": float(fs),
    }
    n = None
    for name in SIGNALS:
        if name not in signals:
            raise SchemaError(f"missing signal {name!r}")
        arr = np.asarray(signals[name], dtype=np.float64)
        if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
            raise SchemaError(f"signal {name!r} must be 1-D with the same length as the others")
        n = arr.shape[0]
        msg[name] = np.round(arr, decimals) if decimals is not None else arr
    _check_header(msg)
    if n is None or not 1 <= n <= MAX_SAMPLES:
        raise SchemaError(f"chunk length must be 1..{MAX_SAMPLES}, got {n}")
    return dumps(msg)


def _check_header(msg: dict[str, Any]) -> tuple[str, int, float, float]:
    v = msg.get("v")
    if type(v) is not int or v != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema version {v!r} (expected {SCHEMA_VERSION})")
    asset = msg.get("asset")
    if not isinstance(asset, str) or not 0 < len(asset) <= MAX_ASSET_LEN:
        raise SchemaError(f"'asset' must be a non-empty string of at most {MAX_ASSET_LEN} characters")
    seq = msg.get("seq")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise SchemaError(f"'seq' must be an integer in 0..{MAX_SEQ}, got {seq!r}")
    t0: Any = msg.get("t0")
    if type(t0) not in (int, float) or not math.isfinite(t0):
        raise SchemaError(f"'t0' must be a finite number, got {t0!r}")
    fs: Any = msg.get("fs")
    if type(fs) not in (int, float) or not math.isfinite(fs) or fs <= 0:
        raise SchemaError(f"'fs' must be a positive finite number, got {fs!r}")
    return asset, seq, float(t0), float(fs)


def _parse_message(data: bytes | bytearray | memoryview | None) -> tuple[dict[str, Any], bool]:
    """The message's JSON object and whether it is plain text (see :func:`_plain_text`); a repeated key in
    a message that is not plain raises."""
    if data is None:
        raise SchemaError("empty message (null value)")
    raw = bytes(data) if not isinstance(data, bytes) else data
    try:
        msg = loads(raw)
    except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError subclasses ValueError
        raise SchemaError(f"invalid JSON: {str(exc).splitlines()[0][:160]}") from None
    if not isinstance(msg, dict):
        raise SchemaError(f"expected a JSON object, got {type(msg).__name__}")
    # The usual message is plain text; anything else gets the exact (slower) checks: a repeated key, and a
    # boolean in an array (numpy takes [1, true] as [1, 1]).
    plain = _plain_text(raw, msg)
    if not plain:
        _check_unique_keys(raw)
    return msg, plain


def _plain_signals(msg: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """All signals of a plain-text message with one conversion and one range test, or None when anything is
    in doubt (the caller then takes the detailed way, which names the problem)."""
    try:
        block = np.array([msg.get(name) for name in SIGNALS], dtype=np.float64)
    except (ValueError, TypeError):
        return None
    if (
        block.ndim == 2
        and 1 <= block.shape[1] <= MAX_SAMPLES
        # False for NaN: min and max propagate it
        and all(lo <= x for lo, x in zip(_RANGE_LO, block.min(axis=1).tolist(), strict=True))
        and all(x <= hi for hi, x in zip(_RANGE_HI, block.max(axis=1).tolist(), strict=True))
    ):
        return {name: block[j] for j, name in enumerate(SIGNALS)}
    return None


def _signal_array(name: str, values: Any, plain: bool) -> np.ndarray:
    """One signal's samples as a 1-D numeric array (int or float dtype), or a :class:`SchemaError`."""
    if not isinstance(values, list):
        raise SchemaError(f"missing or non-array signal {name!r}")
    if not plain and any(type(x) is bool for x in values):
        raise SchemaError(f"signal {name!r} is not a flat array of numbers (it holds a boolean)")
    try:
        arr = np.array(values)
    except (ValueError, TypeError):
        raise SchemaError(f"signal {name!r} is not a flat array of numbers") from None
    # A list of numbers gives an int or float dtype; strings, nulls, nesting or huge ints give another.
    if arr.ndim != 1 or arr.dtype.kind not in "if":
        raise SchemaError(f"signal {name!r} is not a flat array of numbers")
    return arr


def decode_chunk(data: bytes | bytearray | memoryview | None) -> SensorChunk:
    """Parse and validate a v1 sensor message.

    Raises
    ------
    SchemaError
        With a one-line reason: bad JSON, a repeated field, wrong version, missing/ill-typed field, length
        mismatch, a boolean sample, NaN/inf or a sample outside its ``PHYSICAL_RANGES``.
    """
    msg, plain = _parse_message(data)
    asset, seq, t0, fs = _check_header(msg)
    if plain:  # one conversion and one range test for all signals; any doubt goes the detailed way below
        fast = _plain_signals(msg)
        if fast is not None:
            return SensorChunk(asset, seq, t0, fs, fast)
    signals: dict[str, np.ndarray] = {}
    n = -1
    for name in SIGNALS:
        arr = _signal_array(name, msg.get(name), plain)
        if n < 0:
            n = arr.shape[0]
            if not 1 <= n <= MAX_SAMPLES:
                raise SchemaError(f"chunk length must be 1..{MAX_SAMPLES}, got {n}")
        elif arr.shape[0] != n:
            raise SchemaError(f"signal {name!r} has {arr.shape[0]} samples, {SIGNALS[0]!r} has {n}")
        arr = arr.astype(np.float64, copy=False)
        _check_range(name, arr)
        signals[name] = arr
    return SensorChunk(asset=asset, seq=seq, t0=t0, fs=fs, signals=signals)


def _check_range(name: str, arr: np.ndarray) -> None:
    """Refuse NaN/inf (the standard library parser lets them through) and physically impossible samples."""
    lo, hi = PHYSICAL_RANGES[name]
    if lo <= arr.min() and arr.max() <= hi:  # False for NaN too (min and max propagate it)
        return
    bad = arr[~((arr >= lo) & (arr <= hi))]
    if not np.isfinite(bad).all():
        raise SchemaError(f"signal {name!r} contains NaN or infinity")
    raise SchemaError(
        f"signal {name!r} has {bad.size} samples outside its physical range [{lo:g}, {hi:g}] {UNITS[name]}"
        f" (e.g. {bad[0]:g})"
    )


def _plain_text(raw: bytes, msg: dict[str, Any]) -> bool:
    """True when ``raw`` is exactly the text of the parsed ``msg`` with number-only signal arrays.

    Without escapes, JSON text holds two quote characters per key and per string, a ``u`` for every ``u`` in
    them and every ``true``/``null``, an ``l`` likewise for ``false``/``null`` (numbers have neither letter).
    The parsed object loses a duplicate key and the arrays may hide a boolean, and either leaves more of these
    characters in the text than the object accounts for. Counting bytes is far cheaper than a second parse.
    """
    if b"\\" in raw:
        return False
    keys = "".join(msg)
    counts = [2 * len(msg), keys.count("u"), keys.count("l")]
    for key, value in msg.items():
        if type(value) not in (int, float) and not (key in SIGNALS and type(value) is list):
            _count_text(value, counts)
    return [raw.count(b'"'), raw.count(b"u"), raw.count(b"l")] == counts


def _count_text(value: Any, counts: list[int]) -> None:
    """Add the quotes, ``u`` and ``l`` of ``value``'s unescaped JSON text to ``counts``."""
    if isinstance(value, str):
        counts[0] += 2
        counts[1] += value.count("u")
        counts[2] += value.count("l")
    elif value is None or isinstance(value, bool):  # null, true, false
        counts[1] += value is not False
        counts[2] += 2 if value is None else value is False
    elif isinstance(value, dict):
        for k, v in value.items():
            _count_text(k, counts)
            _count_text(v, counts)
    elif isinstance(value, list):
        for v in value:
            _count_text(v, counts)


def _check_unique_keys(raw: bytes) -> None:
    """Refuse a message that gives a key twice, at any depth (JSON parsers keep the last copy silently)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                raise SchemaError(f"field {key!r} appears more than once")
            seen.add(key)
        return dict(items)

    try:
        json.loads(raw, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except SchemaError:
        raise
    except ValueError:  # only reached for text orjson accepted: the check cannot decide, keep its verdict
        return


def encode_alert(alert: Mapping[str, Any]) -> bytes:
    """Alert dict (as built by the scoring engine) to JSON bytes."""
    return dumps(dict(alert))


def decode_alert(data: bytes) -> dict[str, Any]:
    """Parse an alert; raises SchemaError when it is not a v1 alert."""
    try:
        msg = loads(data)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"invalid JSON: {exc}") from None
    if (
        not isinstance(msg, dict)
        or msg.get("v") != ALERT_VERSION
        or msg.get("kind") not in ("raise", "clear")
    ):
        raise SchemaError("not a v1 alert")
    return msg


#: Longest reason or key text a bounded dead letter keeps (characters).
MAX_DLQ_TEXT = 1000


def dlq_record(
    raw: bytes | None,
    reason: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None = None,
    max_value_bytes: int | None = None,
) -> bytes:
    """Wrapper JSON of a rejected message: reason, origin and the original bytes in base64.

    With ``max_value_bytes`` the record stays bounded whatever was rejected: the value is cut to that many
    bytes (``value_truncated``; ``value_size`` and ``value_sha256`` describe the whole original) and the
    reason and key to ``MAX_DLQ_TEXT`` characters, so producing it cannot exceed a producer's message limit.
    """
    value = raw
    if raw is not None and max_value_bytes is not None and len(raw) > max_value_bytes:
        value = raw[: max(0, max_value_bytes)]
    key_text = key.decode("utf-8", "replace") if key is not None else None
    if max_value_bytes is not None:
        reason = reason[:MAX_DLQ_TEXT]
        key_text = key_text[:MAX_DLQ_TEXT] if key_text is not None else None
    return dumps(
        {
            "v": 1,
            "reason": reason,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": key_text,
            "value_b64": base64.b64encode(value).decode("ascii") if value is not None else None,
            "value_size": len(raw) if raw is not None else None,
            "value_sha256": hashlib.sha256(raw).hexdigest() if raw is not None else None,
            "value_truncated": value is not raw,
            "rejected_at": time.time(),
        }
    )


def truth_record(
    asset: str,
    faults: Mapping[str, float],
    seq: int,
    t: float,
    *,
    operating_point: Mapping[str, float] | None = None,
    rev: float | None = None,
    sensor: Mapping[str, Any] | None = None,
) -> bytes:
    """Ground truth: fault severities (0 = absent) on ``asset`` from chunk ``seq`` (epoch time ``t``) on.

    ``sensor`` (only when a sensor is faulty: ``stuck``/``drift`` signal names, ``drift_rate``) is an extra
    field: a lying sensor is not a fault label, so ``active`` does not list it.
    """
    sev = {k: float(v) for k, v in faults.items()}
    extra = {"sensor": dict(sensor)} if sensor is not None else {}
    return dumps(
        {
            "v": 1,
            "asset": asset,
            "faults": sev,
            "active": [k for k, v in sev.items() if v > 0],
            "operating_point": dict(operating_point) if operating_point is not None else None,
            "seq": int(seq),
            "t": float(t),
            "rev": rev,
            **extra,
        }
    )


#: Version of the decision record (one per scored window per model, on ``Settings.decision_topic``).
DECISION_VERSION = 1
_DECISION_FIELDS = ("v", "asset", "model", "version", "role", "seq", "t", "ts", "faults", "scores")


def encode_decision(decision: Mapping[str, Any]) -> bytes:
    """Decision dict (as built by ``fedtwin.streaming.scoring.decision_records``) to JSON bytes."""
    return dumps(dict(decision))


def _decision_types_ok(msg: dict[str, Any]) -> bool:
    number = (int, float)
    return (
        isinstance(msg["asset"], str)
        and isinstance(msg["model"], str)
        and type(msg["version"]) is int
        and type(msg["seq"]) is int
        and type(msg["t"]) in number
        and type(msg["ts"]) in number
        and isinstance(msg["faults"], list)
        and all(isinstance(f, str) for f in msg["faults"])
        and isinstance(msg["scores"], dict)
        and all(isinstance(k, str) and type(v) in number for k, v in msg["scores"].items())
    )


def decode_decision(data: bytes) -> dict[str, Any]:
    """Parse a decision record strictly: exactly the v1 fields, each of its type; SchemaError otherwise.

    ``{"v": 1, "asset": str, "model": str, "version": int, "role": "champion"|"shadow", "seq": int,
    "t": float, "ts": float, "faults": [str, ...], "scores": {fault: float}}``
    """
    try:
        msg = loads(data)
    except (ValueError, TypeError) as exc:
        raise SchemaError(f"invalid JSON: {exc}") from None
    if not isinstance(msg, dict) or msg.get("v") != DECISION_VERSION or type(msg.get("v")) is not int:
        raise SchemaError(f"not a v{DECISION_VERSION} decision record")
    if sorted(msg) != sorted(_DECISION_FIELDS):
        raise SchemaError(f"decision fields {sorted(msg)} are not {sorted(_DECISION_FIELDS)}")
    if msg["role"] not in ("champion", "shadow"):
        raise SchemaError(f"decision role {msg['role']!r} is not 'champion' or 'shadow'")
    if not _decision_types_ok(msg):
        raise SchemaError("decision record has a field of the wrong type")
    return msg
