"""``fedtwin stack``: starts what is missing as child processes, reuses what runs, stops only its own, and
ends bad input with one clear line."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fedtwin.adapters import stack
from fedtwin.errors import ServiceUnavailable
from fedtwin.settings import Settings, ensure_credentials, write_credentials

pytestmark = pytest.mark.integration


def _settings(tmp_path: Path, kafka_port: int, redis_port: int) -> Settings:
    return Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        state_dir=tmp_path / "stack",
        artifact_dir=tmp_path / "artifacts",
        credentials_file=tmp_path / "credentials.json",
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
    assert stack.describe(status["redis"]) == "stopped"


def test_the_embedded_redis_keeps_its_data_through_down_and_up(tmp_path: Path) -> None:
    """Models, pointer, scorer state and plant control live in Redis: `stack down/up` must not lose them."""
    from fedtwin.adapters.redis_io import redis_client

    s = _settings(tmp_path, stack.free_port(), stack.free_port())
    stack.up(s, ("redis",), echo=lambda _: None)
    try:
        with redis_client(s) as client:
            client.set(s.key("model", "current"), b"7")
            client.hset(s.key("control", "pump-1"), mapping={"leak": "0.5", "rev": "3"})
        stack.down(s, echo=lambda _: None)
        stack.up(s, ("redis",), echo=lambda _: None)
        with redis_client(s) as client:
            assert client.get(s.key("model", "current")) == b"7"
            assert client.hgetall(s.key("control", "pump-1")) == {b"leak": b"0.5", b"rev": b"3"}
        assert any((s.state_dir / "redis-data").rglob("*.aof*"))
    finally:
        stack.down(s, echo=lambda _: None)


def test_an_external_service_is_reused_and_never_stopped(tmp_path: Path, redis_url: str) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    s = _settings(tmp_path, stack.free_port(), port)
    # A stale record says the stack's credentials protect this address: reusing an external Redis clears it,
    # so the external Redis (without a password) is not sent the stack's AUTH.
    creds = ensure_credentials(s.credentials_file)
    creds["redis"]["address"] = f"127.0.0.1:{port}"
    write_credentials(s.credentials_file, creds)
    lines: list[str] = []
    stack.up(s, ("redis",), echo=lines.append)
    assert lines == [f"redis: reusing {s.redis_url}"]
    assert s.redis_auth() == (None, None)
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
        [sys.executable, "-m", "fedtwin.app.cli", "stack", "status"],
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


def _cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 240
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fedtwin.app.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _http_status(url: str, auth: str | None = None, body: bytes | None = None) -> int:
    import base64
    import urllib.error
    import urllib.request

    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def test_stack_up_in_a_fresh_home_requires_credentials_everywhere(tmp_path: Path) -> None:
    """`fedtwin stack up` on its own ports: Redis refuses clients without the generated password, Prefect and
    MLflow answer 401 without basic auth, fedtwin's clients get in, and no child sees FEDTWIN_SIGNING_KEY."""
    import redis

    from fedtwin.adapters.redis_io import redis_client

    ports = {name: stack.free_port() for name in stack.SERVICES}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDTWIN_", "PREFECT_", "MLFLOW_"))}
    env.update(
        FEDTWIN_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{ports['kafka']}",
        FEDTWIN_REDIS_URL=f"redis://127.0.0.1:{ports['redis']}/0",
        FEDTWIN_MLFLOW_TRACKING_URI=f"http://127.0.0.1:{ports['mlflow']}",
        FEDTWIN_PREFECT_API_URL=f"http://127.0.0.1:{ports['prefect']}/api",
        FEDTWIN_SIGNING_KEY="must-not-reach-children",
    )
    # The four credentialed services (the Evidently UI and Prometheus have tests of their own).
    four = ["--only", "kafka", "--only", "redis", "--only", "mlflow", "--only", "prefect"]
    up = _cli(["stack", "up", *four], env, tmp_path)
    home = tmp_path / ".fedtwin"
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        creds_file = home / "credentials.json"
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        creds = json.loads(creds_file.read_text())
        s = Settings(
            kafka_bootstrap_servers=env["FEDTWIN_KAFKA_BOOTSTRAP_SERVERS"],
            redis_url=env["FEDTWIN_REDIS_URL"],
            mlflow_tracking_uri=env["FEDTWIN_MLFLOW_TRACKING_URI"],
            prefect_api_url=env["FEDTWIN_PREFECT_API_URL"],
            credentials_file=creds_file,
            state_dir=home / "stack",
        )

        # Redis: an ACL user with the generated password; without it, or with another, a client is refused.
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=ports["redis"], socket_timeout=5).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=ports["redis"], username="fedtwin", password="guess", socket_timeout=5).ping()
        with redis_client(s) as client:
            assert client.ping()
        assert "#" in (home / "stack" / "redis-users.acl").read_text()  # the hash, not the password
        assert creds["redis"]["password"] not in (home / "stack" / "redis-users.acl").read_text()

        # Prefect: its API answers 401 without the basic-auth string, 200 with the generated one.
        flows = f"http://127.0.0.1:{ports['prefect']}/api/flows/filter"
        assert _http_status(flows, body=b"{}") == 401
        assert _http_status(flows, auth=s.prefect_auth_string(), body=b"{}") == 200

        # MLflow: the basic-auth app answers 401 without credentials, 200 for the generated user.
        search = f"http://127.0.0.1:{ports['mlflow']}/api/2.0/mlflow/experiments/search?max_results=1"
        mlflow_auth = s.mlflow_auth()
        assert mlflow_auth is not None
        assert _http_status(search) == 401
        assert _http_status(search, auth=":".join(mlflow_auth)) == 200

        # Children get only what they need.
        for name in ("kafka", "mlflow", "prefect"):  # redis-server overwrites its environ with its title
            pid = int((home / "stack" / f"{name}.pid").read_text().split()[0])
            child_env = _environ(pid)
            assert not [k for k in child_env if k.startswith("FEDTWIN_")], name
            assert "must-not-reach-children" not in str(child_env)

        # config show and stack status name the credentials' source, never their values.
        no_key = {k: v for k, v in env.items() if k != "FEDTWIN_SIGNING_KEY"}
        shown = _cli(["config", "show"], no_key, tmp_path, timeout=60)
        status = _cli(["stack", "status"], env, tmp_path, timeout=60)
        assert shown.returncode == 0 and status.returncode == 0, shown.stderr + status.stderr
        assert "user fedtwin, generated by `fedtwin stack up`" in shown.stdout
        assert "generated (.fedtwin/credentials.json)" in shown.stdout
        for secret in (creds["signing_key"], creds["redis"]["password"], creds["prefect"]["password"]):
            assert secret not in shown.stdout + status.stdout
        assert status.stdout.count(" up ") == 4, status.stdout
    finally:
        down = _cli(["stack", "down"], env, tmp_path, timeout=120)
    assert down.returncode == 0, down.stderr
    after = json.loads((home / "credentials.json").read_text())
    assert [after[n]["address"] for n in ("redis", "prefect", "mlflow")] == [None, None, None]


def test_stack_status_masks_passwords_in_urls(tmp_path: Path) -> None:
    s = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{stack.free_port()}",
        redis_url=f"redis://ops:red-secret@127.0.0.1:{stack.free_port()}/0",
        mlflow_tracking_uri=f"http://ml:ml-secret@127.0.0.1:{stack.free_port()}",
        prefect_api_url=f"http://pf:pf-secret@127.0.0.1:{stack.free_port()}/api",
        state_dir=tmp_path / "stack",
        credentials_file=tmp_path / "credentials.json",
    )
    addresses = {x.name: x.address for x in stack.status(s)}
    assert "secret" not in str(addresses)
    assert addresses["mlflow"].startswith("http://ml:***@127.0.0.1:")
    assert addresses["redis"].startswith("redis://ops@127.0.0.1:")  # the password left the URL at load
