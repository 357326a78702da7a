"""Kafka clients that never create a topic by asking about it.

A metadata request may ask the broker to create the topics it names (``allow_auto_topic_creation``,
which aiokafka always sets). Our Kafka runs with ``auto.create.topics.enable=false``; the embedded
broker cannot be told so, and creates a missing topic with one partition when a producer asks about
it. After a restart of the embedded broker (memory only, so it comes back empty) a producer's retry
then made ``newsroom.articles`` a one-partition topic that :func:`~newsroom.common.topics.ensure_topics`
took as existing. With the flag off, a publish to a missing topic fails (and is retried or answered
with 503) until the topic is created from the registry, with its declared partitions.
"""

from __future__ import annotations

from typing import Any

from aiokafka.protocol.metadata import MetadataRequest

_original_init = MetadataRequest.__init__


def _asking_only(
    self: MetadataRequest, topics: list[str] | None = None, allow_auto_topic_creation: Any = None
) -> None:
    _original_init(self, topics, False if allow_auto_topic_creation is None else allow_auto_topic_creation)


def apply() -> None:
    """Make every metadata request of this process leave topic creation to the registry (idempotent)."""
    MetadataRequest.__init__ = _asking_only
