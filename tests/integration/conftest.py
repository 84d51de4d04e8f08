"""Real services for integration tests: an own Tansu broker, an own Redis key prefix, a temporary MLflow store
and Prefect's test harness (a real, temporary API). Nothing here is started by hand."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

from fedtwin.adapters import stack
from fedtwin.settings import Settings, get_settings


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A memory-only Tansu broker on a free 127.0.0.1 port; yields bootstrap.servers."""
    proc, bootstrap = stack.start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    yield bootstrap
    stack.stop_pid(proc.pid)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The machine's Redis (CI and dev machines run one at 127.0.0.1:6379)."""
    url = os.environ.get("FEDTWIN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if not stack._redis_ping(url):
        pytest.fail(f"Redis is not reachable at {url}: start one (`fedtwin stack up --only redis`)")
    return url


@pytest.fixture(scope="session")
def fedtwin_env(tansu: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """FEDTWIN_* variables for a whole test session: own topics, own Redis prefix, temporary MLflow store."""
    import redis

    base = tmp_path_factory.mktemp("fedtwin")
    tag = uuid.uuid4().hex[:8]
    env = {
        "FEDTWIN_KAFKA_BOOTSTRAP_SERVERS": tansu,
        "FEDTWIN_REDIS_URL": redis_url,
        "FEDTWIN_REDIS_PREFIX": f"fedtwin-test-{tag}:",
        "FEDTWIN_MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
        "FEDTWIN_MLFLOW_EXPERIMENT": f"fedtwin-test-{tag}",
        "FEDTWIN_REGISTERED_MODEL": f"fedtwin-test-{tag}",
        "FEDTWIN_SENSOR_TOPIC": f"t{tag}.sensors",
        "FEDTWIN_ALERT_TOPIC": f"t{tag}.alerts",
        "FEDTWIN_DLQ_TOPIC": f"t{tag}.sensors.dlq",
        "FEDTWIN_TRUTH_TOPIC": f"t{tag}.truth",
        "FEDTWIN_DECISION_TOPIC": f"t{tag}.decisions",
        "FEDTWIN_CONSUMER_GROUP": f"scorer-{tag}",
        "FEDTWIN_DATA_DIR": str(base / "data"),
        "FEDTWIN_ARTIFACT_DIR": str(base / "artifacts"),
        "FEDTWIN_STATE_DIR": str(base / "stack"),
        "FEDTWIN_MONITORING_DIR": str(base / "monitoring"),
        "FEDTWIN_EVIDENTLY_WORKSPACE": str(base / "evidently"),
        "FEDTWIN_SIGNING_KEY": f"test-key-{tag}",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    yield settings
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=settings.redis_prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """Prefect's test harness: a real temporary API and database for the whole session (~10 s once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def trained(fedtwin_env: Settings, prefect_api: None) -> dict:
    """The training flow run once per session on the real services (demo profile, default rounds)."""
    from flows.training import training_flow

    return training_flow(profile="demo", reason="test")
