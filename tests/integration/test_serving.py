"""Back to serving after Redis lost everything: `model status` says so, `model publish` re-publishes
MLflow's champion (signed, with its drift reference), `model rollback` serves an older version; on real
MLflow and Redis."""

from __future__ import annotations

import pytest
import redis

from fedtwin.adapters.model_store import ModelStore
from fedtwin.settings import Settings
from fedtwin.streaming.serving import model_status, publish, rollback
from tests._cli import run_cli

pytestmark = pytest.mark.integration


def _wipe(settings: Settings) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    keys = list(client.scan_iter(match=settings.redis_prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


def test_publish_restores_serving_after_redis_lost_it(
    fedtwin_env: Settings, trained: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    champion = model_status(fedtwin_env).champion
    assert champion is not None
    _wipe(fedtwin_env)  # what a restart of a Redis without persistence leaves
    status = model_status(fedtwin_env)
    assert (status.champion, status.serving, status.agree) == (champion, None, False)
    assert run_cli(monkeypatch, "model", "status") == 1
    assert "fedtwin model publish" in capsys.readouterr().out

    assert run_cli(monkeypatch, "model", "publish") == 0
    store = ModelStore.from_settings(fedtwin_env)
    served = store.load()
    assert served.meta["registry_version"] == champion
    ref = store.load_reference(served.version)
    assert ref is not None and ref[0].shape[1] == len(ref[1]) == len(served.meta["feature_names"])
    assert model_status(fedtwin_env).agree
    assert run_cli(monkeypatch, "model", "status") == 0


def test_rollback_serves_an_older_version_with_a_signed_flag(fedtwin_env: Settings, trained: dict) -> None:
    first = publish(fedtwin_env)
    second = publish(fedtwin_env)
    assert second > first
    store = ModelStore.from_settings(fedtwin_env)
    assert store.load_serving(current_version=second) is None
    assert rollback(fedtwin_env, first) == first
    ptr = store.pointer()
    assert ptr is not None and (ptr.version, ptr.rollback) == (first, True)
    # A scorer serving `second` accepts the signed rollback.
    assert store.load_serving(current_version=second).version == first
    publish(fedtwin_env)  # leave the champion serving for the tests after this one


def test_rollback_to_a_version_redis_does_not_have_is_one_clear_line(
    fedtwin_env: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "model", "rollback", "--to", "999999") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no model version 999999" in err[0]
