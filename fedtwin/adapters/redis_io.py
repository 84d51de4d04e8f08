"""The one way fedtwin opens Redis: the configured URL and credentials with bounded connect and read times."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

if TYPE_CHECKING:
    from fedtwin.settings import Settings


def redis_client(settings: Settings, socket_timeout: float = 10.0) -> redis.Redis:
    """A client for ``settings.redis_url`` (connects lazily, on first command).

    Credentials: ``redis_password`` (or a password given in the URL), else the ones ``fedtwin stack up``
    generated when it started the Redis at this address (``Settings.redis_auth``).
    """
    username, password = settings.redis_auth()
    return redis.Redis.from_url(
        settings.redis_url,
        username=username,
        password=password,
        socket_connect_timeout=2,
        socket_timeout=socket_timeout,
    )
