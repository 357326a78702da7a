"""``newsroom dlq list|show|redrive``: inspect dead letters and send them back, loop-guarded.

The protocol itself (headers, what a letter is, the redrive plan) is :mod:`newsroom.common.deadletters`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from rich.json import JSON as RichJSON
from rich.table import Table
from rich.text import Text

from newsroom.cli.output import console, when
from newsroom.common import deadletters as dlq
from newsroom.common.admin import (
    admin_client,
    commit_offsets,
    committed_offsets,
    plain_consumer,
    resolved,
)
from newsroom.common.deadletters import DeadLetter, RedrivePlan
from newsroom.common.messaging import producer_options
from newsroom.common.reading import read_topic, running
from newsroom.common.settings import Settings, get_settings
from newsroom.common.topics import DEAD_LETTERS

MAX_DLQ_ATTEMPTS = 3
REDRIVE_GROUP = "newsroom-dlq-redrive"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dlq`` and its actions."""
    dlq = sub.add_parser("dlq", help=f"inspect and redrive dead letters ({DEAD_LETTERS.name})")
    actions = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")
    p = actions.add_parser("list", help="one row per dead letter: where it came from, why, attempts")
    p.add_argument("--key", help="only records with this key")
    p.set_defaults(func=cmd_dlq_list)
    p = actions.add_parser("show", help="headers and decoded value of dead letters by offset")
    p.add_argument("offsets", type=int, nargs="+", help="offsets on the dead-letter topic")
    p.set_defaults(func=cmd_dlq_show)
    p = actions.add_parser(
        "redrive",
        help="republish dead letters to their original topic (loop-guarded)",
        description=(
            "Republish each selected dead letter's original value and key to the topic named in its "
            "dlq-topic header, with dlq-attempts incremented. A record already redriven "
            f"--max-attempts times (default {MAX_DLQ_ATTEMPTS}) is skipped: a message that keeps failing "
            "is not redriven forever, and neither is one whose redriven record failed again (its later "
            "letter stands for it). Without --offset, only dead letters after the last unfiltered run are "
            f"taken (tracked as group {REDRIVE_GROUP!r}); --key and --topic narrow them."
        ),
    )
    p.add_argument("--offset", type=int, action="append", help="redrive this dead letter (repeatable)")
    p.add_argument("--key", help="only dead letters with this key")
    p.add_argument("--topic", help="only dead letters from this original topic")
    p.add_argument("--max-attempts", type=int, default=MAX_DLQ_ATTEMPTS, help="loop guard")
    p.add_argument("--dry-run", action="store_true", help="show what would be redriven, publish nothing")
    p.set_defaults(func=cmd_dlq_redrive)


async def dead_letters(settings: Settings, from_offset: int = 0) -> list[DeadLetter]:
    """Every record on the dead-letter topic (single partition), from ``from_offset``."""
    out: list[DeadLetter] = []
    async for batch in read_topic(settings, DEAD_LETTERS.name, required=True):
        out += [DeadLetter.from_record(rec) for rec in batch if rec.offset >= from_offset]
    return out


def cmd_dlq_list(args: argparse.Namespace) -> int:
    letters = asyncio.run(dead_letters(get_settings()))
    if args.key is not None:
        letters = [d for d in letters if d.key_text == args.key]
    table = Table(title=f"{DEAD_LETTERS.name}: {len(letters)} record(s)")
    for col in ("offset", "failed at", "service", "from", "key", "attempts", "reason"):
        table.add_column(col, justify="right" if col in ("offset", "attempts") else "left")
    for d in letters:
        table.add_row(str(d.offset), d.header(dlq.FAILED_AT) or when(d.timestamp_ms),
                      d.header(dlq.SERVICE) or "", d.origin, d.key_text, str(d.attempts),
                      d.reason[:120])  # fmt: skip
    console().print(table)
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    wanted = set(args.offsets)
    out = console()
    found = [d for d in asyncio.run(dead_letters(get_settings(), min(wanted))) if d.offset in wanted]
    for d in found:
        out.rule(f"dead letter @{d.offset}")
        headers = Table(show_header=False)
        for k, v in d.headers:
            headers.add_row(k, bytes(v).decode("utf-8", "replace"))
        out.print(headers)
        try:
            out.print(RichJSON(orjson.dumps(orjson.loads(d.value)).decode(), indent=2))
        except orjson.JSONDecodeError:
            out.print(Text(d.value[:4000].decode("utf-8", "replace")))
    missing = wanted - {d.offset for d in found}
    if missing:
        out.print(f"[red]no dead letter at offset(s) {', '.join(map(str, sorted(missing)))}[/red]")
        return 1
    return 0


