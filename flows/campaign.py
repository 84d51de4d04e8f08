"""Campaign flow: play a scripted fault campaign on a live fleet, then evaluate every model being served."""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from fedtwin.adapters.redis_io import redis_client
from fedtwin.errors import FedtwinError
from fedtwin.settings import get_settings
from fedtwin.streaming import live
from fedtwin.streaming.campaign import Campaign, Event, Schedule, load_campaign
from flows.live_eval import live_eval_flow


def _apply(settings: Any, ev: Event, client: Any) -> None:
    """One scripted change through the live plant's control mechanism (the same as `fedtwin inject`)."""
    if ev.fault is not None:
        live.inject(settings, ev.asset, ev.fault, float(ev.severity or 0.0), client=client)
    elif ev.clear:
        live.clear(settings, ev.asset, client=client)
    elif ev.operating_point is not None:
        op = ev.operating_point
        live.set_operating_point(
            settings, ev.asset, speed_rpm=op.speed_rpm, load_area_factor=op.load_area_factor, client=client
        )
    elif ev.sensor is not None:
        sensor = ev.sensor
        live.set_sensor_fault(
            settings,
            ev.asset,
            stuck=sensor.stuck,
            drift=sensor.drift,
            drift_rate=sensor.drift_rate,
            client=client,
        )


@task(timeout_seconds=3600, cache_policy=NO_CACHE)
def play_campaign(spec: Campaign) -> dict[str, Any]:
    """Run the campaign's fleet for ``duration_s``, applying each event at its plant time.

    The assets start healthy at the nominal operating point (their control is reset), and each event is
    written to the control hash just before the chunk it belongs to, which the plant then reads at once:
    the change takes effect exactly at ``at`` (rounded up to a chunk), and the truth records say where.

    Returns
    -------
    dict
        ``since_wall_s`` (wall time before the first truth record), ``events_applied`` and the plant's stats.
    """
    settings = get_settings()
    names = spec.asset_names
    schedule = Schedule(spec.events)
    log = get_run_logger()
    with redis_client(settings) as client:
        client.delete(*[settings.key("control", a) for a in names])
        since = time.time() - 0.001  # Redis stream ids are in ms

        def before_tick(tick: int, sim_t: float) -> bool:
            due = schedule.due(sim_t)
            for ev in due:
                _apply(settings, ev, client)
                log.info("t=%.1f s: %s", sim_t, ev.model_dump(exclude_defaults=True))
            return bool(due)

        stats = live.run_plant(
            settings,
            assets=names,
            duration_s=spec.duration_s,
            speedup=spec.speedup,
            seed=spec.seed,
            before_tick=before_tick,
        )
    if stats.failed:
        raise FedtwinError(f"{stats.failed} plant messages were not delivered: the exam is incomplete")
    return {"since_wall_s": since, "events_applied": schedule.next, "plant": stats.as_dict()}


def _run_name() -> str:
    path = str(flow_run.parameters.get("campaign_file", "campaign"))
    return "campaign-" + path.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")


@flow(name="fedtwin-campaign", flow_run_name=_run_name, log_prints=True)
def campaign_flow(
    campaign_file: str = "campaigns/standard.yaml", evaluate: bool = True, log_to_mlflow: bool = True
) -> dict[str, Any]:
    """Play ``campaign_file`` on a live fleet, then (``evaluate``) the live evaluation of every served model.

    The scorer (``fedtwin score``, with any shadow slots) must be running against the same Kafka and Redis:
    the campaign only produces the stream and the truth; the models' decisions come from the scorer.
    """
    spec = load_campaign(campaign_file)
    played = play_campaign(spec)
    get_run_logger().info(
        "campaign %s: %d events on %d assets over %.0f plant s (%d chunks)",
        spec.name,
        played["events_applied"],
        len(spec.asset_names),
        spec.duration_s,
        played["plant"]["chunks"],
    )
    out: dict[str, Any] = {"campaign": spec.name, "assets": spec.asset_names, **played}
    if evaluate:
        out["live"] = live_eval_flow(
            spec.name, spec.asset_names, played["since_wall_s"], log_to_mlflow=log_to_mlflow
        )
    return out
