"""Operator subcommands: ``topics``, ``tail``, ``lag``, ``dlq`` and ``status``.

Also the Kafka helpers the ``replay`` and ``rebuild`` commands share: partitions, start and
end offsets, committed offsets and live members of a group, time and duration parsing.

The embedded broker reports a partition's end as the first offset of its last record batch
plus one: :func:`spans`, and the reads through :func:`~newsroom.common.reading.read_topic`,
take the end from a fetch instead (:func:`~newsroom.common.reading.log_ends`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata
from rich.console import Console, Group
from rich.json import JSON as RichJSON
from rich.table import Table
from rich.text import Text

from newsroom.cli import SERVICES
from newsroom.common import deadletters as dlq
from newsroom.common.deadletters import DeadLetter, RedrivePlan
from newsroom.common.events import EventDecodeError, decode
from newsroom.common.lag import (
    LagRow,
    admin_client,
    committed_offsets,
    lag_rows,
    partitions_of,
    plain_consumer,
)
from newsroom.common.reading import read_topic, running, spans
from newsroom.common.settings import Settings, get_settings
from newsroom.common.topics import ALL_TOPICS, DEAD_LETTERS

MAX_DLQ_ATTEMPTS = 3
REDRIVE_GROUP = "newsroom-dlq-redrive"


def console() -> Console:
    """A rich console; wide enough for tables when output goes to a pipe or a file."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=200)


def key_values(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    """A two-column table without a header: a summary or a plan."""
    table = Table(title=title, show_header=False)
    for key, value in rows:
        table.add_row(key, value)
    return table


# --------------------------------------------------------------------------- time and offsets

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE
)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # Kafka's record timestamps are milliseconds since then


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h30m``, ``1d`` or ISO 8601 (``PT1H``, ``P1DT2H``) back from now, as a timedelta
    (at most back to 1970, where Kafka's record timestamps begin)."""
    text = text.strip()
    iso = _ISO_DURATION.match(text)
    try:
        if iso and any(iso.groupdict().values()):
            parts = {k: float(v) for k, v in iso.groupdict().items() if v}
            duration = timedelta(
                days=parts.get("d", 0),
                hours=parts.get("h", 0),
                minutes=parts.get("m", 0),
                seconds=parts.get("s", 0),
            )
        else:
            matches = list(_DURATION.finditer(text))
            if not matches or "".join(m.group(0) for m in matches).replace(" ", "") != text.replace(" ", ""):
                raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 90s, 15m, 2h, 1d or PT1H)")
            duration = timedelta(seconds=sum(float(m.group(1)) * _UNITS[m.group(2).lower()] for m in matches))
    except OverflowError:
        duration = timedelta.max
    if duration > datetime.now(UTC) - EPOCH:
        raise argparse.ArgumentTypeError(f"{text!r} reaches back before 1970, where Kafka's timestamps begin")
    return duration


def _iso_datetime(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC without a zone), None if ``text`` is not one."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time from 1970 on; without a zone it is taken as UTC."""
    moment = _iso_datetime(text)
    if moment is None:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}")
    if moment < EPOCH:
        raise argparse.ArgumentTypeError(f"{text!r} is before 1970, where Kafka's timestamps begin")
    return moment


def parse_from(text: str) -> str | datetime:
    """``earliest``, ``latest``, an ISO date-time or a duration back from now."""
    if text in ("earliest", "latest"):
        return text
    if _iso_datetime(text) is not None:
        return parse_datetime(text)
    return datetime.now(UTC) - parse_duration(text)


def at_least(least: float, kind: Callable[[str], float] = int) -> Callable[[str], float]:
    """An argument type: a number of ``kind`` no smaller than ``least``."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
        if not math.isfinite(value) or value < least:
            raise argparse.ArgumentTypeError(f"{text} is not a number from {least} on")
        return value

    return parse


async def live_members(admin: AIOKafkaAdminClient, group: str) -> list[str]:
    """Member ids of the group as the coordinator describes it (none for an unknown group)."""
    members: list[str] = []
    for response in await admin.describe_consumer_groups([group]):
        for entry in response.groups:
            error_code, group_id, _state, _ptype, _proto, group_members = entry[:6]
            if error_code == 0 and group_id == group:
                members += [m[0] for m in group_members]
    return members


async def commit_offsets(settings: Settings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit offsets for ``group`` without joining it (assign + commit; no subscribe, no rebalance)."""
    async with running(plain_consumer(settings, group_id=group)) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in offsets.items()})


