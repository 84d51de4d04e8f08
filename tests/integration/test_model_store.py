"""The Redis model store against the real Redis server: publishing, promotion, rollback, and what a reader
does with whatever someone with write access to Redis (but not the signing key) puts there."""

import json
import threading
import uuid
from typing import Any

import numpy as np
import pytest
import redis

from fedtwin.adapters.model_store import ModelStore, sign_pointer
from fedtwin.errors import InvalidModel

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(redis_url: str):  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_url)
    prefix = f"fedtwin-test-store-{uuid.uuid4().hex}:"
    yield ModelStore(client, prefix, b"test-key")
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def reader(store: ModelStore) -> ModelStore:
    """A second store on the same keys, as a scorer process would hold one."""
    return ModelStore(store.client, store.prefix, b"test-key")


def refused(fn, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidModel) as exc:
        fn(*args, **kwargs)
    return str(exc.value)


def test_publish_load_and_pointer(store: ModelStore) -> None:
    assert store.current_version() is None and store.pointer() is None
    assert (
        refused(store.load)
        == f"no model promoted yet under {store.prefix}model:current: run the training flow"
    )
    v1 = store.publish({"w": np.ones(3)}, {"name": "m", "faults": ["leak"]})
    v2 = store.publish({"w": np.full(3, 2.0)}, {"registered_model": "reg", "faults": ["leak"]})
    assert (v1, v2) == (1, 2)
    assert store.current_version() == 2
    ptr = store.pointer()
    assert ptr is not None and (ptr.version, ptr.generation, ptr.rollback) == (2, 2, False)
    latest = store.load()
    np.testing.assert_array_equal(latest.arrays["w"], np.full(3, 2.0))
    assert (latest.version, latest.name, latest.meta["faults"]) == (2, "reg", ["leak"])
    first = store.load(1)
    np.testing.assert_array_equal(first.arrays["w"], np.ones(3))
    assert first.name == "m" and first.created > 1.7e9
    assert store.versions() == [1, 2]


def test_put_does_not_serve_and_names_the_model(store: ModelStore) -> None:
    v = store.put({"w": np.ones(2)}, {"name": "from-meta"}, name="explicit")
    assert store.current_version() is None and store.load(v).name == "explicit"
    assert store.load(store.put({"w": np.ones(2)}, {})).name == ""


def test_put_refuses_non_finite_arrays_and_non_json_metadata(store: ModelStore) -> None:
    assert refused(store.put, {"w": np.array([np.nan])}, {}) == "model array 'w' contains NaN or infinity"
    assert refused(store.put, {"w": np.ones(1)}, {"x": float("inf")}).startswith(
        "model metadata is not plain JSON"
    )
    assert refused(store.put, {"w": np.ones(1)}, {"x": object()}).startswith(
        "model metadata is not plain JSON"
    )
    not_a_dict: Any = [1, 2]
    assert (
        refused(store.put, {"w": np.ones(1)}, not_a_dict) == "model metadata must be a JSON object, got list"
    )
    assert store.versions() == []


def test_tampered_record_is_not_promoted_and_keeps_pointer(store: ModelStore) -> None:
    good = store.publish({"w": np.ones(3)}, {"name": "m"})
    bad = store.put({"w": np.zeros(3)}, {"name": "m"})
    store.client.set(store._k(str(bad), "arrays"), b"not an npz")
    assert refused(store.promote, bad) == f"model version {bad}: arrays do not match their sha256 checksum"
    assert store.current_version() == good


@pytest.mark.parametrize("part", ["meta", "arrays"])
def test_an_existing_version_is_never_overwritten(store: ModelStore, part: str) -> None:
    store.client.set(store._k("2", part), b"squatter")
    store.client.set(store._k("version_seq"), 1)
    assert (
        refused(store.put, {"w": np.ones(1)}, {})
        == "model version 2 already exists; refusing to overwrite it"
    )
    assert store.client.get(store._k("2", part)) == b"squatter"


