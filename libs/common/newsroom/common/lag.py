"""Consumer groups seen from outside: committed offsets, end offsets and lag.

Shared by the ``newsroom lag|status|replay`` commands and by every consuming service,
which exports its own lag as the ``newsroom_consumer_lag`` gauge. The commands take ends from
:func:`~newsroom.common.reading.log_ends`, exact on the embedded broker too; the gauge takes
them as reported, which on the embedded broker stops short of each partition's last batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from aiokafka import TopicPartition
from prometheus_client import Gauge

from newsroom.common.admin import admin_client, committed_offsets, list_groups, partitions_of, plain_consumer
from newsroom.common.reading import log_ends, running
from newsroom.common.settings import Settings
from newsroom.common.topics import ALL_TOPICS

CONSUMER_LAG = Gauge(
    "newsroom_consumer_lag",
    "Records behind the end of a partition (the end as the broker reports it)",
    ["group", "topic", "partition"],
)
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class LagRow:
    group: str
    tp: TopicPartition
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


async def lag_rows(
    settings: Settings, groups: Sequence[str] | None = None, *, exact: bool = True
) -> list[LagRow]:
    """Committed offset and end of every partition each group has committed on.

    Not ``exact``: the ends as the broker reports them, without a fetch per partition (on the
    embedded broker, short of each partition's last batch).
    """
    async with admin_client(settings, "newsroom-lag") as admin, running(plain_consumer(settings)) as consumer:
        tps = partitions_of(consumer, [t.name for t in ALL_TOPICS])
        committed = {
            group: await committed_offsets(admin, group, tps) for group in groups or await list_groups(admin)
        }
        tps = sorted({tp for offsets in committed.values() for tp in offsets})
        if exact:
            ends = await log_ends(consumer, tps)
        else:
            ends = await consumer.end_offsets(tps) if tps else {}
    return [
        LagRow(group, tp, off, ends[tp])
        for group, offsets in committed.items()
        for tp, off in sorted(offsets.items())
    ]


async def report_lag(settings: Settings, groups: Sequence[str], interval: float = 15.0) -> None:
    """Keep the ``newsroom_consumer_lag`` gauge current for ``groups`` (runs until cancelled)."""
    while True:
        try:
            # the reported ends: a fetch per partition every round would load the embedded broker, whose
            # fetches list every batch of a partition
            for row in await lag_rows(settings, groups, exact=False):
                CONSUMER_LAG.labels(row.group, row.tp.topic, str(row.tp.partition)).set(row.lag)
        except Exception as exc:  # a metric must never take the service down; try again next round
            log.warning("consumer lag not measured", error=str(exc))
        await asyncio.sleep(interval)