def header(rec: ConsumerRecord[Any, Any], name: str) -> str | None:
    for k, v in rec.headers or ():
        if k == name:
            return bytes(v).decode("utf-8", "replace")
    return None


def when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- registration


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tail``, ``lag``, ``dlq`` and ``status`` (``topics`` lists with :func:`cmd_topics_describe`)."""
    p = sub.add_parser(
        "tail",
        help="print a topic's events, decoded",
        description="Print a topic's records as decoded events (offset, time, key, type and payload).",
    )
    p.add_argument("topic", help="topic name, e.g. newsroom.articles")
    p.add_argument(
        "--from",
        dest="start",
        type=parse_from,
        default="earliest",
        help="earliest (default), latest, an ISO date-time, or a duration back from now (15m, 2h)",
    )
    p.add_argument("--key", help="only records with this key")
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new records")
    p.add_argument("--limit", type=at_least(0), default=0, help="stop after this many records (0: no limit)")
    p.add_argument("--compact", action="store_true", help="one line per record, no payload")
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser(
        "lag",
        help="consumer lag per group and partition",
        description="Committed offset, end offset and lag of every consumer group.",
    )
    p.add_argument("--group", action="append", help="only this group (repeatable)")
    p.set_defaults(func=cmd_lag)

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

    p = sub.add_parser("status", help="services' readiness, consumer lag and dead letters")
    p.add_argument("--watch", action="store_true", help="refresh live until Ctrl-C")
    p.add_argument(
        "--interval", type=at_least(0.1, float), default=2.0, help="seconds between refreshes with --watch"
    )
    p.set_defaults(func=cmd_status)


# --------------------------------------------------------------------------- topics


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


# --------------------------------------------------------------------------- tail


def render_record(rec: ConsumerRecord[Any, Any], compact: bool) -> Group | Text:
    """One record, decoded where possible, for the terminal."""
    key = rec.key.decode("utf-8", "replace") if rec.key is not None else "-"
    value: bytes = rec.value or b""
    line = Text()
    line.append(f"{rec.topic}[{rec.partition}]@{rec.offset}", style="bold cyan")
    line.append(f" {when(rec.timestamp)} ", style="dim")
    line.append(f"key={key} ", style="yellow")
    try:
        envelope = decode(value)
    except EventDecodeError as exc:
        line.append(f"undecodable: {exc}", style="bold red")
        if compact:
            return line
        return Group(line, Text(value[:2000].decode("utf-8", "replace")))
    line.append(f"{envelope.type} v{envelope.version}", style="bold green")
    line.append(f" by {envelope.producer}", style="dim")
    if compact:
        return line
    return Group(line, RichJSON(envelope.model_dump_json(), indent=2))


async def tail(settings: Settings, args: argparse.Namespace) -> int:
    out = console()
    shown = 0
    async for batch in read_topic(settings, args.topic, start=args.start, follow=args.follow, required=True):
        for rec in batch:
            if args.key is not None and (rec.key or b"").decode("utf-8", "replace") != args.key:
                continue
            out.print(render_record(rec, args.compact))
            shown += 1
            if args.limit and shown >= args.limit:
                return 0
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(tail(get_settings(), args))
    except KeyboardInterrupt:
        return 0


# --------------------------------------------------------------------------- lag


def lag_table(rows: Sequence[LagRow]) -> Table:
    table = Table(title="consumer lag")
    for col in ("group", "topic", "partition", "committed", "end", "lag"):
        table.add_column(col, justify="left" if col in ("group", "topic") else "right")
    for row in rows:
        style = "red" if row.lag > 1000 else "yellow" if row.lag > 0 else ""
        table.add_row(row.group, row.tp.topic, str(row.tp.partition), str(row.committed), str(row.end),
                      Text(str(row.lag), style=style))  # fmt: skip
    return table


def cmd_lag(args: argparse.Namespace) -> int:
    rows = asyncio.run(lag_rows(get_settings(), args.group))
    if rows:
        console().print(lag_table(rows))
    elif args.group:
        console().print(
            f"no committed offsets for group {', '.join(args.group)} (no such group, or none yet)"
        )
    else:
        console().print("no consumer group has committed offsets yet")
    return 0


# --------------------------------------------------------------------------- dead letters


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
        admin = await admin_client(settings)
        try:
            start = (await committed_offsets(admin, REDRIVE_GROUP, [tp])).get(tp, 0)
        finally:
            await admin.close()
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
        bootstrap_servers=settings.bootstrap_servers,
        linger_ms=settings.linger_ms,
        acks="all",
        enable_idempotence=False,
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


# --------------------------------------------------------------------------- status


async def readiness(settings: Settings) -> dict[str, tuple[int | None, float]]:
    """Each service's /readyz status code (None if unreachable) and how long it took to answer."""

    async def probe(client: httpx.AsyncClient, service: str) -> tuple[str, tuple[int | None, float]]:
        started = time.perf_counter()
        try:
            r = await client.get(f"http://{settings.host}:{settings.port_of(service)}/readyz")
            return service, (r.status_code, time.perf_counter() - started)
        except httpx.HTTPError:
            return service, (None, time.perf_counter() - started)

    async with httpx.AsyncClient(timeout=2.0) as client:
        return dict(await asyncio.gather(*(probe(client, s) for s in SERVICES)))


