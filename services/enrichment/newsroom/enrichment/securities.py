"""The security master as events: read it from the securities topic, publish what changed.

The securities topic holds one ``SecurityListed`` per instrument (keyed by instrument id; the latest
record wins). ``newsroom securities load`` compares the reference data with what the topic holds and
publishes only the instruments that are new or whose listing changed; ``as_of`` alone changing is
not a change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from newsroom.common.events import SecurityListed, new_envelope
from newsroom.common.messaging import Publisher, Record, make_broker
from newsroom.common.reading import read_topic
from newsroom.common.settings import Settings
from newsroom.common.topics import SECURITIES

PRODUCER = "enrichment-cli"
BURST = 1000  # events per produce burst


async def published_securities(settings: Settings) -> dict[str, SecurityListed]:
    """The listings on the securities topic, latest per instrument id, in order of first appearance."""
    securities: dict[str, SecurityListed] = {}
    async for batch in read_topic(settings, SECURITIES.name):
        for rec in batch:
            envelope = Record.from_consumer_record(rec).envelope
            if envelope is not None and isinstance(envelope.data, SecurityListed):
                securities[envelope.data.instrument_id] = envelope.data
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
