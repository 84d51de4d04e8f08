"""Candidate flow: train -> shadow -> campaign -> promote, one deployment.

A new candidate is trained and registered without touching the champion, served as a shadow model (scored
on the live stream beside the champion, never alerting), made to sit a fault campaign with the champion,
and promoted only when it passes the offline gate and the live gate
(:func:`fedtwin.training.promotion.should_promote`).
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from fedtwin.adapters import tracking
from fedtwin.settings import get_settings
from fedtwin.streaming.serving import publish, unshadow
from fedtwin.training.promotion import CHAMPION, live_pair, should_promote
from flows.campaign import campaign_flow
from flows.training import training_flow


@task(retries=2, retry_delay_seconds=2, timeout_seconds=300, cache_policy=NO_CACHE)
def put_in_shadow(version: int, slot: str) -> int:
    """Publish registry ``version`` to shadow ``slot`` (as ``fedtwin model publish --shadow``).

    Returns the Redis version.
    """
    stored = publish(get_settings(), version, shadow=slot)
    get_run_logger().info("registry version %d in shadow slot %r (Redis version %d)", version, slot, stored)
    return stored


@task(retries=2, retry_delay_seconds=2, timeout_seconds=300, cache_policy=NO_CACHE)
def promote_candidate(version: int, slot: str) -> int:
    """Make registry ``version`` the champion (alias and Redis serving pointer); empty its shadow slot."""
    settings = get_settings()
    tracking.configure(settings)
    tracking.set_alias(settings.registered_model, CHAMPION, version)
    served = publish(settings, version)
    unshadow(settings, slot)
    return served


@flow(name="fedtwin-candidate", flow_run_name="candidate-{profile}-via-{slot}", log_prints=True)
def candidate_flow(
    strategy: str | None = None,
    compare: list[str] | None = None,
    profile: str = "demo",
    rounds: int | None = None,
    campaign_file: str = "campaigns/standard.yaml",
    slot: str = "challenger",
    shadow_wait_s: float = 3.0,
    require_live: bool | None = None,
) -> dict[str, Any]:
    """Train a candidate, serve it in shadow ``slot``, run the campaign, promote only if both gates pass.

    The scorer must serve ``slot`` (``FEDTWIN_SHADOW_MODELS='["challenger"]'``); ``shadow_wait_s`` gives it
    time to load the new shadow before the campaign starts streaming. ``require_live`` (default
    ``Settings.live_gate``) adds the live gate to the offline one; its minimums come from
    ``Settings.live_gate_min_windows`` and ``live_gate_min_faults``.
    """
    settings = get_settings()
    trained = training_flow(
        strategy=strategy, compare=compare, profile=profile, rounds=rounds, reason="candidate", promote=False
    )
    version = int(trained["registry"]["version"])
    put_in_shadow(version, slot)
    time.sleep(shadow_wait_s)
    campaign = campaign_flow(campaign_file)
    live = campaign["live"]
    live_cand, live_champ = live_pair(live["results"], live["models"], version)
    ok, why = should_promote(
        trained["candidate_metrics"],
        trained["champion_metrics"],
        live_candidate=live_cand,
        live_champion=live_champ,
        require_live=settings.live_gate if require_live is None else require_live,
        min_windows=settings.live_gate_min_windows,
        min_faults=settings.live_gate_min_faults,
    )
    served = promote_candidate(version, slot) if ok else None
    get_run_logger().info(
        "candidate v%d (%s): %s; %s", version, trained["best"], "promoted" if ok else "not promoted", why
    )
    return {
        "version": version,
        "strategy": trained["best"],
        "promoted": ok,
        "reason": why,
        "redis_version": served,
        "live": live["results"],
        "campaign": campaign["campaign"],
    }