def supervised(settings: Settings) -> dict[str, Any]:
    """What a running `newsroom dev` says of its children (pid, restarts, last exit), or {} if none runs."""
    from newsroom.cli.core import STATE_FILE

    path = Path(settings.run_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["supervisor_pid"]), 0)  # a file left by a dev that died says nothing
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    children: dict[str, Any] = state.get("children", {})
    return children


async def status_view(settings: Settings) -> Group:
    """The services table (with restarts under `newsroom dev`), lag per group and dead-letter count."""
    ready = await readiness(settings)
    children = supervised(settings)
    services = Table(title=f"services ({datetime.now(UTC).isoformat(timespec='seconds')})")
    for col in ("service", "port", "ready", "answered in", "restarts"):
        services.add_column(col)
    for service, (code, took) in ready.items():
        state = (
            Text("ready", style="green")
            if code == 200
            else Text("down" if code is None else f"not ready ({code})", style="red")
        )
        child = children.get(service)
        restarts = "-" if child is None else str(child["restarts"])
        if child is not None and child.get("last_exit") is not None:
            restarts += f" (last exit {child['last_exit']})"
        services.add_row(service, str(settings.port_of(service)), state, f"{took * 1000:.0f} ms", restarts)
    parts: list[Any] = [services]
    try:
        rows = await lag_rows(settings)
        groups = Table(title="consumer groups")
        for col in ("group", "partitions", "lag"):
            groups.add_column(col, justify="left" if col == "group" else "right")
        totals: dict[str, tuple[int, int]] = {}
        for row in rows:
            n, lag = totals.get(row.group, (0, 0))
            totals[row.group] = (n + 1, lag + row.lag)
        for group, (n, lag) in sorted(totals.items()):
            groups.add_row(group, str(n), Text(str(lag), style="yellow" if lag else ""))
        parts.append(groups)
        async with running(plain_consumer(settings)) as consumer:
            dlq = await spans(consumer, partitions_of(consumer, [DEAD_LETTERS.name]))
        count = sum(s.approx_count for s in dlq.values())
        parts.append(Text(f"dead letters: ≈{count}", style="red" if count else "green"))
    except Exception as exc:  # the broker being down is a status to show, not a crash
        parts.append(Text(f"broker unreachable: {type(exc).__name__}: {exc}", style="bold red"))
    return Group(*parts)


def cmd_status(args: argparse.Namespace) -> int:
    settings = get_settings()
    out = console()
    if not args.watch:
        view = asyncio.run(status_view(settings))
        out.print(view)
        return 0
    from rich.live import Live

    async def watch() -> None:
        with Live(await status_view(settings), console=out, refresh_per_second=4) as live:
            while True:
                await asyncio.sleep(args.interval)
                live.update(await status_view(settings))

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch())
    return 0
