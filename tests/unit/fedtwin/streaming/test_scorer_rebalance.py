"""Scorer partition bookkeeping without services: what a rebalance hands over and takes away. The real
hand-over (three scorer processes, a kill, a real broker and Redis) is tests/integration/test_scale_out.py."""

from __future__ import annotations

import pytest
from confluent_kafka import Message, TopicPartition

from fedtwin.settings import Settings
from fedtwin.streaming.scorer import Scorer


class Recorder:
    """Stands in for the consumer inside a rebalance callback: records which assign call was made."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assign", [tp.partition for tp in partitions]))

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("incremental_assign", [tp.partition for tp in partitions]))


def _msgs(*partitions: int) -> list[Message]:
    return [
        Message(topic="s", partition=p, offset=i, key=b"pump-1", value=b"{}")
        for i, p in enumerate(partitions)
    ]


@pytest.mark.parametrize(
    ("strategy", "call"), [("cooperative-sticky", "incremental_assign"), ("range", "assign")]
)
def test_assignment_follows_the_protocol_and_moved_partitions_are_not_scored(
    strategy: str, call: str
) -> None:
    sc = Scorer(Settings(kafka_assignment_strategy=strategy), snapshot_state=False)
    consumer = Recorder()
    sc._on_assign(consumer, [TopicPartition("s", 0), TopicPartition("s", 1)])  # type: ignore[arg-type]
    assert consumer.calls == [(call, [0, 1])]
    assert [m.partition() for m in sc._owned_only(_msgs(0, 1, 2))] == [0, 1]
    sc._on_revoke(consumer, [TopicPartition("s", 1)])  # type: ignore[arg-type]
    # Fetched before the rebalance, partition 1's messages now belong to its new owner.
    assert [m.partition() for m in sc._owned_only(_msgs(0, 1, 1))] == [0]
    assert sc.stats.foreign_dropped == 3 and sc.stats.assignments == 1
