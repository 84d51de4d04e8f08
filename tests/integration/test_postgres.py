"""PostgreSQL backends: with FEDTWIN_DATABASE_URL set, `fedtwin stack up` runs the Prefect server and the
MLflow tracking server on PostgreSQL (databases created on first start), and the training flow and the
registry (registered model, champion alias) keep their state there. Needs the machine's PostgreSQL at
127.0.0.1:5432 (trust auth, user postgres; or FEDTWIN_TEST_POSTGRES_URL); each test creates its own
databases and drops them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedtwin.adapters import stack

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=90)]

SERVER = os.environ.get("FEDTWIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")

#: `fedtwin train` with a test-only profile smaller than "demo" (what is stored is the point here, not the
#: model's quality): fewer severities, operating points and test runs; still the 20 windows per site that
#: validation requires.
TRAIN_TINY = """
import sys
from dataclasses import replace
from fedtwin.app import cli
from fedtwin.data import datasets
datasets.PROFILES["tiny"] = replace(
    datasets.PROFILES["demo"], duration_s=3.0, train_severities=(0.4, 0.7, 1.0), train_speeds=(958.0,),
    train_loads=(1.0, 1.25), test_severities=(0.45,), test_healthy_runs_per_op=2,
)
sys.argv = ["fedtwin", "train", "--profile", "tiny", "--rounds", "3"]
cli.main()
"""


def _query(database: str, sql: str) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(f"{SERVER}/{database}", connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture()
def pg_name() -> Iterator[str]:
    """A fresh database name prefix; every database created under it is dropped afterwards."""
    import psycopg2

    try:
        _query("postgres", "SELECT 1")
    except psycopg2.Error as exc:
        pytest.fail(f"PostgreSQL is not reachable at {SERVER}: {exc}")
    name = f"fedtwin_test_{uuid.uuid4().hex[:8]}"
    yield name
    conn = psycopg2.connect(f"{SERVER}/postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (name + "%",))
            for (db,) in cur.fetchall():
                cur.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
    finally:
        conn.close()


# Two servers started from nothing plus a training run through them: ~10 min measured on the 2-core machine
# at a load average of 16-20 (other work), so above pytest's default 600 s.
@pytest.mark.timeout(1200)
def test_stack_up_runs_prefect_and_mlflow_on_postgres_and_training_registers_there(
    pg_name: str, tmp_path: Path, redis_url: str
) -> None:
    import redis

    tag = pg_name.rsplit("_", 1)[1]
    home = tmp_path / ".fedtwin"
    ports = {name: stack.free_port() for name in ("mlflow", "prefect")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDTWIN_", "PREFECT_", "MLFLOW_"))}
    env.update(
        FEDTWIN_DATABASE_URL=f"{SERVER}/{pg_name}",
        FEDTWIN_MLFLOW_TRACKING_URI=f"http://127.0.0.1:{ports['mlflow']}",
        FEDTWIN_PREFECT_API_URL=f"http://127.0.0.1:{ports['prefect']}/api",
        FEDTWIN_REDIS_URL=redis_url,
        FEDTWIN_REDIS_PREFIX=f"fedtwin-pg-{tag}:",
        FEDTWIN_SIGNING_KEY=f"pg-test-key-{tag}",
        FEDTWIN_MLFLOW_EXPERIMENT=f"pg-{tag}",
        FEDTWIN_REGISTERED_MODEL=f"pg-{tag}",
    )

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *(args if args[0] == "-c" else ["-m", "fedtwin.app.cli", *args])],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    up = cli("stack", "up", "--only", "mlflow", "--only", "prefect")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        # Both servers created their own database and schema on the PostgreSQL server, and hold no SQLite.
        dbs = {
            r[0]
            for r in _query("postgres", f"SELECT datname FROM pg_database WHERE datname LIKE '{pg_name}%'")
        }
        assert dbs == {f"{pg_name}_prefect", f"{pg_name}_mlflow"}
        assert not (home / "stack" / "mlflow.db").exists()
        assert not list((home / "stack" / "prefect").glob("*.db"))
        for service in ("mlflow", "prefect"):  # the URL travels in the environment, never in argv
            pid = int((home / "stack" / f"{service}.pid").read_text().split()[0])
            assert pg_name not in Path(f"/proc/{pid}/cmdline").read_text()

        train = cli("-c", TRAIN_TINY, timeout=900)
        assert train.returncode == 0, train.stdout + train.stderr
        assert "registered pg-" in train.stdout

        # The registry (registered model, version, champion alias) lives in the MLflow database ...
        aliases = _query(f"{pg_name}_mlflow", "SELECT name, alias, version FROM registered_model_aliases")
        assert (f"pg-{tag}", "champion", 1) in aliases, aliases
        runs = _query(f"{pg_name}_mlflow", "SELECT count(*) FROM runs WHERE status = 'FINISHED'")
        assert runs[0][0] >= 1
        # ... and the training flow run with its task runs in the Prefect database.
        flow_runs = _query(
            f"{pg_name}_prefect",
            "SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id",
        )
        assert ("fedtwin-train", "COMPLETED") in {(n, str(t)) for n, t in flow_runs}, flow_runs
        tasks = _query(f"{pg_name}_prefect", "SELECT count(*) FROM task_run WHERE state_type = 'COMPLETED'")
        assert tasks[0][0] >= 3
    finally:
        down = cli("stack", "down", timeout=120)
        r = redis.Redis.from_url(redis_url)
        keys = list(r.scan_iter(match=env["FEDTWIN_REDIS_PREFIX"] + "*", count=1000))
        if keys:
            r.delete(*keys)
        r.close()
    assert down.returncode == 0, down.stderr
