"""The security master as events: read it from the securities topic, publish what changed.

The securities topic holds one ``SecurityListed`` per instrument (keyed by instrument id; the latest
record wins). ``newsroom securities load`` compares the reference data with what the topic holds and
publishes only the instruments that are new or whose listing changed; ``as_of`` alone changing is
not a change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from newsroom.common.events import SecurityListed, new_envelope
from newsroom.common.messaging import Publisher, make_broker
from newsroom.common.reading import read_topic
from newsroom.common.records import Record
from newsroom.common.settings import Settings
from newsroom.common.topics import SECURITIES
from newsroom.enrichment.master import CURRENCY, MIC

PRODUCER = "enrichment-cli"
BURST = 1000  # events per produce burst


# What a listing may look like, per exchange: the symbols, MIC and currency the bundled data has.
SYMBOLS = {
    "NYSE": re.compile(r"[A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,3})?"),
    "NASDAQ": re.compile(r"[A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,3})?"),
    "TYO": re.compile(r"[0-9][0-9A-Z]{3}"),
    "INDEX": re.compile(r"[A-Z0-9]{1,10}"),
}
MAX_NAME = 200  # characters in a name or an alias
MAX_ALIASES = 30  # the bundled data has at most 5 per listing
MAX_FIELD = 300  # characters in source, as_of, isin, mic, currency
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _text_problem(what: str, text: str, limit: int) -> str | None:
    if not text.strip():
        return f"{what} is empty"
    if len(text) > limit:
        return f"{what} is {len(text)} characters; at most {limit}"
    if _CONTROL.search(text):
        return f"{what} holds control characters"
    if text != text.strip():
        return f"{what} has leading or trailing space"
    return None


def listing_problem(security: SecurityListed) -> str | None:
    """Why a listing must not enter the security master (it is inconsistent or not plausible), or None.

    The checks are about form, never about particular names: a known exchange (``MIC`` and currency
    matching it when given), a symbol of that exchange's shape, the instrument id spelt
    ``EXCHANGE:SYMBOL``, an index exactly when the exchange is ``INDEX``, a name and aliases that are
    printable text of sane length, and not too many aliases. Every bundled listing passes.
    """
    exchange, symbol = security.exchange, security.symbol
    shape = SYMBOLS.get(exchange)
    if shape is None:
        return f"unknown exchange {exchange[:40]!r}; known: {', '.join(SYMBOLS)}"
    if shape.fullmatch(symbol) is None:
        return f"symbol {symbol[:40]!r} is not a {exchange} symbol"
    if security.instrument_id != f"{exchange}:{symbol}":
        return f"instrument id {security.instrument_id[:60]!r} is not {exchange}:{symbol}"
    if (security.kind == "index") != (exchange == "INDEX"):
        return f"a {security.kind} listed on {exchange}"
    if security.mic is not None and security.mic != MIC.get(exchange):
        return f"MIC {security.mic[:20]!r} is not {exchange}'s"
    if security.currency is not None and security.currency != CURRENCY.get(exchange):
        return f"currency {security.currency[:20]!r} is not {exchange}'s"
    if (problem := _text_problem("name", security.name, MAX_NAME)) is not None:
        return problem
    if len(security.aliases) > MAX_ALIASES:
        return f"{len(security.aliases)} aliases; at most {MAX_ALIASES}"
    for alias in security.aliases:
        if (problem := _text_problem(f"alias {alias[:40]!r}", alias, MAX_NAME)) is not None:
            return problem
    for what, value in (("source", security.source), ("as_of", security.as_of), ("isin", security.isin)):
        if value is not None and (problem := _text_problem(what, value, MAX_FIELD)) is not None:
            return problem
    return None


def valid_listing(record: Record) -> tuple[SecurityListed | None, str | None]:
    """A consumed record's listing, or why it has none fit for the master (undecodable, not a
    ``SecurityListed``, or failing :func:`listing_problem`)."""
    if record.envelope is None:
        return None, record.error or "undecodable"
    data = record.envelope.data
    if not isinstance(data, SecurityListed):
        return None, f"{record.envelope.type} does not belong on {SECURITIES.name}"
    problem = listing_problem(data)
    if problem is not None:
        return None, f"invalid listing: {problem}"
    return data, None


async def published_securities(settings: Settings) -> dict[str, SecurityListed]:
    """The valid listings on the securities topic, latest per instrument id, in order of first
    appearance (an invalid record is left out: the enrichment service dead-letters it)."""
    securities: dict[str, SecurityListed] = {}
    async for batch in read_topic(settings, SECURITIES.name):
        for rec in batch:
            security, _ = valid_listing(Record.from_consumer_record(rec))
            if security is not None:
                securities[security.instrument_id] = security
    return securities


def same_listing(a: SecurityListed, b: SecurityListed) -> bool:
    """Whether two listings say the same, whatever date they were taken on."""
    return a.model_dump(exclude={"as_of"}) == b.model_dump(exclude={"as_of"})


@dataclass
class LoadPlan:
    """How the reference data compares with the topic: what to publish and what to leave."""

    new: list[SecurityListed] = field(default_factory=list)
    changed: list[SecurityListed] = field(default_factory=list)
    unchanged: int = 0
    only_on_topic: int = 0  # instruments the reference data no longer lists (left as they are)

    @classmethod
    def compare(cls, reference: Iterable[SecurityListed], published: dict[str, SecurityListed]) -> LoadPlan:
        """The plan that brings the topic up to ``reference``, given what it ``published``."""
        plan = cls()
        seen: set[str] = set()
        for security in reference:
            seen.add(security.instrument_id)
            current = published.get(security.instrument_id)
            if current is None:
                plan.new.append(security)
            elif same_listing(current, security):
                plan.unchanged += 1
            else:
                plan.changed.append(security)
        plan.only_on_topic = len(published.keys() - seen)
        return plan

    @property
    def to_publish(self) -> list[SecurityListed]:
        """New and changed listings, in reference-data order within each group."""
        return [*self.new, *self.changed]

    def summary(self) -> str:
        """One line: how many listings are new, changed and unchanged."""
        line = f"{len(self.new)} new, {len(self.changed)} changed, {self.unchanged} unchanged"
        if self.only_on_topic:
            line += f"; {self.only_on_topic} on the topic only (left as they are)"
        return line


async def publish_securities(settings: Settings, securities: list[SecurityListed]) -> int:
    """Publish ``securities`` to the securities topic in bursts, keyed by instrument id."""
    broker = make_broker(PRODUCER, settings)
    await broker.start()
    publisher = Publisher(broker, PRODUCER)
    sent = 0
    try:
        for i in range(0, len(securities), BURST):
            sent += await publisher.publish(
                (SECURITIES, security.instrument_id, new_envelope(security, producer=PRODUCER))
                for security in securities[i : i + BURST]
            )
    finally:
        await broker.stop()
    return sent


async def load_securities(
    settings: Settings, reference: Iterable[SecurityListed], *, dry_run: bool = False
) -> tuple[LoadPlan, int]:
    """Compare ``reference`` with the topic and publish what is new or changed (nothing if ``dry_run``).

    Returns the plan and how many events were published.
    """
    plan = LoadPlan.compare(reference, await published_securities(settings))
    if dry_run or not plan.to_publish:
        return plan, 0
    return plan, await publish_securities(settings, plan.to_publish)
