"""Sites as Prefect workers, on real services: three `fedtwin site start` processes (own data directories the
coordinator is not given) serve the site-round flow on their own work pools; the training flow dispatches each
site call to them with run_deployment and reads results back from Redis."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedtwin.data.datasets import get_profile, train_scenarios
from fedtwin.settings import Settings, get_settings

pytestmark = [pytest.mark.integration, pytest.mark.long(seconds=180), pytest.mark.timeout(900)]

ROUNDS = 1  # each site call is a new flow-run process: round 0 (4 calls) plus one round


@pytest.fixture(scope="module")
def site_workers(
    fedtwin_env: Settings, prefect_api: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, tuple[subprocess.Popen[bytes], Path]]]:
    """One `fedtwin site start` process per site of the demo profile, each with its own data directory."""
    from prefect.settings import PREFECT_API_URL

    from fedtwin.training.site_executor import wait_sites_ready

    base = tmp_path_factory.mktemp("sites")
    env = dict(os.environ, FEDTWIN_PREFECT_API_URL=str(PREFECT_API_URL.value()), FEDTWIN_SITE_POLL_S="1")
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for site in train_scenarios(get_profile("demo")):
        data_dir = base / site
        cmd = [sys.executable, "-m", "fedtwin.app.cli", "site", "start", "--site", site]
        with open(base / f"{site}.log", "wb") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [*cmd, "--data-dir", str(data_dir)], env=env, stdout=log, stderr=log, start_new_session=True
            )
        procs[site] = (proc, data_dir)
    try:
        wait_sites_ready(list(procs), timeout_s=240)
        yield procs
    finally:
        for proc, _ in procs.values():
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a site worker (SIGINT: Prefect's worker ignores SIGTERM once the API is gone)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _train(monkeypatch: pytest.MonkeyPatch, executor: str, **env: str) -> dict:
    from flows.training import training_flow

    monkeypatch.setenv("FEDTWIN_SITE_EXECUTOR", executor)
    # Own registered model and Redis keys: these runs must not move the session's champion, which other
    # modules run by the same worker (in any order under pytest-xdist) expect to be the `trained` model.
    s = get_settings()
    monkeypatch.setenv("FEDTWIN_REGISTERED_MODEL", f"{s.registered_model}-sites")
    monkeypatch.setenv("FEDTWIN_REDIS_PREFIX", f"{s.redis_prefix}sites:")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        return training_flow(strategy="fedavg", rounds=ROUNDS, profile="demo", reason=f"sites-{executor}")
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_site_workers_train_the_same_model_and_the_coordinator_never_holds_site_data(
    site_workers: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_root = Path(get_settings().data_dir)

    def run_dirs() -> set[Path]:
        # Other tests of the session train into the same data directory: only the new run folders count.
        return {d for d in data_root.iterdir() if d.name.startswith("run-")} if data_root.exists() else set()

    before = run_dirs()
    remote = _train(monkeypatch, "site_workers")
    remote_dirs = run_dirs() - before
    local = _train(monkeypatch, "in_process")
    assert remote["model_sha256"] == local["model_sha256"]
    assert remote["exact_match"] == local["exact_match"]
    # Each site's rows exist only in its own data directory; the coordinator's holds its held-out set only.
    for site, (_proc, data_dir) in site_workers.items():
        assert list(data_dir.rglob(f"{site}.npz")), f"{site} made no data in its own directory"
    assert len(remote_dirs) == 1
    assert sorted(p.name for p in remote_dirs.pop().iterdir()) == ["holdout.npz"]


def test_a_stopped_site_worker_is_a_failure_and_the_run_completes_on_quorum(
    site_workers: dict, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter

    site = sorted(site_workers)[0]
    stop(site_workers[site][0])
    caplog.set_level(logging.WARNING, logger="federated.server")
    result = _train(
        monkeypatch, "site_workers", FEDTWIN_SITE_TIMEOUT_S="120", FEDTWIN_SITE_PICKUP_TIMEOUT_S="20"
    )
    assert result["exact_match"]["fedavg"] > 0
    # A down site costs the pick-up timeout (20 s), not the call's whole timeout (120 s).
    assert f"client {site} not validated (kept): no worker picked it up within 20 s" in caplog.text
    assert f"client {site} excluded: round 0 gram failed: no worker picked it up within 20 s" in caplog.text
    # The stopped site's run timed out waiting for a worker and was cancelled, not left scheduled.
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[site])),
            flow_run_filter=FlowRunFilter(),
        )
    # Names repeat across the tests of the session (the first test ran the same site calls): keep every run.
    states = [(r.name, r.state_type.value if r.state_type else None) for r in runs]
    assert any(s == "CANCELLED" for _name, s in states), states
