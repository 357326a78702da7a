"""The dead-letter protocol, in one place: what a letter's headers say, and how letters go back.

A record a consumer cannot process is parked on :data:`~newsroom.common.topics.DEAD_LETTERS` with
its key and value as they were and these headers:

``dlq-reason`` (why), ``dlq-service`` (who parked it), ``dlq-topic``/``dlq-partition``/``dlq-offset``
(where it was), ``dlq-failed-at`` (when), ``dlq-attempts`` (redrives so far), ``dlq-redriven-from``
(the letter it was redriven from, when it failed again after a redrive) and ``dlq-truncated`` (a value
too large to park whole: it is cut, and whole at its origin).

A redrive sends a letter's record back to its topic with its own headers, ``dlq-attempts`` one more
and ``dlq-redriven-from`` naming the letter; :func:`plan` decides which letters go back and which the
loop guard holds. ``newsroom dlq`` (``newsroom.cli.dlq``) reads and redrives them; every consumer
writes them through :meth:`~newsroom.common.messaging.Publisher.dead_letter_many`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

PREFIX = "dlq-"
REASON = "dlq-reason"
SERVICE = "dlq-service"
TOPIC = "dlq-topic"
PARTITION = "dlq-partition"
OFFSET = "dlq-offset"
FAILED_AT = "dlq-failed-at"
ATTEMPTS = "dlq-attempts"
REDRIVEN_FROM = "dlq-redriven-from"
TRUNCATED = "dlq-truncated"

MAX_REASON = 2000  # characters of a reason kept


def letter_headers(
    *,
    reason: str,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    failed_at: str,
    attempts: str | None,
    redriven_from: str | None,
) -> dict[str, str]:
    """The headers of a record's letter (``attempts``, ``redriven_from``: the record's own, if any)."""
    headers = {
        REASON: reason[:MAX_REASON],
        SERVICE: service,
        TOPIC: topic,
        PARTITION: str(partition),
        OFFSET: str(offset),
        FAILED_AT: failed_at,
        ATTEMPTS: attempts or "0",
    }
    if redriven_from is not None:  # failing again after a redrive: which letter it came from (see plan)
        headers[REDRIVEN_FROM] = redriven_from
    return headers


def parked_value(value: bytes, limit: int, headers: dict[str, str]) -> bytes:
    """``value`` as a letter carries it: cut to ``limit`` (and said so in ``headers``) when larger."""
    if len(value) <= limit:
        return value
    headers[TRUNCATED] = f"{len(value)} bytes, whole at {TOPIC}/{PARTITION}/{OFFSET}"
    return value[:limit]


@dataclass(frozen=True)
class DeadLetter:
    """One record of the dead-letter topic and what its headers say."""

    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_record(cls, rec: Any) -> DeadLetter:
        """From a consumed record (aiokafka's ``ConsumerRecord``)."""
        headers = tuple((k, bytes(v or b"")) for k, v in rec.headers or ())
        return cls(rec.offset, rec.timestamp, rec.key, rec.value or b"", headers)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return bytes(v).decode("utf-8", "replace")
        return None

    @property
    def reason(self) -> str:
        return self.header(REASON) or ""

    @property
    def topic(self) -> str | None:
        """The topic the record came from."""
        return self.header(TOPIC)

    @property
    def origin(self) -> str:
        """Where the record was: ``topic[partition]@offset``."""
        return f"{self.topic}[{self.header(PARTITION)}]@{self.header(OFFSET)}"

    @property
    def attempts(self) -> int:
        try:
            return int(self.header(ATTEMPTS) or 0)
        except ValueError:
            return 0

    @property
    def key_text(self) -> str:
        return self.key.decode("utf-8", "replace") if self.key is not None else ""

    def redriven_headers(self) -> list[tuple[str, bytes]]:
        """The headers its record goes back with: its own, one attempt more, and this letter's offset."""
        headers = [(k, v) for k, v in self.headers if not k.startswith(PREFIX)]
        return [
            *headers,
            (ATTEMPTS, str(self.attempts + 1).encode()),
            (REDRIVEN_FROM, str(self.offset).encode()),
        ]


@dataclass
class RedrivePlan:
    """Which dead letters go back to their topics and which the loop guard holds back."""

    redrive: list[DeadLetter] = field(default_factory=list)
    exhausted: list[DeadLetter] = field(default_factory=list)  # at the attempts limit
    unroutable: list[DeadLetter] = field(default_factory=list)  # no topic named, or one the broker lacks
    next_offset: int | None = None  # where the redrive group resumes, when the selection is unfiltered
    truncated: list[DeadLetter] = field(default_factory=list)  # parked cut short: the whole is on its topic
    superseded: list[DeadLetter] = field(default_factory=list)  # redriven already, and failed again
    absent: set[int] = field(default_factory=set)  # asked-for offsets the dead-letter topic does not hold

    @property
    def held(self) -> int:
        return len(self.exhausted) + len(self.unroutable) + len(self.truncated) + len(self.superseded)


def plan(
    letters: Sequence[DeadLetter],
    on_broker: Collection[str],
    *,
    max_attempts: int,
    offsets: Iterable[int] = (),
    key: str | None = None,
    topic: str | None = None,
) -> RedrivePlan:
    """The letters (read from where the last unfiltered run ended, or all of them) to redrive, and those
    held back and why; ``offsets``, ``key`` and ``topic`` select.

    A letter whose redriven record failed again (a later letter says it was redriven from it) is held
    back: that later letter, one attempt further, stands for it. So a message that keeps failing
    reaches the attempts limit, filtered runs or not.
    """
    wanted = set(offsets)
    unfiltered = not wanted and key is None and topic is None
    failed_again = {d.header(REDRIVEN_FROM) for d in letters} - {None}
    out = RedrivePlan(absent=wanted - {d.offset for d in letters})
    chosen = [
        d
        for d in letters
        if (not wanted or d.offset in wanted)
        and (key is None or d.key_text == key)
        and (topic is None or d.topic == topic)
    ]
    for d in chosen:
        if d.topic not in on_broker:
            out.unroutable.append(d)
        elif d.header(TRUNCATED):
            out.truncated.append(d)
        elif d.attempts >= max_attempts:
            out.exhausted.append(d)
        elif str(d.offset) in failed_again:
            out.superseded.append(d)
        else:
            out.redrive.append(d)
    if unfiltered and chosen:
        out.next_offset = max(d.offset for d in chosen) + 1
    return out
