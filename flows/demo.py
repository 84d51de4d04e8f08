"""The demo: train, then stream live plant data with a fault injected part-way and count the alerts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prefect import flow

from fedtwin.data.datasets import NOMINAL_LOAD, NOMINAL_SPEED_RPM
from fedtwin.settings import get_settings
from flows.training import training_flow
from tasks.streaming import (
    clear_faults,
    inject_fault,
    read_stream,
    run_live_plant,
    run_scorer_bounded,
    shift_operating_point,
)

DEMO_ASSET, DEMO_FAULT, DEMO_SEVERITY = "pump-1", "leak", 0.8


@flow(name="fedtwin-demo-stream", log_prints=True)
def demo_stream_flow(seconds: float = 24.0, fault_at: float = 10.0, assets: int = 4) -> dict[str, Any]:
    """Scorer and live plant side by side; a leak is injected on one pump ``fault_at`` seconds in."""
    if not 0 < fault_at < seconds:
        raise ValueError(f"fault_at={fault_at} must lie inside (0, seconds={seconds})")
    for i in range(1, assets + 1):  # a healthy fleet at the nominal point, whatever an earlier run left
        clear_faults(f"pump-{i}")
        shift_operating_point(f"pump-{i}", NOMINAL_SPEED_RPM, NOMINAL_LOAD)
    scorer = run_scorer_bounded.submit(seconds + 8.0, idle_exit_s=4.0)
    time.sleep(3.5)  # the consumer joins the group after session.timeout.ms / 2 on Tansu
    started = time.time()
    plant = run_live_plant.submit(seconds, assets, 1.0)
    time.sleep(fault_at)
    inject_fault(DEMO_ASSET, DEMO_FAULT, DEMO_SEVERITY)
    plant_stats, scorer_stats = plant.result(), scorer.result()
    clear_faults(DEMO_ASSET)  # the next `plant run` starts from a healthy fleet
    # Plant time (window times) may run behind the wall clock: the truth record says when the fault began.
    onset = min(
        (r["t"] for r in read_stream("truth", "truth", started) if r["asset"] == DEMO_ASSET and r["active"]),
        default=float("inf"),
    )
    alerts = [a for a in read_stream("alerts", "alert", started) if a["kind"] == "raise"]
    after = [a for a in alerts if a["asset"] == DEMO_ASSET and a["window_end"] > onset]
    before = [a for a in alerts if a not in after]
    return {
        "plant": plant_stats,
        "scorer": scorer_stats,
        "alerts_before": before,
        "alerts_after": after,
        "fault_onset": onset,
    }


def run_demo(
    seconds: float = 24.0,
    fault_at: float = 10.0,
    train_first: bool = True,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (optional), stream, print the alerts, the UI addresses, and the two figures last."""
    s = get_settings()
    if train_first:
        trained = training_flow(profile="demo", reason="demo")
        echo(
            f"trained: best={trained['best']} exact_match={trained['exact_match']} "
            f"registry={trained['registry']} redis_version={trained['redis_version']}"
        )
    out = demo_stream_flow(seconds=seconds, fault_at=fault_at)
    for a in out["alerts_before"] + out["alerts_after"]:
        when = time.strftime("%H:%M:%S", time.localtime(a["window_end"]))
        scores = ", ".join(f"{k}={v:.2f}" for k, v in a["scores"].items())
        echo(f"ALERT {when} {a['asset']} {'+'.join(a['faults'])} ({scores}) model v{a['model_version']}")
    echo(f"injected {DEMO_FAULT} (severity {DEMO_SEVERITY}) on {DEMO_ASSET} at {fault_at:.0f} s")
    echo(f"Prefect UI: {s.prefect_api_url.removesuffix('/api')}")
    echo(f"MLflow UI:  {s.mlflow_tracking_uri}")
    echo(f"alerts_while_healthy={len(out['alerts_before'])}")
    echo(f"alerts_after_fault={len(out['alerts_after'])}")
    return out