async def plan_redrive(settings: Settings, args: argparse.Namespace) -> RedrivePlan:
    """The dead letters to redrive and those held back, and why (see :func:`deadletters.plan`).

    Taken from where the last unfiltered run ended (the redrive group's offset), or exactly the
    ``--offset`` letters.
    """
    tp = TopicPartition(DEAD_LETTERS.name, 0)
    start = 0
    if not args.offset:
        async with admin_client(settings) as admin:
            start = (await committed_offsets(admin, REDRIVE_GROUP, [tp])).get(tp, 0)
    letters = await dead_letters(settings, start)
    async with running(plain_consumer(settings)) as consumer:
        on_broker = await consumer.topics()
    return dlq.plan(
        letters,
        on_broker,
        max_attempts=args.max_attempts,
        offsets=args.offset or (),
        key=args.key,
        topic=args.topic,
    )


async def redrive(settings: Settings, letters: Sequence[DeadLetter]) -> int:
    """Republish each dead letter's value and key to its original topic with ``dlq-attempts`` + 1."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **producer_options(await resolved(settings))
    )
    await producer.start()
    try:
        pending = []
        for d in letters:
            assert d.topic is not None  # the plan holds back a letter without one
            pending.append(
                await producer.send(d.topic, value=d.value, key=d.key, headers=d.redriven_headers())
            )
        await asyncio.gather(*pending)
        return len(pending)
    finally:
        await producer.stop()


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    settings = get_settings()
    out = console()
    plan = asyncio.run(plan_redrive(settings, args))
    table = Table(title="redrive plan" + (" (dry run)" if args.dry_run else ""))
    for col in ("offset", "to topic", "key", "attempts", "action"):
        table.add_column(col)
    for d in plan.redrive:
        table.add_row(str(d.offset), d.topic or "", d.key_text, str(d.attempts), "redrive")
    for d in plan.exhausted:
        guard = Text(f"skip: {d.attempts} attempts (max {args.max_attempts})", style="yellow")
        table.add_row(str(d.offset), d.topic or "", d.key_text, str(d.attempts), guard)
    for d in plan.unroutable:
        topic = d.topic
        lacking = f"skip: no such topic on the broker (later: --offset {d.offset})"
        why = Text(lacking if topic else "skip: no dlq-topic", style="red")
        table.add_row(str(d.offset), topic or "?", d.key_text, str(d.attempts), why)
    for d in plan.truncated:
        cut = Text(f"skip: parked cut short ({d.header(dlq.TRUNCATED)})", style="red")
        table.add_row(str(d.offset), d.topic or "", d.key_text, str(d.attempts), cut)
    for d in plan.superseded:
        again = Text("skip: redriven already, failed again (a later letter)", style="yellow")
        table.add_row(str(d.offset), d.topic or "", d.key_text, str(d.attempts), again)
    out.print(table)
    planned = plan.redrive + plan.exhausted + plan.unroutable + plan.truncated + plan.superseded
    if plan.absent:
        out.print(f"[red]no dead letter at offset(s) {', '.join(map(str, sorted(plan.absent)))}[/red]")
        if not planned:
            return 1
    skipped = plan.held
    if args.dry_run:
        out.print(f"dry run: would redrive {len(plan.redrive)}, skip {skipped}")
        return 0
    sent = asyncio.run(redrive(settings, plan.redrive))
    if plan.next_offset is not None:
        asyncio.run(
            commit_offsets(settings, REDRIVE_GROUP, {TopicPartition(DEAD_LETTERS.name, 0): plan.next_offset})
        )
    out.print(
        f"redriven: {sent}; skipped by the loop guard: {len(plan.exhausted)}; "
        f"failed again since: {len(plan.superseded)}; without a topic to go to: {len(plan.unroutable)}; "
        f"cut short: {len(plan.truncated)}"
    )
    return 0
