"""The one way fedtwin opens Redis: the configured URL with bounded connect and read times."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

    from fedtwin.settings import Settings


def redis_client(settings: Settings, socket_timeout: float = 10.0) -> redis.Redis:
    """A client for ``settings.redis_url`` (connects lazily, on first command)."""
    import redis

    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=socket_timeout)
