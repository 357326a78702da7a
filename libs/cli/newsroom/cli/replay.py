"""``newsroom replay``: move a consumer group's offsets, like ``kafka-consumer-groups --reset-offsets``.

The plan (topic, partition, current, target, lag after the move) is printed first. The move is
refused while the group has live members unless ``--force``; the new offsets are committed by
a consumer that uses the group id with ``assign()`` and an explicit ``commit()`` — it never
subscribes, so it never joins or rebalances the group, and it commits to no other group.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from rich.table import Table
from rich.text import Text

from newsroom.cli.arguments import parse_datetime, parse_duration
from newsroom.cli.output import console
from newsroom.common.admin import (
    admin_client,
    commit_offsets,
    committed_offsets,
    live_members,
    partitions_of,
    plain_consumer,
)
from newsroom.common.errors import Refused
from newsroom.common.reading import running, spans, to_ms
from newsroom.common.settings import Settings, get_settings
from newsroom.common.topics import ALL_TOPICS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``newsroom replay``."""
    p = sub.add_parser(
        "replay",
        help="move a consumer group's committed offsets (reset-offsets)",
        description=(
            "Move a consumer group's committed offsets so that it re-reads (or skips) part of its topics. "
            "Prints the plan; refuses while the group has live members unless --force. Topics default to "
            "those the group has committed offsets on."
        ),
    )
    p.add_argument("--group", required=True, help="the consumer group to move (and no other)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-earliest", action="store_true", help="the first offset still in the log")
    target.add_argument("--to-latest", action="store_true", help="the end of the log (skip everything)")
    target.add_argument("--to-datetime", type=parse_datetime, metavar="T", help="first record at or after T")
    target.add_argument(
        "--by-duration", type=parse_duration, metavar="D", help="first record of D ago (15m, PT1H)"
    )
    target.add_argument("--shift-by", type=int, metavar="N", help="move each partition by N (negative: back)")
    p.add_argument("--topic", action="append", help="only this topic (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, commit nothing")
    p.add_argument(
        "--force",
        action="store_true",
        help="try the move even though the group shows live members (a broker refuses it while they are "
        "connected: the command then says so and moves nothing)",
    )
    p.set_defaults(func=cmd_replay)


@dataclass(frozen=True)
class Move:
    """One partition's planned move."""

    tp: TopicPartition
    current: int | None
    target: int
    begin: int
    end: int

    @property
    def lag_after(self) -> int:
        return max(0, self.end - self.target)


@dataclass(frozen=True)
class Plan:
    group: str
    moves: list[Move]
    members: list[str]


def target_offset(
    args: argparse.Namespace, current: int | None, begin: int, end: int, by_time: int | None
) -> int:
    """Where one partition goes (clamped to what the log holds)."""
    if args.to_earliest:
        return begin
    if args.to_latest:
        return end
    if args.shift_by is not None:
        base = current if current is not None else begin
        return min(max(base + args.shift_by, begin), end)
    return end if by_time is None else max(by_time, begin)


async def make_plan(settings: Settings, args: argparse.Namespace) -> Plan:
    """Read the group's state and the log's offsets; decide every partition's target."""
    async with admin_client(settings) as admin, running(plain_consumer(settings)) as consumer:
        members = await live_members(admin, args.group)
        names = args.topic or [t.name for t in ALL_TOPICS]
        tps = partitions_of(consumer, names)
        if args.topic:
            missing = set(args.topic) - {tp.topic for tp in tps}
            if missing:
                raise Refused(f"no such topic: {', '.join(sorted(missing))}")
        current = await committed_offsets(admin, args.group, tps)
        if not args.topic:  # default: the topics the group has committed on
            topics = {tp.topic for tp in current}
            tps = [tp for tp in tps if tp.topic in topics]
        found = await spans(consumer, tps)
        by_time: dict[TopicPartition, int | None] = {}
        moment: datetime | None = args.to_datetime
        if args.by_duration is not None:
            moment = datetime.now(UTC) - (args.by_duration or timedelta(0))
        if moment is not None and tps:
            hits = await consumer.offsets_for_times({tp: to_ms(moment) for tp in tps})
            # no record at or after the time: Kafka answers None, the embedded broker timestamp -1
            by_time = {
                tp: (hit.offset if hit is not None and hit.timestamp >= 0 else None)
                for tp, hit in hits.items()
            }
        moves = [
            Move(tp, current.get(tp), target_offset(args, current.get(tp), found[tp].begin, found[tp].end,
                                                    by_time.get(tp)), found[tp].begin, found[tp].end)
            for tp in tps
        ]  # fmt: skip
        return Plan(args.group, moves, members)


def plan_table(plan: Plan, dry_run: bool) -> Table:
    table = Table(title=f"replay plan for group {plan.group!r}" + (" (dry run)" if dry_run else ""))
    for col in ("topic", "partition", "current", "target", "log start", "log end", "lag after"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for m in plan.moves:
        changed = m.current != m.target
        table.add_row(m.tp.topic, str(m.tp.partition), "-" if m.current is None else str(m.current),
                      Text(str(m.target), style="bold" if changed else ""), str(m.begin), str(m.end),
                      str(m.lag_after))  # fmt: skip
    return table


def cmd_replay(args: argparse.Namespace) -> int:
    settings = get_settings()
    out = console()
    plan = asyncio.run(make_plan(settings, args))
    if not plan.moves:
        out.print(f"group {args.group!r} has no committed offsets on these topics; name them with --topic")
        return 1
    out.print(plan_table(plan, args.dry_run))
    if plan.members:
        out.print(f"group {args.group!r} has {len(plan.members)} live member(s): {', '.join(plan.members)}")
        if not args.force:
            out.print(
                Text(
                    f"refused: group {args.group!r} has live members; stop its consumers first "
                    "(or pass --force; the broker may still reject the commit)",
                    style="bold red",
                )
            )
            return 2
    if args.dry_run:
        out.print("dry run: nothing committed")
        return 0
    try:
        asyncio.run(commit_offsets(settings, args.group, {m.tp: m.target for m in plan.moves}))
    except (CommitFailedError, UnknownMemberIdError, IllegalGenerationError, RebalanceInProgressError) as exc:
        out.print(
            Text(
                f"the broker refused the new offsets for group {args.group!r} ({type(exc).__name__}); "
                "nothing was moved. A group with live members takes commits from its members only: "
                "stop its consumers, then replay again",
                style="bold red",
            )
        )
        return 3
    out.print(f"committed new offsets for {len(plan.moves)} partition(s) of group {args.group!r}")
    return 0
