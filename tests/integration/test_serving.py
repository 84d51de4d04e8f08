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


def test_a_version_published_to_a_shadow_slot_leaves_the_champion_serving(
    fedtwin_env: Settings, trained: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedtwin.adapters import tracking

    status = model_status(fedtwin_env)
    assert status.champion is not None and status.agree
    serving = status.serving
    capsys.readouterr()
    # A slot named like no alias, without --version: one clear line, nothing published.
    assert run_cli(monkeypatch, "model", "publish", "--shadow", "nosuch") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "has no alias 'nosuch': pass --version" in err[0]
    # The alias named like the slot is the default source (the training flow sets `challenger`).
    challenger = tracking.alias_version(fedtwin_env.registered_model, "challenger")
    assert run_cli(monkeypatch, "model", "publish", "--shadow", "challenger") == (
        1 if challenger is None else 0
    )
    capsys.readouterr()
    args = ("model", "publish", "--shadow", "pinned", "--version", str(status.champion))
    assert run_cli(monkeypatch, *args) == 0
    out = capsys.readouterr().out
    assert "shadow pinned now scores with Redis version" in out and "not in shadow_models" in out
    store = ModelStore.from_settings(fedtwin_env)
    ptr = store.pointer("pinned")
    assert ptr is not None and ptr.version > (serving or 0) and store.current_version() == serving
    assert store.load(ptr.version).meta["registry_version"] == status.champion
    if challenger is not None:
        shadow = store.pointer("challenger")
        assert shadow is not None and store.load(shadow.version).meta["registry_version"] == challenger
        assert run_cli(monkeypatch, "model", "unshadow", "challenger") == 0
    assert run_cli(monkeypatch, "model", "status") == 0
    lines = capsys.readouterr().out.splitlines()
    line = f"shadow pinned: Redis v{ptr.version} (registry v{status.champion})"
    assert f"{line} [not in shadow_models: not scored]" in lines
    assert run_cli(monkeypatch, "model", "unshadow", "pinned") == 0
    assert store.pointer("pinned") is None and model_status(fedtwin_env).shadows == ()
    assert run_cli(monkeypatch, "model", "publish", "--shadow", "Bad Name") == 1
    assert "shadow slot 'Bad Name': the name must be" in capsys.readouterr().err
