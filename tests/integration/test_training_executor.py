"""The training flow's executor on a real Prefect API: each site call is a task named by site and round, and
the training it runs is bit-identical to the in-memory run the benchmark measures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prefect import flow

from federated.client import ClientData
from federated.model import get_parameters
from fedtwin.data.datasets import LabelledWindows, save_windows
from fedtwin.settings import Settings
from fedtwin.training.recipe import train_strategy
from tasks.training import PrefectTaskExecutor, SiteSummary
from tests.unit.fedtwin.training.test_recipe import SMALL, _site

pytestmark = pytest.mark.integration


def _summaries(tmp_path: Path, clients: dict[str, ClientData]) -> dict[str, SiteSummary]:
    out = {}
    for sid, c in clients.items():
        z = np.zeros(len(c.X))
        path = save_windows(LabelledWindows(c.X, c.Y, np.zeros_like(c.Y), z, z, z), tmp_path / f"{sid}.npz")
        out[sid] = SiteSummary(sid, str(path), len(c.X), {}, 0)
    return out


@flow(name="fedtwin-test-executor")
def _train(summaries: dict[str, SiteSummary]) -> dict[str, Any]:
    from prefect.runtime import flow_run

    model, hist = train_strategy(
        "fedavg", PrefectTaskExecutor(summaries), sites=list(summaries), rounds=2, seed=1, model_kwargs=SMALL
    )
    assert hist is not None
    return {
        "params": get_parameters(model),
        "metrics": [r.metrics for r in hist.rounds],
        "excluded": hist.excluded,
        "flow_run_id": str(flow_run.id),
    }


def _task_run_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(r.name for r in runs)


def test_prefect_tasks_run_the_benchmarks_training(prefect_api: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    clients = {f"site{k}": _site(rng, k) for k in range(3)}
    out = _train(_summaries(tmp_path, clients))
    model, hist = train_strategy("fedavg", clients, rounds=2, seed=1, model_kwargs=SMALL)
    assert hist is not None and out["excluded"] == {}
    for a, b in zip(out["params"], get_parameters(model), strict=True):
        np.testing.assert_array_equal(a, b)
    assert out["metrics"] == [r.metrics for r in hist.rounds]
    per_site = ["check-{s}", "gram-{s}", "residuals-{s}", "stats-{s}", "update-{s}-r1", "update-{s}-r2"]
    want = sorted(n.format(s=s) for s in clients for n in per_site)
    # The API records task runs from events, a moment after the flow returns.
    deadline = time.monotonic() + 30
    while (names := _task_run_names(out["flow_run_id"])) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    assert names == want


def test_a_site_whose_data_is_gone_is_excluded_by_name(prefect_api: None, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    summaries = _summaries(tmp_path, {f"site{k}": _site(rng, k) for k in range(3)})
    Path(summaries["site2"].path).unlink()
    out = _train(summaries)
    assert list(out["excluded"]) == ["site2"]
    assert out["excluded"]["site2"].startswith("round 0 gram failed: FileNotFoundError: ")
    assert len(out["metrics"]) == 2


def test_training_flow_refuses_an_unknown_strategy_before_any_work(
    fedtwin_env: Settings, prefect_api: None
) -> None:
    from flows.training import training_flow

    runs_before = sorted(Path(fedtwin_env.data_dir).glob("run-*"))  # other tests of the session train too
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=r"^unknown federated strategy 'fedavgg'; known: \[") as err:
        training_flow(profile="demo", compare=["fedavg", "fedavgg"], reason="typo")
    assert "\n" not in str(err.value)
    assert time.monotonic() - t0 < 20
    assert sorted(Path(fedtwin_env.data_dir).glob("run-*")) == runs_before  # nothing simulated
