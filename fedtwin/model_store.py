"""Models in Redis: immutable signed records plus one atomically switched pointer. No pickle crosses Redis.

Layout under the key prefix ``P``:

- ``P model:<version>:meta``: JSON metadata (name, created, the array manifest, sha256, signature);
- ``P model:<version>:arrays``: an ``.npz`` archive written and read with ``allow_pickle=False``;
- ``P model:version_seq``: a counter for new versions;
- ``P model:current``: the serving version (the pointer), switched by one ``SET``;
- channel ``P model:events``: the new serving version is published on every promotion.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fedtwin.errors import InvalidModel

if TYPE_CHECKING:
    import redis

    from fedtwin.settings import Settings


@dataclass(frozen=True)
class StoredModel:
    """A verified model record."""

    version: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


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


def sign(blob: bytes, meta_core: dict[str, Any], key: bytes) -> tuple[str, str]:
    """sha256 of the arrays and an HMAC-SHA256 over that digest and the canonical metadata."""
    digest = hashlib.sha256(blob).hexdigest()
    msg = digest.encode() + b"\n" + json.dumps(meta_core, sort_keys=True, separators=(",", ":")).encode()
    return digest, hmac.new(key, msg, hashlib.sha256).hexdigest()


def verify(blob: bytes, record: dict[str, Any], key: bytes) -> None:
    """Raise InvalidModel unless checksum and signature match."""
    core = record.get("meta")
    if not isinstance(core, dict):
        raise InvalidModel("model record has no metadata")
    digest, signature = sign(blob, core, key)
    if not hmac.compare_digest(digest, str(record.get("sha256", ""))):
        raise InvalidModel("model arrays do not match their sha256 checksum")
    if not hmac.compare_digest(signature, str(record.get("signature", ""))):
        raise InvalidModel("model signature does not verify with this signing key")


class ModelStore:
    """Publish, verify and load models in Redis."""

    def __init__(self, client: redis.Redis, prefix: str, signing_key: bytes) -> None:
        self.client = client
        self.prefix = prefix
        self._key = signing_key
        self.channel = f"{prefix}model:events"

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelStore:
        """Store on the configured Redis."""
        from fedtwin.redis_io import redis_client

        client = redis_client(settings, socket_timeout=5)
        return cls(client, settings.redis_prefix, settings.signing_key_bytes())

    def _k(self, *parts: str) -> str:
        return self.prefix + "model:" + ":".join(parts)

    def put(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> int:
        """Write a new immutable version (not yet serving) and return its number."""
        blob = pack_arrays(arrays)
        core = json.loads(json.dumps(meta))  # canonical, JSON-only
        digest, signature = sign(blob, core, self._key)
        version = int(self.client.incr(self._k("version_seq")))
        record = {
            "version": version,
            "created": time.time(),
            "meta": core,
            "sha256": digest,
            "signature": signature,
        }
        pipe = self.client.pipeline(transaction=True)
        # SETNX semantics: an existing version is never overwritten.
        pipe.set(self._k(str(version), "arrays"), blob, nx=True)
        pipe.set(self._k(str(version), "meta"), json.dumps(record), nx=True)
        ok = pipe.execute()
        if not all(ok):
            raise InvalidModel(f"model version {version} already exists; refusing to overwrite it")
        return version

    def promote(self, version: int) -> None:
        """Make ``version`` the serving one (after verifying it) and announce it."""
        self.load(version)
        self.client.set(self._k("current"), str(version))
        self.client.publish(self.channel, str(version))

    def publish(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> int:
        """Put and promote in one call."""
        version = self.put(arrays, meta)
        self.promote(version)
        return version

    def current_version(self) -> int | None:
        """The serving version, or None when nothing was promoted."""
        raw = self.client.get(self._k("current"))
        return int(raw) if raw is not None else None

    def load(self, version: int | None = None) -> StoredModel:
        """Load and verify a version (default: the serving one)."""
        if version is None:
            version = self.current_version()
            if version is None:
                raise InvalidModel(f"no model promoted yet under {self._k('current')}: run the training flow")
        raw_meta, blob = self.client.mget(self._k(str(version), "meta"), self._k(str(version), "arrays"))
        if raw_meta is None or blob is None:
            raise InvalidModel(f"model version {version} is missing from Redis")
        try:
            record = json.loads(raw_meta)
        except json.JSONDecodeError as exc:
            raise InvalidModel(f"model version {version}: metadata is not JSON ({exc})") from exc
        verify(blob, record, self._key)
        try:
            arrays = unpack_arrays(blob)
        except ValueError as exc:
            raise InvalidModel(f"model version {version}: arrays unreadable ({exc})") from exc
        return StoredModel(version=version, arrays=arrays, meta=record["meta"])

    def versions(self) -> list[int]:
        """All stored versions, ascending."""
        keys = self.client.scan_iter(match=self._k("*", "meta"), count=500)
        out = []
        for k in keys:
            part = (k.decode() if isinstance(k, bytes) else k)[len(self._k("")) :].split(":")[0]
            if part.isdigit():
                out.append(int(part))
        return sorted(out)
