"""Models in Redis: immutable signed records and one signed, atomically switched pointer; no pickle.

Layout under the key prefix ``P``:

- ``P model:<version>:meta``: the record (JSON): format, name, version, creation time, the metadata, the
  arrays' sha256 and an HMAC-SHA256 over all of them;
- ``P model:<version>:arrays``: an ``.npz`` archive written and read with ``allow_pickle=False``;
- ``P model:version_seq`` and ``P model:pointer_seq``: counters for new versions and pointer generations;
- ``P model:current``: the pointer (JSON): the serving version, its generation, a rollback flag, the time it
  was set and an HMAC over them, switched by one ``SET``;
- ``P model:shadow:<slot>``: the pointer of shadow slot ``<slot>`` (a model scored beside the champion that
  never alerts): the same pointer with the slot name inside the signed fields, so a shadow pointer cannot be
  passed off as the serving one or as another slot's (nor the reverse);
- channel ``P model:events``: the new serving version is published on every promotion (channel
  ``P model:events:shadow`` gets ``<slot>:<version>`` for shadows).

Record format 2 (this one) signs the name, version and creation time with the arrays' hash, so a valid record
copied under another version number no longer verifies; format 1 records and the bare-integer pointer of
earlier releases do not carry that protection and are refused (publish or promote again to upgrade).

Who may switch the model: only a holder of the signing key can write a pointer that verifies. A reader
(``load_serving``) takes a pointer to a lower version than the one it serves only when the pointer is signed
as a rollback (``rollback_to``), and never a pointer older (lower generation) than one it already accepted, so
replaying an old pointer, even a signed rollback, cannot move a running scorer. Every problem with what is in
Redis (garbage, wrong key, tampering, NaN in the arrays, a downgrade) raises :class:`InvalidModel`; Redis
connection errors propagate unchanged so the caller can retry.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fedtwin.adapters.redis_io import redis_client
from fedtwin.errors import InvalidModel

if TYPE_CHECKING:
    import redis

    from fedtwin.settings import Settings

#: Format of records and pointers written by this module.
RECORD_FORMAT = 2


@dataclass(frozen=True)
class StoredModel:
    """A verified model record: its arrays, its metadata, and the signed name and creation time."""

    version: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    name: str = ""
    created: float = 0.0


@dataclass(frozen=True)
class Pointer:
    """A verified serving pointer: ``version`` to serve, its ``generation`` (strictly increasing per store)
    and whether it was written as an explicit ``rollback`` to a lower version."""

    version: int
    generation: int
    rollback: bool
    set_at: float
    slot: str = ""  # "" = the serving (champion) pointer, else the shadow slot it points for


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays as an npz archive (numeric dtypes only, so loading needs no pickle)."""
    for name, arr in arrays.items():
        if np.asarray(arr).dtype.hasobject:
            raise ValueError(f"array {name!r} has an object dtype; only numeric arrays can be stored")
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buf.getvalue()


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """Inverse of :func:`pack_arrays`; refuses pickled content."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def check_finite(arrays: dict[str, np.ndarray]) -> None:
    """Raise InvalidModel naming the first array holding NaN or infinity (such a model never alerts)."""
    for name, arr in arrays.items():
        a = np.asarray(arr)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise InvalidModel(f"model array {name!r} contains NaN or infinity")


def _hmac(key: bytes, kind: str, fields: dict[str, Any]) -> str:
    # ``kind`` separates record and pointer signatures: one can never be passed off as the other.
    body = json.dumps({"kind": kind, **fields}, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def sign_record(
    blob: bytes, meta: dict[str, Any], *, name: str, version: int, created: float, key: bytes
) -> dict[str, Any]:
    """The format-2 record of ``blob`` (packed arrays): the signature covers every field but itself."""
    fields = {
        "format": RECORD_FORMAT,
        "name": name,
        "version": version,
        "created": created,
        "meta": meta,
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    return {**fields, "signature": _hmac(key, "model", fields)}


def _field(record: dict[str, Any], name: str, types: tuple[type, ...], what: str) -> Any:
    value = record.get(name)
    if type(value) not in types:  # exact types: a bool is not an int here
        raise InvalidModel(
            f"{what}: field {name!r} is missing or not a {'/'.join(t.__name__ for t in types)}"
        )
    return value


def _parse_json_object(raw: bytes | str | None, what: str) -> dict[str, Any]:
    if raw is None:
        raise InvalidModel(f"{what} is missing")
    try:
        obj = json.loads(raw)
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidModel(f"{what} is not JSON ({str(exc)[:80]})") from None
    if not isinstance(obj, dict):
        raise InvalidModel(f"{what} is not a JSON object (got {type(obj).__name__})")
    return obj


def verify_record(raw_meta: bytes | str | None, blob: bytes | None, key: bytes, version: int) -> StoredModel:
    """Check a stored record against its arrays and the version it is stored under; return the model.

    Raises
    ------
    InvalidModel
        Missing or unparsable record, another format, a field of the wrong type, a version other than
        ``version``, a signature that does not verify with ``key``, arrays that do not match their sha256,
        are unreadable, or hold NaN/inf.
    """
    what = f"model version {version}"
    record = _parse_json_object(raw_meta, f"{what}: record")
    fmt = record.get("format", 1)
    if fmt != RECORD_FORMAT or type(fmt) is not int:
        raise InvalidModel(
            f"{what}: record format {fmt!r} is not {RECORD_FORMAT} (older records do not sign their "
            "version); publish the model again"
        )
    name = _field(record, "name", (str,), what)
    stored_version = _field(record, "version", (int,), what)
    created = _field(record, "created", (float, int), what)
    meta = _field(record, "meta", (dict,), what)
    digest = _field(record, "sha256", (str,), what)
    signature = _field(record, "signature", (str,), what)
    if not math.isfinite(created):  # the standard JSON parser reads NaN, Infinity and 1e400
        raise InvalidModel(f"{what}: field 'created' is not finite")
    if stored_version != version:
        raise InvalidModel(f"{what}: the record is signed as version {stored_version} (copied under another)")
    fields = {k: record[k] for k in ("format", "name", "version", "created", "meta", "sha256")}
    if not hmac.compare_digest(_hmac(key, "model", fields), signature):
        raise InvalidModel(f"{what}: signature does not verify with this signing key")
    if blob is None:
        raise InvalidModel(f"{what}: arrays are missing")
    if not hmac.compare_digest(hashlib.sha256(blob).hexdigest(), digest):
        raise InvalidModel(f"{what}: arrays do not match their sha256 checksum")
    try:
        arrays = unpack_arrays(blob)
    except Exception as exc:  # numpy raises ValueError, EOFError, BadZipFile or TypeError (a bare .npy)
        raise InvalidModel(f"{what}: arrays unreadable ({type(exc).__name__}: {exc})") from None
    try:
        check_finite(arrays)
    except InvalidModel as exc:
        raise InvalidModel(f"{what}: {exc}") from None
    return StoredModel(version=version, arrays=arrays, meta=meta, name=name, created=float(created))


_POINTER_FIELDS = ("format", "version", "generation", "rollback", "set_at")


def sign_pointer(
    version: int, generation: int, *, rollback: bool, set_at: float, key: bytes, slot: str = ""
) -> dict[str, Any]:
    """The signed pointer record naming ``version`` as the serving one, or as shadow ``slot``'s.

    The serving pointer has no ``slot`` field (pointers of earlier releases still verify); a shadow pointer
    signs its slot name with the other fields.
    """
    fields: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "version": version,
        "generation": generation,
        "rollback": rollback,
        "set_at": set_at,
    }
    if slot:
        fields["slot"] = slot
    return {**fields, "signature": _hmac(key, "pointer", fields)}


def verify_pointer(raw: bytes | str, key: bytes, slot: str = "") -> Pointer:
    """Parse and verify a pointer read for ``slot`` ("" = serving); InvalidModel on anything but a pointer
    signed with ``key`` for that slot."""
    what = f"shadow {slot!r} model pointer" if slot else "model pointer"
    record = _parse_json_object(raw, what)
    if record.get("format") != RECORD_FORMAT or type(record.get("format")) is not int:
        raise InvalidModel(f"{what} is not a signed format-{RECORD_FORMAT} pointer; promote a version again")
    version = _field(record, "version", (int,), what)
    generation = _field(record, "generation", (int,), what)
    rollback = _field(record, "rollback", (bool,), what)
    set_at = _field(record, "set_at", (float, int), what)
    signature = _field(record, "signature", (str,), what)
    if version < 1 or generation < 1:
        raise InvalidModel(f"{what}: version and generation must be >= 1")
    signed_slot = record.get("slot", "")
    if signed_slot != slot:
        raise InvalidModel(f"{what}: the pointer is for {_slot_text(signed_slot)}, not {_slot_text(slot)}")
    fields = {k: record[k] for k in _POINTER_FIELDS + (("slot",) if slot else ())}
    if not hmac.compare_digest(_hmac(key, "pointer", fields), signature):
        raise InvalidModel(f"{what}: signature does not verify with this signing key")
    return Pointer(version=version, generation=generation, rollback=rollback, set_at=float(set_at), slot=slot)


def _slot_text(slot: object) -> str:
    return f"shadow slot {str(slot)[:40]!r}" if slot else "the serving model"


class ModelStore:
    """Publish, verify and load models in Redis.

    Writers call :meth:`put` + :meth:`promote` (or :meth:`publish`) and :meth:`rollback_to`; a scorer calls
    :meth:`load_serving` with the version it serves, on a store instance it keeps (the instance remembers the
    newest pointer generation it accepted).
    """

    def __init__(self, client: redis.Redis, prefix: str, signing_key: bytes) -> None:
        self.client = client
        self.prefix = prefix
        self._key = signing_key
        self.channel = f"{prefix}model:events"
        self._generation_seen: dict[str, int] = {}  # per slot ("" = serving)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        """Store on the configured Redis."""
        client = redis_client(settings, socket_timeout=5)
        return cls(client, settings.redis_prefix, settings.signing_key_bytes())

    def _k(self, *parts: str) -> str:
        return self.prefix + "model:" + ":".join(parts)

    def _pointer_key(self, slot: str) -> str:
        return self._k("shadow", slot) if slot else self._k("current")

    # ------------------------------------------------------------------ writing
    def put(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], *, name: str | None = None) -> int:
        """Write a new immutable version (not yet serving) and return its number.

        ``name`` defaults to ``meta["name"]``, else ``meta["registered_model"]``, else ``""``. Raises
        InvalidModel for arrays holding NaN/inf or metadata that is not plain JSON.
        """
        check_finite(arrays)
        blob = pack_arrays(arrays)
        try:
            core = json.loads(json.dumps(meta, allow_nan=False))  # canonical, JSON-only
        except (TypeError, ValueError) as exc:
            raise InvalidModel(f"model metadata is not plain JSON: {exc}") from None
        if not isinstance(core, dict):
            raise InvalidModel(f"model metadata must be a JSON object, got {type(core).__name__}")
        label = str(name if name is not None else core.get("name") or core.get("registered_model") or "")
        version = int(self.client.incr(self._k("version_seq")))
        record = sign_record(blob, core, name=label, version=version, created=time.time(), key=self._key)
        pipe = self.client.pipeline(transaction=True)
        # SETNX semantics: an existing version is never overwritten.
        pipe.set(self._k(str(version), "arrays"), blob, nx=True)
        pipe.set(self._k(str(version), "meta"), json.dumps(record), nx=True)
        ok = pipe.execute()
        if not all(ok):
            raise InvalidModel(f"model version {version} already exists; refusing to overwrite it")
        return version

    def promote(self, version: int, *, rollback: bool = False, slot: str = "") -> None:
        """Make ``version`` the serving one (or shadow ``slot``'s, when given) after verifying it, with a new
        signed pointer, and announce it.

        Raises
        ------
        InvalidModel
            If the version does not verify, or is lower than the one the slot points to and ``rollback`` is
            False.
        """
        self.load(version)
        try:
            serving = self.pointer(slot)
        except InvalidModel:  # a garbage pointer is replaced by this (signed) one
            serving = None
        if serving is not None and version < serving.version and not rollback:
            raise InvalidModel(
                f"version {version} is older than the {'shadow ' + slot if slot else 'serving'} version "
                f"{serving.version}; "
                f"roll back explicitly (rollback_to({version}))"
            )
        generation = int(self.client.incr(self._k("pointer_seq")))
        record = sign_pointer(
            version, generation, rollback=rollback, set_at=time.time(), key=self._key, slot=slot
        )
        self.client.set(self._pointer_key(slot), json.dumps(record))
        if slot:
            self.client.publish(self.channel + ":shadow", f"{slot}:{version}")
        else:
            self.client.publish(self.channel, str(version))

    def rollback_to(self, version: int, *, slot: str = "") -> None:
        """Serve an older ``version``: a pointer signed with the rollback flag, which scorers accept."""
        self.promote(version, rollback=True, slot=slot)

    def clear_shadow(self, slot: str) -> bool:
        """Stop shadow ``slot`` (scorers drop it at their next pointer check); False if it had no pointer."""
        return bool(self.client.delete(self._pointer_key(slot)))

    def shadow_slots(self) -> list[str]:
        """Names of the shadow slots that have a pointer, sorted (their pointers are not verified here)."""
        head = self._k("shadow", "")
        names = []
        for k in self.client.scan_iter(match=head + "*", count=500):
            names.append((k.decode() if isinstance(k, bytes) else k)[len(head) :])
        return sorted(names)

    def publish(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> int:
        """Put and promote in one call."""
        version = self.put(arrays, meta)
        self.promote(version)
        return version

    def _ref_key(self, version: int) -> str:
        # Kept at <prefix>reference:<version> (the layout the drift monitor has always read).
        return f"{self.prefix}reference:{version}"

    def put_reference(self, version: int, X: np.ndarray, feature_names: list[str]) -> str:
        """Store the healthy feature windows the drift monitor compares version ``version``'s stream with.

        Raises
        ------
        ValueError
            When ``X`` is not a 2-D array with one column per name, or holds a non-finite value.
        """
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != len(feature_names):
            raise ValueError(
                f"reference of shape {X.shape} does not match {len(feature_names)} feature names"
            )
        if not np.isfinite(X).all():
            raise ValueError("reference windows hold non-finite values")
        key = self._ref_key(version)
        self.client.mset({key: pack_arrays({"X": X}), key + ":features": json.dumps(list(feature_names))})
        return key

    def load_reference(self, version: int) -> tuple[np.ndarray, list[str]] | None:
        """The drift reference of ``version`` (windows, feature names), or None when it has none."""
        key = self._ref_key(version)
        blob, names = self.client.mget(key, key + ":features")
        if blob is None or names is None:
            return None
        return unpack_arrays(blob)["X"], list(json.loads(names))

    # ------------------------------------------------------------------ reading
    def pointer(self, slot: str = "") -> Pointer | None:
        """The verified serving pointer (or shadow ``slot``'s), or None when nothing was promoted there
        (InvalidModel if it is bad)."""
        raw = self.client.get(self._pointer_key(slot))
        return None if raw is None else verify_pointer(raw, self._key, slot)

    def current_version(self) -> int | None:
        """The serving version, or None when nothing was promoted (InvalidModel if the pointer is bad)."""
        ptr = self.pointer()
        return None if ptr is None else ptr.version

    def load(self, version: int | None = None) -> StoredModel:
        """Load and verify a version (default: the serving one)."""
        if version is None:
            version = self.current_version()
            if version is None:
                raise InvalidModel(f"no model promoted yet under {self._k('current')}: run the training flow")
        raw_meta, blob = self.client.mget(self._k(str(version), "meta"), self._k(str(version), "arrays"))
        if raw_meta is None or blob is None:
            raise InvalidModel(f"model version {version} is missing from Redis")
        return verify_record(raw_meta, blob, self._key, version)

    def load_serving(self, current_version: int | None = None, *, slot: str = "") -> StoredModel | None:
        """The model to switch to, or None when the pointer is absent or names ``current_version``.

        ``current_version`` is the version the caller serves (None: nothing yet) in ``slot`` ("" = the
        champion, else a shadow slot; each slot has its own pointer). A pointer to a lower version is taken
        only when signed as a rollback, and a pointer of an older generation than one this store instance
        already accepted for the slot is refused (a replay).

        Raises
        ------
        InvalidModel
            For any problem with the pointer or the record (the caller keeps its current model).
        """
        ptr = self.pointer(slot)
        if ptr is None:
            return None
        seen = self._generation_seen.get(slot, 0)
        if ptr.generation < seen:
            raise InvalidModel(
                f"model pointer generation {ptr.generation} is older than {seen}, "
                "already served: a replayed pointer"
            )
        if ptr.version == current_version:
            self._generation_seen[slot] = ptr.generation
            return None
        if current_version is not None and ptr.version < current_version and not ptr.rollback:
            raise InvalidModel(
                f"model pointer names version {ptr.version}, older than the served {current_version}, "
                "without a signed rollback"
            )
        stored = self.load(ptr.version)
        self._generation_seen[slot] = ptr.generation
        return stored

    def versions(self) -> list[int]:
        """All stored versions, ascending."""
        keys = self.client.scan_iter(match=self._k("*", "meta"), count=500)
        out = []
        for k in keys:
            part = (k.decode() if isinstance(k, bytes) else k)[len(self._k("")) :].split(":")[0]
            if part.isdigit():
                out.append(int(part))
        return sorted(out)
