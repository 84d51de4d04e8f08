"""``fedtwin stack``: starts what is missing as child processes, reuses what runs, stops only its own, and
ends bad input with one clear line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fedtwin import stack
from fedtwin.errors import ServiceUnavailable
from fedtwin.settings import Settings

pytestmark = pytest.mark.integration


def _settings(tmp_path: Path, kafka_port: int, redis_port: int) -> Settings:
    return Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        state_dir=tmp_path / "stack",
        artifact_dir=tmp_path / "artifacts",
    )


def test_up_status_down_start_and_stop_only_own_services(tmp_path: Path) -> None:
    s = _settings(tmp_path, stack.free_port(), stack.free_port())
    lines: list[str] = []
    stack.up(s, ("kafka", "redis"), echo=lines.append)
    try:
        assert any(line.startswith("kafka: healthy") for line in lines)
        status = {x.name: x for x in stack.status(s)}
        assert status["kafka"].reachable and status["kafka"].started_by_fedtwin
        assert status["redis"].reachable and status["redis"].started_by_fedtwin
        assert (s.state_dir / "kafka.log").exists()
        again: list[str] = []
        stack.up(s, ("kafka", "redis"), echo=again.append)
        assert all("reusing" in line for line in again)
    finally:
        stack.down(s, echo=lines.append)
    status = {x.name: x for x in stack.status(s)}
    assert not status["kafka"].reachable and not status["redis"].reachable


def test_an_external_service_is_reused_and_never_stopped(tmp_path: Path, redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    s = _settings(tmp_path, stack.free_port(), port)
    lines: list[str] = []
    stack.up(s, ("redis",), echo=lines.append)
    assert lines == [f"redis: reusing {s.redis_url}"]
    stack.down(s, echo=lines.append)
    assert stack._redis_ping(s.redis_url)
    assert not stack.status(s)[1].started_by_fedtwin


def test_a_port_taken_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        s = _settings(tmp_path, squatter.getsockname()[1], stack.free_port())
        with pytest.raises(ServiceUnavailable, match="in use by something that is not a healthy kafka"):
            stack.up(s, ("kafka",), echo=lambda _: None)


def test_cli_reports_bad_settings_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "FEDTWIN_REDIS_URL": "localhost:6379"}
    out = subprocess.run(
        [sys.executable, "-m", "fedtwin.cli", "stack", "status"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "redis_url" in out.stderr and "FEDTWIN_REDIS_URL" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_reused_pid_is_not_taken_for_ours(tmp_path: Path) -> None:
    """A pid file whose process start time differs (the pid was reused after a reboot) is ignored by down."""
    state = tmp_path / "stack"
    state.mkdir()
    (state / "kafka.pid").write_text(f"{os.getpid()} 1")  # this test process, with another start time
    s = _settings(tmp_path, stack.free_port(), stack.free_port())
    assert stack._read_pid(state, "kafka") is None
    stack.down(s, echo=lambda _: None)  # must not signal this process
    assert stack.status(s)[0].started_by_fedtwin is False
