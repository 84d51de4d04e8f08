"""Site workers vs in-process sites: the same training run (profile, rounds, seeds) both ways, wall time.

Run ``python -m benchmarks.scale_out_sites`` (or as one measurement of ``python -m benchmarks.scale_out``);
prints ``site_workers_same_model=<0|1>`` and ``site_workers=3 training_s=<f> in_process_training_s=<f>``.

Starts a temporary Prefect API (Prefect's test harness: a real server on a temporary SQLite database), three
``fedtwin site start`` processes (one per site of the profile, each with its own data directory), a temporary
MLflow store and its own Redis key prefix on the configured Redis. Both runs simulate their sites from scratch
(the site workers in their own directories), so both times include simulation and validation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


def _env(base: Path) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "FEDTWIN_REDIS_PREFIX": f"fedtwin-bench-sites-{tag}:",
        "FEDTWIN_MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow.db'}",
        "FEDTWIN_MLFLOW_EXPERIMENT": f"bench-sites-{tag}",
        "FEDTWIN_REGISTERED_MODEL": f"bench-sites-{tag}",
        "FEDTWIN_DATA_DIR": str(base / "coordinator"),
        "FEDTWIN_ARTIFACT_DIR": str(base / "artifacts"),
        "FEDTWIN_MONITORING_DIR": str(base / "monitoring"),
        "FEDTWIN_SIGNING_KEY": f"bench-{tag}",
        "FEDTWIN_SITE_POLL_S": "0.5",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
    }


def _train(executor: str, profile: str, rounds: int, strategy: str) -> tuple[float, dict[str, Any]]:
    from fedtwin.settings import get_settings
    from flows.training import training_flow

    os.environ["FEDTWIN_SITE_EXECUTOR"] = executor
    get_settings.cache_clear()
    t0 = time.perf_counter()
    result = training_flow(strategy=strategy, rounds=rounds, profile=profile, reason=f"bench-{executor}")
    return time.perf_counter() - t0, result


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)  # Prefect's worker ignores SIGTERM once the API is gone
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def measure_site_workers(args: argparse.Namespace | None = None) -> list[str]:
    """Train with 3 site workers, then in process; the ``name=value`` lines (see module docstring)."""
    profile = getattr(args, "sites_profile", "demo")
    rounds = int(getattr(args, "sites_rounds", 5))
    strategy = getattr(args, "sites_strategy", "fedavg")
    base = Path(tempfile.mkdtemp(prefix="bench-sites-"))
    old = dict(os.environ)
    os.environ.update(_env(base))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        from prefect.settings import PREFECT_API_URL
        from prefect.testing.utilities import prefect_test_harness

        from fedtwin.data.datasets import get_profile, train_scenarios
        from fedtwin.training.site_executor import wait_sites_ready

        with prefect_test_harness(server_startup_timeout=180):
            env = dict(os.environ, FEDTWIN_PREFECT_API_URL=str(PREFECT_API_URL.value()))
            sites = list(train_scenarios(get_profile(profile)))
            for site in sites:
                cmd = [sys.executable, "-m", "fedtwin.app.cli", "site", "start", "--site", site]
                with open(base / f"{site}.log", "wb") as log:
                    procs.append(
                        subprocess.Popen(
                            [*cmd, "--data-dir", str(base / "sites" / site)],
                            env=env,
                            stdout=log,
                            stderr=log,
                            start_new_session=True,
                        )
                    )
            wait_sites_ready(sites, timeout_s=300)
            remote_s, remote = _train("site_workers", profile, rounds, strategy)
            local_s, local = _train("in_process", profile, rounds, strategy)
    finally:
        for p in procs:
            _stop(p)
        _cleanup_redis(os.environ["FEDTWIN_REDIS_PREFIX"])
        os.environ.clear()
        os.environ.update(old)
        shutil.rmtree(base, ignore_errors=True)
    same = int(remote["model_sha256"] == local["model_sha256"])
    return [
        f"site_workers_profile={profile} rounds={rounds} strategy={strategy}",
        f"site_workers_same_model={same}",
        f"site_workers={len(sites)} training_s={remote_s:.2f} in_process_training_s={local_s:.2f}",
    ]


def _cleanup_redis(prefix: str) -> None:
    import redis

    from fedtwin.settings import get_settings

    get_settings.cache_clear()
    client = redis.Redis.from_url(get_settings().redis_url)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sites-profile", default="demo", help="Training profile (demo: the cheapest)")
    p.add_argument("--sites-rounds", type=int, default=5, help="Federated rounds of both runs")
    p.add_argument("--sites-strategy", default="fedavg", help="Aggregation rule of both runs")
    for line in measure_site_workers(p.parse_args()):
        print(line, flush=True)


if __name__ == "__main__":
    main()
