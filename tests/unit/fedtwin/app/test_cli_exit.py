"""Commands that fail exit non-zero with one readable line (a supervisor must see the failure)."""

from __future__ import annotations

import pytest

from tests._cli import run_cli


def test_inject_without_fault_exits_1_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(monkeypatch, "inject", "--asset", "pump-1") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: give --fault leak|blocked_inlet|bearing (and --severity), or --clear"]


def test_unreachable_redis_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fedtwin.settings import get_settings

    monkeypatch.setenv("FEDTWIN_REDIS_URL", "redis://127.0.0.1:1/0")  # port 1: nothing listens
    get_settings.cache_clear()
    assert run_cli(monkeypatch, "alerts") == 1
    err = capsys.readouterr().err
    assert "cannot read alerts from Redis" in err
    assert "Traceback" not in err


def test_unknown_option_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(monkeypatch, "alerts", "--no-such-option") == 2


def test_help_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_cli(monkeypatch, "alerts", "--help") == 0


@pytest.fixture(autouse=True)
def _fresh_settings() -> object:
    from fedtwin.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
