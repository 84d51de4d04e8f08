"""The monitoring loop on real services: the live plant streams through the real broker, the scorer publishes
its feature windows to Redis, the drift monitor (Evidently) compares them with the served model's reference,
and the physics-informed retrain promotes a model that fits the new operating point. Runs after
test_end_to_end (file order), which expects the session's first champion to be serving."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fedtwin.settings import Settings

pytestmark = pytest.mark.integration

ASSETS = ["drift-a", "drift-b"]
SHIFT = {"speed_rpm": 1300.0, "load_area_factor": 1.3}  # outside the trained envelope, same ~7 bar


def _stream(settings: Settings, seconds: float, **op: float) -> float:
    """Run the live plant (as fast as it simulates) then the scorer over it; returns the wall start."""
    from fedtwin.streaming import live
    from fedtwin.streaming.scorer import run_scorer

    for a in ASSETS:
        live.clear(settings, a)
        if op:
            live.set_operating_point(settings, a, **op)
    started = time.time()
    live.run_plant(settings, assets=ASSETS, duration_s=seconds, speedup=0)
    run_scorer(settings, max_seconds=120, idle_exit_s=5, publish_features=True)
    return started


def _false_alarms(version: int, since: float) -> float:
    from federated.model import from_arrays
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.settings import get_settings
    from tasks.monitoring import read_recent_windows

    stored = ModelStore.from_settings(get_settings()).load(version)
    frame, _ = read_recent_windows.fn(5000, since)
    X = frame[list(stored.meta["feature_names"])].to_numpy()
    assert len(X) >= 30
    return float(from_arrays(stored.arrays, stored.meta).predict(X).any(axis=1).mean())


def test_too_few_windows_is_not_a_drift(fedtwin_env: Settings, trained: dict) -> None:
    from flows.monitor import drift_monitor_flow

    result = drift_monitor_flow(windows=10)
    assert result["status"] == "not_enough_data", result["reason"]


@pytest.mark.long(seconds=110)
def test_shift_is_detected_and_the_retrain_fixes_false_alarms(fedtwin_env: Settings, trained: dict) -> None:
    from fedtwin.adapters.model_store import ModelStore
    from flows.monitor import drift_monitor_flow
    from flows.retrain import retrain_flow

    nominal = _stream(fedtwin_env, 30.0, speed_rpm=958.0, load_area_factor=1.0)
    quiet = drift_monitor_flow(windows=200, since_s=nominal)
    assert quiet["status"] == "no_drift", quiet["reason"]

    shifted = _stream(fedtwin_env, 30.0, **SHIFT)
    drifted = drift_monitor_flow(windows=200, since_s=shifted)
    assert drifted["status"] == "drift", drifted["reason"]
    assert drifted["feature"]["drifted_features"]

    old = trained["redis_version"]
    before = _false_alarms(old, shifted)
    payload = {
        "current_id": drifted["current_id"],
        "drifted_features": drifted["feature"]["drifted_features"],
    }
    result = retrain_flow(drift=payload)
    op = result["operating_point"]
    assert op["speed_rpm"] == pytest.approx(SHIFT["speed_rpm"], rel=0.03)
    assert op["load_area_factor"] == pytest.approx(SHIFT["load_area_factor"], rel=0.1)
    new = ModelStore.from_settings(fedtwin_env).current_version()
    if result["registry"]["promoted"]:
        assert new == result["redis_version"] != old
        after = _false_alarms(new, shifted)
        assert after < before or before == 0.0
    else:  # the gate kept the champion because it was not worse at the new operating point
        assert new == old
    print(f"false alarms at the new operating point: before={before:.3f} {result['registry']}")
    assert np.isfinite(before)


def test_a_failed_retrain_leaves_the_champion(fedtwin_env: Settings, trained: dict) -> None:
    from fedtwin.adapters import tracking
    from fedtwin.adapters.model_store import ModelStore
    from flows.retrain import retrain_flow

    store = ModelStore.from_settings(fedtwin_env)
    serving = store.current_version()
    tracking.configure(fedtwin_env)
    champion = tracking.alias_version(fedtwin_env.registered_model, "champion")
    with pytest.raises(ValueError, match="not enough to recalibrate"):
        retrain_flow(drift={"current_id": "features:0-0..0-1", "drifted_features": ["flow_mean"]})
    assert store.current_version() == serving
    assert tracking.alias_version(fedtwin_env.registered_model, "champion") == champion
