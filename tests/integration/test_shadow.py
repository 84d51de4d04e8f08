"""Shadow models against the real Redis (and, for the stream, the real Tansu broker): per-slot signed
pointers, a scorer that drops a shadow failing verification while the champion keeps serving, hot reload of
a shadow, and a plant stream whose decisions carry both models while only the champion alerts."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis

from fedtwin.adapters.model_store import ModelStore, sign_pointer
from fedtwin.data.schema import decode_alert, decode_decision
from fedtwin.errors import InvalidModel
from fedtwin.settings import Settings
from fedtwin.streaming import live
from fedtwin.streaming.scorer import Scorer
from fedtwin.streaming.scoring import FAULTS
from tests.integration._broker import broker, model_record, read_topic, stream_settings
from tests.integration.test_streaming import Background

__all__ = ["broker", "model_record", "stream_settings"]  # fixtures imported for pytest

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(redis_url: str) -> Iterator[ModelStore]:
    client = redis.Redis.from_url(redis_url)
    prefix = f"fedtwin-test-shadow-{uuid.uuid4().hex[:8]}:"
    yield ModelStore(client, prefix, b"test-key")
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_a_shadow_slot_has_its_own_pointer_and_never_moves_the_champion(store: ModelStore) -> None:
    champ = store.publish({"w": np.ones(1)}, {"name": "c"})
    shadow = store.put({"w": np.full(1, 2.0)}, {"name": "s"})
    store.promote(shadow, slot="challenger")
    assert store.current_version() == champ and store.pointer("challenger").version == shadow  # type: ignore[union-attr]
    assert store.shadow_slots() == ["challenger"]
    reader = ModelStore(store.client, store.prefix, b"test-key")
    assert reader.load_serving(None, slot="challenger").version == shadow  # type: ignore[union-attr]
    assert reader.load_serving(None).version == champ  # type: ignore[union-attr]
    with pytest.raises(InvalidModel, match="older than the shadow challenger version"):
        store.promote(champ, slot="challenger")
    # A replayed (older generation) shadow pointer is refused by a reader that saw a newer one.
    old = store.client.get(store._k("shadow", "challenger"))
    store.promote(store.put({"w": np.full(1, 3.0)}, {}), slot="challenger")
    reader.load_serving(shadow, slot="challenger")
    store.client.set(store._k("shadow", "challenger"), old)
    with pytest.raises(InvalidModel, match="a replayed pointer"):
        reader.load_serving(None, slot="challenger")
    assert store.clear_shadow("challenger") and store.shadow_slots() == []
    assert not store.clear_shadow("challenger")


class MeanModel:
    """Fault j is present (p = 0.9) when feature j exceeds 0.5; ``n_in`` features expected."""

    fault_names = FAULTS
    thresholds_ = np.array([0.5, 0.5, 0.5])

    def __init__(self, n_in: int) -> None:
        self.n_in = n_in

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != self.n_in:
            raise ValueError(f"expected {self.n_in} features, got {X.shape[1]}")
        return np.where(X[:, :3] > 0.5, 0.9, 0.1)


def mean_features(windows: dict[str, np.ndarray], fs: float) -> np.ndarray:
    return np.stack([w.mean(axis=1) for w in windows.values()], axis=1)


def factory(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> MeanModel:
    return MeanModel(int(meta.get("n_in", 4)))


def test_a_shadow_failing_verification_is_dropped_once_and_the_champion_keeps_serving(
    store: ModelStore, caplog: pytest.LogCaptureFixture
) -> None:
    s = Settings(redis_prefix=store.prefix, shadow_models=["good", "bad"])
    champ = store.publish({"w": np.ones(1)}, {"name": "c"})
    good = store.put({"w": np.ones(1)}, {})
    store.promote(good, slot="good")
    bad = store.put({"w": np.ones(1)}, {})
    forged = sign_pointer(bad, 10**6, rollback=False, set_at=time.time(), key=b"guessed", slot="bad")
    store.client.set(store._k("shadow", "bad"), json.dumps(forged))
    sc = Scorer(s, model_store=store, features=mean_features, model_factory=factory)
    with caplog.at_level(logging.INFO, logger="fedtwin.streaming.scorer"):
        assert sc.check_model() == champ
        sc.check_model()
    assert sc.shadows.versions() == {"good": good}
    dropped = [r.getMessage() for r in caplog.records if "shadow bad dropped" in r.getMessage()]
    assert dropped == [
        "shadow bad dropped: refused (shadow 'bad' model pointer: signature does not verify with this "
        "signing key); the champion keeps serving"
    ]
    # A record that verifies but does not fit the features (4 here) is dropped too; then a good one is used.
    wrong = store.put({"w": np.ones(1)}, {"n_in": 7})
    store.promote(wrong, slot="bad")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fedtwin.streaming.scorer"):
        sc.check_model()
    assert "bad" not in sc.shadows.versions() and sc.engine.model.version == champ  # type: ignore[union-attr]
    assert any(
        f"shadow bad dropped: version {wrong} refused (ValueError: expected 7 features" in r.getMessage()
        for r in caplog.records
    )
    fixed = store.put({"w": np.ones(1)}, {})
    store.promote(fixed, slot="bad")
    sc.check_model()  # hot reload: the slot's new version is taken without a restart
    assert sc.shadows.versions() == {"good": good, "bad": fixed}
    store.clear_shadow("good")
    sc.check_model()
    assert sc.shadows.versions() == {"bad": fixed} and sc.shadows.rejections == 2


def test_plant_stream_decisions_carry_both_models_and_only_the_champion_alerts(
    stream_settings: Settings, model_record: tuple[dict, dict]
) -> None:
    arrays, meta = model_record
    store = ModelStore.from_settings(stream_settings)
    # A shadow that finds every fault in every window: if shadows could alert, it would raise at once.
    eager = {**arrays, "thresholds": np.full_like(arrays["thresholds"], 1e-6)}
    shadow_version = store.put(eager, {**meta, "name": "eager"})
    store.promote(shadow_version, slot="eager")
    s = stream_settings.model_copy(update={"shadow_models": ["eager"]})
    sc = Background(Scorer(s).run, max_seconds=60, idle_exit_s=3.0, model_wait_s=10)
    plant = Background(live.run_plant, s, assets=2, duration_s=8.0, speedup=4.0, seed=5)
    time.sleep(1.0)
    live.inject(s, "pump-1", "leak", 1.0)
    plant.join(60)
    stats = sc.join(60)
    decisions = [decode_decision(m.value()) for m in read_topic(s, s.decision_topic)]
    alerts = [decode_alert(m.value()) for m in read_topic(s, s.alert_topic)]
    by_model: dict[tuple[str, int, str], list[dict]] = {}
    for d in decisions:
        by_model.setdefault((d["model"], d["version"], d["role"]), []).append(d)
    assert set(by_model) == {("quick-test-model", 1, "champion"), ("eager", shadow_version, "shadow")}
    champ, shadow = (
        by_model[("quick-test-model", 1, "champion")],
        by_model[("eager", shadow_version, "shadow")],
    )
    assert len(champ) == len(shadow) == stats.windows - stats.invalid_windows > 10
    assert {(d["asset"], d["seq"], d["t"]) for d in champ} == {(d["asset"], d["seq"], d["t"]) for d in shadow}
    flagged = sum(bool(d["faults"]) for d in shadow)  # windows where the eager shadow decides a fault
    assert flagged >= 0.9 * len(shadow), (flagged, len(shadow))
    assert alerts and {(a["model_name"], a["model_version"]) for a in alerts} == {("quick-test-model", 1)}
    assert stats.decisions == len(decisions) and stats.shadow_versions == {"eager": shadow_version}
