"""The Redis model store against the real Redis server."""

import threading

import numpy as np
import pytest
import redis

from fedtwin.errors import InvalidModel
from fedtwin.model_store import ModelStore

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(redis_url: str, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    client = redis.Redis.from_url(redis_url)
    prefix = f"fedtwin-test-store-{request.node.name}-{id(request)}:"
    yield ModelStore(client, prefix, b"test-key")
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)


def test_publish_load_and_pointer(store: ModelStore) -> None:
    assert store.current_version() is None
    with pytest.raises(InvalidModel, match="no model promoted"):
        store.load()
    v1 = store.publish({"w": np.ones(3)}, {"name": "m", "faults": ["leak"]})
    v2 = store.publish({"w": np.full(3, 2.0)}, {"name": "m", "faults": ["leak"]})
    assert (v1, v2) == (1, 2)
    assert store.current_version() == 2
    np.testing.assert_array_equal(store.load().arrays["w"], np.full(3, 2.0))
    np.testing.assert_array_equal(store.load(1).arrays["w"], np.ones(3))
    assert store.versions() == [1, 2]


def test_tampered_record_is_not_promoted_and_keeps_pointer(store: ModelStore) -> None:
    good = store.publish({"w": np.ones(3)}, {"name": "m"})
    bad = store.put({"w": np.zeros(3)}, {"name": "m"})
    store.client.set(store._k(str(bad), "arrays"), b"not an npz")
    with pytest.raises(InvalidModel, match="checksum"):
        store.promote(bad)
    assert store.current_version() == good


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


def test_only_own_prefix_is_touched(store: ModelStore) -> None:
    store.client.set("someone-else:key", "keep")
    try:
        store.publish({"w": np.ones(1)}, {})
        assert store.client.get("someone-else:key") == b"keep"
    finally:
        store.client.delete("someone-else:key")
