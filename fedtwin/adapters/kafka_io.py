"""Thin Kafka adapters: explicit topic creation and producer/consumer factories with fedtwin's settings."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import SecretStr

from fedtwin.adapters.outages import kafka_logger
from fedtwin.errors import ServiceUnavailable
from fedtwin.settings import Settings

log = logging.getLogger(__name__)


KAFKA_CLIENT_LOG = kafka_logger("fedtwin.kafka")


def client_config(settings: Settings) -> dict[str, Any]:
    """Connection settings shared by every producer, consumer and admin client: brokers and security.

    A secured cluster needs configuration only: ``FEDTWIN_KAFKA_SECURITY_PROTOCOL`` (``SSL``, ``SASL_SSL``,
    ``SASL_PLAINTEXT``), the SASL mechanism, username and password, and the TLS CA, certificate and key
    files (checked when the settings are loaded).
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
        # librdkafka's lines go to Python logging without the per-attempt reconnect noise (an unreachable
        # broker printed ~290 lines in 15 s); callers report the outage once themselves.
        "logger": KAFKA_CLIENT_LOG,
    }
    optional = {
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": settings.kafka_sasl_username,
        "sasl.password": settings.kafka_sasl_password,
        "ssl.ca.location": settings.kafka_ssl_ca_location,
        "ssl.certificate.location": settings.kafka_ssl_certificate_location,
        "ssl.key.location": settings.kafka_ssl_key_location,
        "ssl.key.password": settings.kafka_ssl_key_password,
    }
    for key, value in optional.items():
        if isinstance(value, SecretStr):
            conf[key] = value.get_secret_value()
        elif value is not None:
            conf[key] = str(value)
    return conf


def make_admin(settings: Settings) -> AdminClient:
    """An admin client with client_config()."""
    return AdminClient(client_config(settings))


def all_topics(settings: Settings) -> list[str]:
    """Every topic the streaming path uses."""
    return [
        settings.sensor_topic,
        settings.alert_topic,
        settings.dlq_topic,
        settings.truth_topic,
        settings.decision_topic,
    ]


def ensure_topics(
    settings: Settings,
    topics: Iterable[str] | None = None,
    partitions: int | None = None,
    timeout_s: float = 15.0,
) -> list[str]:
    """Create missing topics explicitly (Tansu would auto-create them with 4 partitions); return the new ones.

    Raises
    ------
    ServiceUnavailable
        If the broker cannot be reached or refuses to create a topic.
    """
    wanted = list(topics) if topics is not None else all_topics(settings)
    n = partitions or settings.topic_partitions
    admin = make_admin(settings)
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            existing = set(admin.list_topics(timeout=min(5.0, timeout_s)).topics)
        except KafkaException as exc:
            last_error = exc
            time.sleep(0.5)
            continue
        missing = [t for t in wanted if t not in existing]
        if not missing:
            return []
        # `admin` stays referenced until every future resolved: dropping it early cancels them.
        futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1) for t in missing])
        created = []
        for topic, fut in futures.items():
            try:
                fut.result(timeout=max(0.1, deadline - time.monotonic()))
                created.append(topic)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise ServiceUnavailable(f"could not create topic {topic!r}: {exc}") from exc
        if created:
            log.info("created topics %s with %d partitions", created, n)
        return created
    raise ServiceUnavailable(
        f"Kafka at {settings.kafka_bootstrap_servers} not reachable within {timeout_s:.0f} s ({last_error}): "
        "start it with `fedtwin stack up` or set FEDTWIN_KAFKA_BOOTSTRAP_SERVERS"
    )


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Producer settings: acks from all replicas, small linger for batching without visible latency."""
    conf: dict[str, Any] = {
        **client_config(settings),
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "message.timeout.ms": 30000,
        "queue.buffering.max.kbytes": 262144,
        "enable.idempotence": False,  # Tansu 0.6 support is not verified here; keys + at-least-once suffice
    }
    conf.update(overrides)
    return conf


def make_producer(settings: Settings, **overrides: Any) -> Producer:
    """A producer with producer_config()."""
    return Producer(producer_config(settings, **overrides))


def consumer_config(settings: Settings, group: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Consumer settings for manual, at-least-once offset handling.

    Offsets are stored explicitly (``store_offsets``) after the results of a batch are acknowledged and
    committed synchronously; the session timeout stays short because Tansu holds JoinGroup for half of it.
    """
    conf: dict[str, Any] = {
        **client_config(settings),
        "group.id": group or settings.consumer_group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.kafka_session_timeout_ms,
        "heartbeat.interval.ms": max(100, settings.kafka_session_timeout_ms // 4),
        "fetch.wait.max.ms": 50,
        "enable.partition.eof": False,
    }
    conf.update(overrides)
    return conf


def make_consumer(settings: Settings, group: str | None = None, **overrides: Any) -> Consumer:
    """A consumer with consumer_config()."""
    return Consumer(consumer_config(settings, group, **overrides))


def ensure_broker(settings: Settings, timeout_s: float = 5.0) -> None:
    """Fail with one clear line when the broker is not reachable."""
    admin = make_admin(settings)
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ServiceUnavailable(
            f"Kafka at {settings.kafka_bootstrap_servers} is not reachable ({exc}): "
            "start it with `fedtwin stack up` or set FEDTWIN_KAFKA_BOOTSTRAP_SERVERS"
        ) from exc
