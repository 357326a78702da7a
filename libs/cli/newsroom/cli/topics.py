"""``newsroom topics``: the declared topics, their partitions, offsets and message counts."""

from __future__ import annotations

import argparse
import asyncio

from aiokafka import TopicPartition
from rich.table import Table
from rich.text import Text

from newsroom.cli.output import console
from newsroom.common.admin import (
    partitions_of,
    plain_consumer,
)
from newsroom.common.reading import read_topic, running, spans
from newsroom.common.settings import Settings, get_settings
from newsroom.common.topics import ALL_TOPICS


async def describe_topics(settings: Settings, exact: bool) -> Table:
    """A table of every declared topic's partitions with start/end offsets and message counts."""
    async with running(plain_consumer(settings)) as consumer:
        tps = partitions_of(consumer, [t.name for t in ALL_TOPICS])
        found = await spans(consumer, tps)
    counts: dict[TopicPartition, int] = {}
    if exact:
        for topic in sorted({tp.topic for tp in tps}):  # the declared topics the broker has
            async for batch in read_topic(settings, topic):
                for rec in batch:
                    tp = TopicPartition(rec.topic, rec.partition)
                    counts[tp] = counts.get(tp, 0) + 1
    table = Table(title="topics" + ("" if exact else " (messages: end - start; --exact counts them)"))
    for col in ("topic", "partition", "start", "end", "messages"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for tp in tps:
        span = found[tp]
        count = str(counts.get(tp, 0)) if exact else f"≈{span.approx_count}"
        table.add_row(tp.topic, str(tp.partition), str(span.begin), str(span.end), count)
    for topic in sorted({t.name for t in ALL_TOPICS} - {tp.topic for tp in tps}):
        table.add_row(topic, "-", "-", "-", Text("missing (newsroom topics --create)", style="red"))
    return table


def cmd_topics_describe(args: argparse.Namespace) -> int:
    console().print(asyncio.run(describe_topics(get_settings(), args.exact)))
    return 0