def test_promotion_refuses_a_lower_version_unless_rolled_back(store: ModelStore) -> None:
    v1 = store.publish({"w": np.ones(1)}, {})
    v2 = store.publish({"w": np.full(1, 2.0)}, {})
    assert refused(store.promote, v1) == (
        f"version {v1} is older than the serving version {v2}; roll back explicitly (rollback_to({v1}))"
    )
    assert store.current_version() == v2
    store.promote(v2)  # promoting the serving version again is allowed (idempotent retries)
    store.rollback_to(v1)
    ptr = store.pointer()
    assert ptr is not None and (ptr.version, ptr.rollback) == (v1, True)


def test_a_scorer_follows_promotions_and_signed_rollbacks(store: ModelStore) -> None:
    scorer = reader(store)
    assert scorer.load_serving(None) is None  # nothing promoted yet
    v1 = store.publish({"w": np.ones(1)}, {})
    got = scorer.load_serving(None)
    assert got is not None and got.version == v1
    assert scorer.load_serving(v1) is None  # unchanged
    v2 = store.publish({"w": np.full(1, 2.0)}, {})
    got = scorer.load_serving(v1)
    assert got is not None and got.version == v2 and got.arrays["w"].tolist() == [2.0]
    store.rollback_to(v1)
    got = scorer.load_serving(v2)
    assert got is not None and got.version == v1


def test_an_old_pointer_written_back_does_not_downgrade_a_scorer(store: ModelStore) -> None:
    """With write access to Redis only: copy the version-1 pointer back over the version-2 one."""
    scorer = reader(store)
    store.publish({"w": np.ones(1)}, {})
    old_pointer = store.client.get(store._k("current"))
    store.publish({"w": np.full(1, 2.0)}, {})
    assert scorer.load_serving(None).version == 2  # type: ignore[union-attr]
    store.client.set(store._k("current"), old_pointer)
    assert refused(scorer.load_serving, 2) == (
        "model pointer generation 1 is older than 2, already served: a replayed pointer"
    )
    # A scorer that starts now has no memory of generation 2 but still refuses to go below what it serves.
    fresh = reader(store)
    assert refused(fresh.load_serving, 2) == (
        "model pointer names version 1, older than the served 2, without a signed rollback"
    )


def test_a_replayed_rollback_pointer_is_refused_after_a_newer_promotion(store: ModelStore) -> None:
    scorer = reader(store)
    store.publish({"w": np.ones(1)}, {})
    store.publish({"w": np.full(1, 2.0)}, {})
    store.rollback_to(1)
    rollback_pointer = store.client.get(store._k("current"))
    assert scorer.load_serving(2).version == 1  # type: ignore[union-attr]
    store.publish({"w": np.full(1, 3.0)}, {})
    assert scorer.load_serving(1).version == 3  # type: ignore[union-attr]
    store.client.set(store._k("current"), rollback_pointer)
    assert "a replayed pointer" in refused(scorer.load_serving, 3)


def test_a_pointer_signed_with_another_key_is_refused(store: ModelStore) -> None:
    store.publish({"w": np.ones(1)}, {})
    forged = sign_pointer(1, 99, rollback=True, set_at=0.0, key=b"guessed")
    store.client.set(store._k("current"), json.dumps(forged))
    assert refused(reader(store).load_serving, None) == (
        "model pointer: signature does not verify with this signing key"
    )


