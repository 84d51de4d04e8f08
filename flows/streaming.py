"""Streaming flows: the live plant producing to Kafka, and the scorer consuming it."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.streaming import run_live_plant, run_scorer_bounded


@flow(name="fedtwin-live-plant", log_prints=True)
def live_plant_flow(
    seconds: float = 60.0, assets: int = 4, speedup: float = 1.0, seed: int = 0
) -> dict[str, Any]:
    """Simulate ``assets`` pumps in real time (or ``speedup`` x) and stream their sensors to Kafka."""
    return run_live_plant(seconds, assets, speedup, seed)


@flow(name="fedtwin-scorer", log_prints=True)
def scorer_flow(seconds: float = 3600.0, metrics_port: int | None = None) -> dict[str, Any]:
    """Score the sensor topic with the serving model from Redis; alerts to Kafka and a Redis stream."""
    return run_scorer_bounded(seconds, publish_features=True, metrics_port=metrics_port)
