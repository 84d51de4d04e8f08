"""Faults in the training and promotion pipeline on real services (issue 12's fault suite, pipeline part):
MLflow or Redis down when training starts, and kill -9 between storing a model and promoting it.

Each test runs under its own Redis key prefix, MLflow store and data directory, so the session's trained
model (``trained`` fixture) and its pointer are never touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fedtwin.adapters import stack
from fedtwin.adapters.model_store import ModelStore, sign_pointer
from fedtwin.errors import InvalidModel, ServiceUnavailable
from fedtwin.settings import Settings, get_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_env(fedtwin_env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The session's settings with an own Redis prefix, MLflow store, experiment, model name and data dir."""
    import redis

    tag = uuid.uuid4().hex[:8]
    env = {
        "FEDTWIN_REDIS_PREFIX": f"fedtwin-chaos-{tag}:",
        "FEDTWIN_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "FEDTWIN_MLFLOW_EXPERIMENT": f"chaos-{tag}",
        "FEDTWIN_REGISTERED_MODEL": f"chaos-{tag}",
        "FEDTWIN_DATA_DIR": str(tmp_path / "data"),
        "FEDTWIN_ARTIFACT_DIR": str(tmp_path / "artifacts"),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    settings = get_settings()
    yield settings
    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(match=settings.redis_prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    monkeypatch.undo()
    get_settings.cache_clear()


def _tiny_model(seed: int) -> tuple[dict[str, np.ndarray], dict]:
    from fedtwin.data.features import FEATURE_NAMES

    rng = np.random.default_rng(seed)
    arrays = {"W": rng.normal(size=(len(FEATURE_NAMES), 2)), "b": np.zeros(2)}
    return arrays, {"feature_names": list(FEATURE_NAMES), "faults": ["leak", "bearing"]}


def _served(settings: Settings) -> int | None:
    return ModelStore.from_settings(settings).current_version()


# ---------------------------------------------------------------- MLflow / Redis down when training starts
def _train_fails_fast(env: Settings, monkeypatch: pytest.MonkeyPatch, variable: str, dead: str) -> str:
    """Point ``variable`` at a dead address and run the training flow: it must raise ServiceUnavailable in
    one line within 20 s, before simulating anything (no run directory). Returns the message."""
    from flows.training import training_flow

    monkeypatch.setenv(variable, dead)
    get_settings.cache_clear()
    t0 = time.monotonic()
    with pytest.raises(ServiceUnavailable) as err:
        training_flow(profile="demo", reason="chaos")
    elapsed = time.monotonic() - t0
    message = str(err.value)
    assert "\n" not in message, message
    assert elapsed < 20, f"took {elapsed:.1f} s"
    assert not any(Path(env.data_dir).glob("run-*"))
    return message


def test_training_with_mlflow_down_fails_at_once_in_one_line(
    own_env: Settings, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the preflight the flow simulated every site (~1 min) and then retried MLflow for minutes."""
    store = ModelStore.from_settings(own_env)
    serving = store.publish(*_tiny_model(1))
    dead = f"http://127.0.0.1:{stack.free_port()}"
    message = _train_fails_fast(own_env, monkeypatch, "FEDTWIN_MLFLOW_TRACKING_URI", dead)
    assert message.startswith(f"MLflow is not reachable at {dead}:"), message
    assert "fedtwin stack up" in message
    # ... and before touching the serving pointer.
    assert _served(own_env) == serving and store.versions() == [serving]


def test_training_with_redis_down_fails_at_once_in_one_line(
    own_env: Settings, prefect_api: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"redis://127.0.0.1:{stack.free_port()}/0"
    message = _train_fails_fast(own_env, monkeypatch, "FEDTWIN_REDIS_URL", dead)
    assert message.startswith(f"Redis is not reachable at {dead} ("), message
    assert "FEDTWIN_REDIS_URL" in message


def test_mlflow_client_retries_are_bounded_unless_the_user_set_them(
    own_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fedtwin.adapters import tracking

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "77")  # the user's choice wins
    tracking.configure(own_env)
    from mlflow.environment_variables import (
        MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES,
        MLFLOW_HTTP_REQUEST_TIMEOUT,
    )

    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 3
    assert MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get() == 1
    assert MLFLOW_HTTP_REQUEST_TIMEOUT.get() == 77


# ---------------------------------------------------------------- kill -9 during a promotion
_CHILD = """
import os, signal, sys
import numpy as np
from fedtwin.settings import get_settings
from fedtwin.adapters.model_store import ModelStore
from fedtwin.data.features import FEATURE_NAMES

store = ModelStore.from_settings(get_settings())
rng = np.random.default_rng(2)
arrays = {"W": rng.normal(size=(len(FEATURE_NAMES), 2)), "b": np.zeros(2)}
meta = {"feature_names": list(FEATURE_NAMES), "faults": ["leak", "bearing"]}
# The training flow's order: put the record, store its drift reference, then promote.
version = store.put(arrays, meta)
store.put_reference(version, np.ones((4, len(FEATURE_NAMES))), list(FEATURE_NAMES))
print(version, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies before promote
store.promote(version)
"""


def _register_champion(settings: Settings) -> int:
    """A model logged and registered in the test's own MLflow store, with the ``champion`` alias."""
    import mlflow

    from fedtwin.adapters import tracking

    tracking.configure(settings)
    arrays, meta = _tiny_model(3)
    with mlflow.start_run() as run:
        uri, _ = tracking.log_model(arrays, meta, meta["feature_names"], meta["faults"])
    mv = tracking.register(uri, settings.registered_model, run.info.run_id)
    tracking.set_alias(settings.registered_model, "champion", mv.version)
    return mv.version


def test_kill9_between_put_and_promote_keeps_serving_the_old_version_and_publish_completes(
    own_env: Settings,
) -> None:
    from fedtwin.streaming.serving import publish

    store = ModelStore.from_settings(own_env)
    old = store.publish(*_tiny_model(1))
    scorer = ModelStore.from_settings(own_env)  # a running scorer's store: it serves ``old``
    assert scorer.load_serving(None) is not None

    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    orphan = int(child.stdout.strip())
    assert orphan == old + 1
    # The orphan is stored whole (put writes meta and arrays in one transaction) but not served.
    assert store.versions() == [old, orphan]
    assert store.load(orphan).version == orphan
    assert store.current_version() == old
    assert scorer.load_serving(old) is None  # nothing new for a running scorer
    restarted = ModelStore.from_settings(own_env).load_serving(None)  # a scorer started after the crash
    assert restarted is not None and restarted.version == old

    # `fedtwin model publish` re-publishes MLflow's champion: a new version, now served, with its reference.
    registry_version = _register_champion(own_env)
    published = publish(own_env)
    assert published == orphan + 1
    assert store.current_version() == published
    swapped = scorer.load_serving(old)
    assert swapped is not None and swapped.version == published
    assert swapped.meta["registry_version"] == registry_version
    assert store.load_reference(published) is not None


@pytest.mark.parametrize("missing", ["meta", "arrays"])
def test_a_half_written_record_is_never_served(own_env: Settings, missing: str) -> None:
    """A record with only one of its two keys (what a non-transactional writer killed mid-way would leave):
    promoting it and a pointer signed for it both fail verification; the scorer keeps its model."""
    store = ModelStore.from_settings(own_env)
    old = store.publish(*_tiny_model(1))
    half = store.put(*_tiny_model(4))
    store.client.delete(store._k(str(half), missing))
    with pytest.raises(InvalidModel, match=f"model version {half} is missing from Redis"):
        store.promote(half)
    assert store.current_version() == old
    scorer = ModelStore.from_settings(own_env)
    assert scorer.load_serving(None) is not None
    # Even a validly signed pointer (a writer that skipped verification) does not make a scorer load it.
    pointer = sign_pointer(half, 10**6, rollback=False, set_at=time.time(), key=own_env.signing_key_bytes())
    store.client.set(store._k("current"), json.dumps(pointer))
    with pytest.raises(InvalidModel, match=f"model version {half} is missing from Redis"):
        scorer.load_serving(old)


# ---------------------------------------------------------------- MLflow killed in the middle of training
#: A training sweep small enough for a test (the demo profile simulates for about a minute).
TINY = dict(
    duration_s=1.5,
    clients_per_fault=1,
    healthy_runs_per_op_per_site=1,
    test_healthy_runs_per_op=2,
    test_severities=(0.85,),
)


@pytest.mark.long(seconds=55)
def test_mlflow_killed_after_the_strategies_were_logged_moves_neither_champion_nor_pointer(
    own_env: Settings, prefect_api: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9 of the MLflow server once every strategy's run is logged, before the gate registers the winner:
    the flow fails with the one-line "not reachable" error, no version is registered, the ``champion`` alias
    and the Redis pointer stay where they were."""
    from mlflow import MlflowClient

    import flows.training
    from fedtwin.data.datasets import PROFILES, SweepConfig
    from flows.training import training_flow

    state = tmp_path / "stack"
    url = f"http://127.0.0.1:{stack.free_port()}"
    for k, v in {
        "FEDTWIN_MLFLOW_TRACKING_URI": url,
        "FEDTWIN_STATE_DIR": str(state),
        "FEDTWIN_CREDENTIALS_FILE": str(tmp_path / "credentials.json"),
    }.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    settings = get_settings()
    # The champion is seeded in the server's store before it starts (a version without artifacts: the flow
    # dies before it would load it), which saves logging a model over HTTP.
    state.mkdir()
    db = f"sqlite:///{state.resolve() / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=db, registry_uri=db)
    client.create_registered_model(settings.registered_model)
    (tmp_path / "champion").mkdir()
    champion = int(client.create_model_version(settings.registered_model, str(tmp_path / "champion")).version)
    client.set_registered_model_alias(settings.registered_model, "champion", str(champion))
    stack.up(settings, ("mlflow",), echo=lambda _: None)
    pid = stack._read_pid(state.resolve(), "mlflow")
    assert pid is not None
    try:
        store = ModelStore.from_settings(settings)
        serving = store.publish(*_tiny_model(1))

        real_best = flows.training.best_strategy
        killed_at: list[float] = []

        def kill_mlflow_then_pick(metrics: dict) -> str:
            os.killpg(pid, signal.SIGKILL)
            killed_at.append(time.monotonic())
            return real_best(metrics)

        monkeypatch.setattr(flows.training, "best_strategy", kill_mlflow_then_pick)
        monkeypatch.setitem(PROFILES, "chaos-tiny", SweepConfig(**TINY))  # type: ignore[arg-type]
        with pytest.raises(ServiceUnavailable) as err:
            training_flow(profile="chaos-tiny", rounds=2, reason="chaos")
        failed_after = time.monotonic() - killed_at[0]
    finally:
        stack.stop_pid(pid)
    message = str(err.value)
    assert message.startswith(f"MLflow is not reachable at {url}:") and "\n" not in message, message
    assert failed_after < 30, f"failed {failed_after:.1f} s after the kill"
    # The server's own store, read directly: the strategy was logged, nothing new registered, alias kept.
    exp = client.get_experiment_by_name(settings.mlflow_experiment)
    assert exp is not None
    logged = client.search_runs([exp.experiment_id], "tags.strategy != ''")
    assert [r.data.tags["strategy"] for r in logged] == [settings.federated_strategy]
    versions = client.search_model_versions(f"name = '{settings.registered_model}'")
    assert [int(v.version) for v in versions] == [champion]
    assert int(client.get_model_version_by_alias(settings.registered_model, "champion").version) == champion
    assert ModelStore.from_settings(settings).current_version() == serving
    assert store.versions() == [serving]
