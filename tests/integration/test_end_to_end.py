"""The whole loop on real services: the training flow on a real Prefect API registers the model in a real
MLflow store and promotes it to the real Redis; sensor messages produced to the real broker come back as an
alert from the scorer, which serves that model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fedtwin.settings import Settings
from plant_models import Faults, LiveSimulator, OperatingPoint

pytestmark = pytest.mark.integration

ASSET = "e2e-pump"


def test_training_registers_champion_and_promotes_to_redis(fedtwin_env: Settings, trained: dict) -> None:
    from fedtwin.adapters import tracking
    from fedtwin.adapters.model_store import ModelStore

    assert trained["registry"]["promoted"] is True
    tracking.configure(fedtwin_env)
    assert tracking.alias_version(fedtwin_env.registered_model, "champion") == trained["registry"]["version"]
    stored = ModelStore.from_settings(fedtwin_env).load()
    assert stored.version == trained["redis_version"]
    assert stored.meta["registry_version"] == trained["registry"]["version"]
    arrays, _meta = tracking.load_arrays(fedtwin_env.registered_model, "champion")
    for name, arr in arrays.items():
        np.testing.assert_array_equal(arr, stored.arrays[name])


def test_mlflow_shows_the_winner_at_a_glance(fedtwin_env: Settings, trained: dict) -> None:
    """The experiment opens on its runs, the parent run carries the comparison and the registered version
    says what it is (description, tags, metrics)."""
    from mlflow import MlflowClient

    from fedtwin.adapters import tracking

    tracking.configure(fedtwin_env)
    client = MlflowClient()
    exp = client.get_experiment_by_name(fedtwin_env.mlflow_experiment)
    # A local (sqlite) store has no UI to link to; the saved view is on the experiment either way.
    assert trained["mlflow_run_url"] is None or "viewStateShareKey=train-" in trained["mlflow_run_url"]
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    children = client.search_runs([exp.experiment_id], f"tags.strategy = '{trained['best']}'")
    parent_id = children[0].data.tags["mlflow.parentRunId"]
    parent = client.get_run(parent_id)
    assert parent.data.tags["best_strategy"] == trained["best"]
    assert f"Winner: **{trained['best']}**" in parent.data.tags[tracking.DESCRIPTION_TAG]
    assert parent.data.metrics["exact_match_8class"] == pytest.approx(trained["exact_match"][trained["best"]])
    view = exp.tags[tracking.SHARED_VIEW_TAG + f"train-{parent_id[:12]}"]
    assert f"tags.mlflow.parentRunId = '{parent_id}'" in view
    listed = {a.path for a in client.list_artifacts(parent_id, "comparison")}
    assert {"comparison/strategies.png", "comparison/strategies.md", "comparison/strategies.json"} <= listed
    mv = client.get_model_version(fedtwin_env.registered_model, str(trained["registry"]["version"]))
    assert mv.tags["strategy"] == trained["best"]
    assert mv.tags["profile"] == "demo"
    assert {"speed_rpm", "load_area_factor", "sweep_seed"} <= set(mv.tags)
    assert float(mv.tags["metric.exact_match_8class"]) == pytest.approx(
        trained["exact_match"][trained["best"]], abs=1e-4
    )
    assert trained["best"] in mv.description


def test_an_equal_model_does_not_replace_the_champion(fedtwin_env: Settings, trained: dict) -> None:
    """Same seeds, same data: the challenger ties, so champion and the Redis pointer stay."""
    from fedtwin.adapters import tracking
    from fedtwin.adapters.model_store import ModelStore
    from flows.training import training_flow

    again = training_flow(profile="demo", reason="test-tie")
    assert again["exact_match"] == trained["exact_match"]
    assert again["registry"]["promoted"] is False
    assert again["redis_version"] is None
    assert tracking.alias_version(fedtwin_env.registered_model, "champion") == trained["registry"]["version"]
    assert tracking.alias_version(fedtwin_env.registered_model, "challenger") == again["registry"]["version"]
    assert ModelStore.from_settings(fedtwin_env).current_version() == trained["redis_version"]


def _produce_stream(settings: Settings, healthy_s: float, faulty_s: float) -> float:
    """Produce an asset's chunks: healthy, then a leak; returns the stream time the fault began."""
    from fedtwin.adapters.kafka_io import make_producer
    from fedtwin.data.schema import encode_chunk

    sim = LiveSimulator(OperatingPoint(), Faults(), seed=4242)
    producer = make_producer(settings)
    t0 = time.time() - (healthy_s + faulty_s)  # a stream that has just happened
    seq, t = 0, t0
    fault_start = t0 + healthy_s
    while t < t0 + healthy_s + faulty_s - 1e-9:
        if abs(t - fault_start) < 1e-9:
            sim.set_faults(Faults.from_severity(leak=0.8))
        chunk = sim.step(settings.chunk_s)
        value = encode_chunk(ASSET, seq, t, settings.sample_rate_hz, chunk)
        producer.produce(settings.sensor_topic, value, ASSET)
        producer.poll(0)
        seq += 1
        t = t0 + seq * settings.chunk_s
    assert producer.flush(10) == 0
    return fault_start


def test_sensor_messages_on_the_broker_come_back_as_an_alert(fedtwin_env: Settings, trained: dict) -> None:
    from fedtwin.adapters.kafka_io import ensure_topics, make_consumer
    from fedtwin.data.schema import decode_alert
    from fedtwin.streaming.scorer import run_scorer

    ensure_topics(fedtwin_env)
    result: dict = {}
    scorer = threading.Thread(
        target=lambda: result.update(run_scorer(fedtwin_env, max_seconds=60, idle_exit_s=6)), daemon=True
    )
    scorer.start()
    fault_start = _produce_stream(fedtwin_env, healthy_s=8.0, faulty_s=8.0)
    scorer.join(90)
    assert not scorer.is_alive(), "scorer did not stop"

    consumer = make_consumer(fedtwin_env, group=f"e2e-reader-{time.time_ns()}")
    consumer.subscribe([fedtwin_env.alert_topic])
    alerts: list[dict] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for m in consumer.consume(100, 1.0):
            if m.error() is None:
                alerts.append(decode_alert(m.value()))
        if alerts and time.monotonic() > deadline - 12:
            break
    consumer.close()

    mine = [a for a in alerts if a["asset"] == ASSET and a["kind"] == "raise"]
    assert mine, f"no alert for {ASSET}; scorer stats {result}"
    assert all(a["window_start"] >= fault_start - 1e-6 for a in mine), "alert raised while healthy"
    first = min(mine, key=lambda a: a["window_start"])
    assert "leak" in first["faults"]
    assert first["model_version"] == trained["redis_version"]
    # Raise needs alert_raise_windows consecutive faulty windows: bounded delay after the fault.
    bound = (fedtwin_env.alert_raise_windows + 1) * fedtwin_env.window_s
    assert first["window_end"] - fault_start <= bound + 1e-6
