"""Retrain flow (run by the drift event): recalibrate the simulator to the stream's operating point, train."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from flows.training import training_flow
from tasks.monitoring import estimate_operating_point, read_recent_windows


@flow(name="fedtwin-retrain", log_prints=True)
def retrain_flow(
    drift: dict[str, Any] | None = None, profile: str = "demo", windows: int = 240
) -> dict[str, Any]:
    """Estimate the new operating point from streamed windows, re-simulate there, retrain, gate, promote."""
    # The windows that drifted, when the event names them; else the most recent ones.
    recent, cur_id = read_recent_windows(windows, window_ids=(drift or {}).get("current_id"))
    if len(recent) < 10:
        raise ValueError(f"only {len(recent)} streamed windows ({cur_id}): not enough to recalibrate")
    op = estimate_operating_point(recent)
    get_run_logger().info(
        "retraining at %s because of %s", op, (drift or {}).get("drifted_features", "request")
    )
    result = training_flow(
        profile=profile, speed_rpm=op["speed_rpm"], load_area_factor=op["load_area_factor"], reason="drift"
    )
    return {"operating_point": op, **result}
