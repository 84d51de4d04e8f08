"""Preflight: check the services a flow will need before it spends minutes simulating."""

from __future__ import annotations

import redis as redis_lib
from prefect import get_run_logger, task

from fedtwin.adapters import tracking
from fedtwin.adapters.redis_io import redis_client
from fedtwin.errors import ServiceUnavailable
from fedtwin.settings import get_settings, mask_url


# No retries: a service that is down at the start is reported at once, in one line, before any work.
@task(timeout_seconds=60)
def preflight(mlflow: bool = True, redis: bool = True) -> None:
    """Raise :class:`ServiceUnavailable` naming the first unreachable service (MLflow, Redis) and the fix.

    MLflow is checked by :func:`fedtwin.adapters.tracking.configure` (its ``/health`` answers, the experiment
    exists or is created); Redis by a PING with the configured credentials.
    """
    settings = get_settings()
    if mlflow:
        tracking.configure(settings)
    if redis:
        try:
            with redis_client(settings, socket_timeout=2) as client:
                client.ping()
        except redis_lib.RedisError as exc:
            raise ServiceUnavailable(
                f"Redis is not reachable at {mask_url(settings.redis_url)} ({type(exc).__name__}: "
                f"{str(exc)[:120]}): run `fedtwin stack up` or set FEDTWIN_REDIS_URL"
            ) from None
    get_run_logger().info(
        "preflight: %s reachable", " and ".join(n for n, on in (("MLflow", mlflow), ("Redis", redis)) if on)
    )
