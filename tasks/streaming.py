"""Prefect tasks around the live plant, the scorer and fault injection (all touch Kafka and Redis)."""

from __future__ import annotations

import json
from typing import Any

from prefect import task

from fedtwin.adapters.redis_io import redis_client
from fedtwin.settings import get_settings
from fedtwin.streaming.live import clear, inject, run_plant, set_operating_point
from fedtwin.streaming.scorer import run_scorer


@task(retries=1, retry_delay_seconds=2)
def run_live_plant(seconds: float, assets: int = 4, speedup: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Stream ``seconds`` of simulated plant time per asset to the sensor topic."""
    return run_plant(get_settings(), assets=assets, duration_s=seconds, speedup=speedup, seed=seed).as_dict()


@task(retries=1, retry_delay_seconds=2)
def run_scorer_bounded(
    seconds: float,
    idle_exit_s: float | None = None,
    publish_features: bool = True,
    metrics_port: int | None = None,
) -> dict[str, Any]:
    """Score the sensor topic for at most ``seconds`` (or until idle); commits after alerts are acked."""
    return run_scorer(
        get_settings(),
        max_seconds=seconds,
        idle_exit_s=idle_exit_s,
        metrics_port=metrics_port,
        publish_features=publish_features,
    )


@task(retries=2, retry_delay_seconds=1, timeout_seconds=30)
def inject_fault(asset: str, fault: str, severity: float) -> dict[str, Any]:
    """Set a fault on a live asset from its next chunk on."""
    return inject(get_settings(), asset, fault, severity)


@task(retries=2, retry_delay_seconds=1, timeout_seconds=30)
def clear_faults(asset: str) -> dict[str, Any]:
    """Remove every fault from a live asset."""
    return clear(get_settings(), asset)


@task(retries=2, retry_delay_seconds=1, timeout_seconds=30)
def shift_operating_point(
    asset: str, speed_rpm: float | None, load_area_factor: float | None
) -> dict[str, Any]:
    """Move a live asset's operating point (not a fault)."""
    return set_operating_point(get_settings(), asset, speed_rpm=speed_rpm, load_area_factor=load_area_factor)


def read_stream(name: str, field: str, since_s: float = 0.0) -> list[dict[str, Any]]:
    """JSON records of one of fedtwin's Redis streams (``alerts``, ``truth``) added since a wall time."""
    s = get_settings()
    with redis_client(s) as client:
        entries = client.xrange(s.key(name), min=f"{int(since_s * 1000)}-0")
    return [json.loads(fields[field.encode()]) for _id, fields in entries]