def test_a_record_copied_under_another_version_is_refused(store: ModelStore) -> None:
    """Copy version 1's valid record and arrays to version 2, then point at 2 with a forged pointer."""
    store.publish({"w": np.ones(1)}, {})
    store.put({"w": np.full(1, 2.0)}, {})
    meta, arrays = store.client.mget(store._k("1", "meta"), store._k("1", "arrays"))
    store.client.set(store._k("2", "meta"), meta)
    store.client.set(store._k("2", "arrays"), arrays)
    assert (
        refused(store.load, 2) == "model version 2: the record is signed as version 1 (copied under another)"
    )


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("current", b"abc", "model pointer is not JSON"),
        ("current", b"2", "model pointer is not a JSON object (got int)"),
        ("current", b"\xff", "model pointer is not JSON"),
        ("current", b'{"version": 2}', "model pointer is not a signed format-2 pointer"),
        ("1:meta", b"[]", "model version 1: record is not a JSON object (got list)"),
        ("1:meta", b"{}", "model version 1: record format 1 is not 2"),
        ("1:meta", b"\x00\x01", "model version 1: record is not JSON"),
        ("1:arrays", b"garbage", "model version 1: arrays do not match their sha256 checksum"),
    ],
)
def test_garbage_in_redis_raises_invalid_model_only(
    store: ModelStore, key: str, value: bytes, reason: str
) -> None:
    store.publish({"w": np.ones(1)}, {})
    store.client.set(store._k(*key.split(":")), value)
    assert refused(reader(store).load_serving, None).startswith(reason)


def test_a_missing_record_is_reported(store: ModelStore) -> None:
    store.publish({"w": np.ones(1)}, {})
    store.client.delete(store._k("1", "arrays"))
    assert refused(reader(store).load_serving, None) == "model version 1 is missing from Redis"


def test_promote_replaces_a_garbage_pointer(store: ModelStore) -> None:
    v = store.put({"w": np.ones(1)}, {})
    store.client.set(store._k("current"), b"abc")
    store.promote(v)
    assert store.current_version() == v


def test_promotion_is_announced_on_the_channel(store: ModelStore) -> None:
    pubsub = store.client.pubsub()
    pubsub.subscribe(store.channel)
    pubsub.get_message(timeout=1.0)  # subscribe confirmation
    got: list[bytes] = []

    def listen() -> None:
        msg = pubsub.get_message(timeout=3.0)
        if msg:
            got.append(msg["data"])

    t = threading.Thread(target=listen)
    t.start()
    v = store.publish({"w": np.ones(2)}, {"name": "m"})
    t.join()
    pubsub.close()
    assert got == [str(v).encode()]


def test_keys_written_are_exactly_the_documented_layout(store: ModelStore) -> None:
    store.publish({"w": np.ones(1)}, {})
    keys = {k.decode()[len(store.prefix) :] for k in store.client.scan_iter(match=store.prefix + "*")}
    assert keys == {
        "model:version_seq",
        "model:pointer_seq",
        "model:current",
        "model:1:meta",
        "model:1:arrays",
    }


def test_from_settings_uses_the_configured_redis_prefix_and_key(redis_url: str) -> None:
    from pydantic import SecretStr

    from fedtwin.settings import Settings

    s = Settings(
        redis_url=redis_url,
        redis_prefix=f"fedtwin-test-store-{uuid.uuid4().hex}:",
        signing_key=SecretStr("k9"),
    )
    store = ModelStore.from_settings(s)
    try:
        v = store.publish({"w": np.ones(1)}, {})
        assert store.prefix == s.redis_prefix and store.client.exists(s.redis_prefix + "model:current")
        same_key = ModelStore(redis.Redis.from_url(redis_url), s.redis_prefix, b"k9")
        assert same_key.load(v).version == v
        other_key = ModelStore(same_key.client, s.redis_prefix, b"k8")
        assert "signature does not verify" in refused(other_key.load, v)
    finally:
        keys = list(store.client.scan_iter(match=s.redis_prefix + "*"))
        store.client.delete(*keys)


def test_versions_with_a_text_client(store: ModelStore, redis_url: str) -> None:
    store.put({"w": np.ones(1)}, {})
    store.put({"w": np.ones(1)}, {})
    text = ModelStore(redis.Redis.from_url(redis_url, decode_responses=True), store.prefix, b"test-key")
    assert text.versions() == [1, 2]
