"""Every topic of the newsroom, declared once: name, partitions, retention, key, the events it holds.

Creating them is :func:`newsroom.common.admin.ensure_topics`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FOREVER = -1
DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Topic:
    """A Kafka topic and the settings it is created with."""

    name: str
    partitions: int
    key: str
    events: tuple[str, ...]
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = FOREVER
    description: str = ""
    extra_config: dict[str, str] = field(default_factory=dict)

    def misplaced(self, event_type: str) -> str | None:
        """Why an event of ``event_type`` must not be on this topic (it is none of its ``events``), or None.

        A topic that declares no events (the dead-letter topic) holds records of any kind."""
        if not self.events or event_type in self.events:
            return None
        return f"{event_type} does not belong on {self.name} (it holds {', '.join(self.events)})"

    def config(self) -> dict[str, str]:
        return {
            "cleanup.policy": self.cleanup_policy,
            "retention.ms": str(self.retention_ms),
            **self.extra_config,
        }


ARTICLES = Topic(
    "newsroom.articles",
    partitions=3,
    key="article id",
    events=("ArticleSubmitted", "ArticleRevised", "ArticleRetracted"),
    description="System of record for articles: every submission, revision and retraction.",
)
ENRICHED = Topic(
    "newsroom.articles.enriched",
    partitions=3,
    key="article id",
    events=("ArticleEnriched", "ArticleRetracted"),
    description="Articles with their tagged instruments; retractions forwarded in order.",
)
SECURITIES = Topic(
    "newsroom.securities",
    partitions=1,
    key="instrument id",
    events=("SecurityListed",),
    cleanup_policy="compact",
    description="The security master: one record per instrument, latest wins.",
)
TICKS = Topic(
    "newsroom.quotes.ticks",
    partitions=6,
    key="instrument id",
    events=("TickReceived",),
    retention_ms=7 * DAY_MS,
    description="Raw price ticks from feeds and replays.",
)
SNAPSHOTS = Topic(
    "newsroom.quotes.snapshots",
    partitions=3,
    key="instrument id",
    events=("QuoteUpdated",),
    cleanup_policy="compact",
    description="Public (delayed) per-instrument quote snapshots; latest per key is what counts.",
)
QUOTE_STATE = Topic(
    "newsroom.quotes.state",
    partitions=TICKS.partitions,
    key="ticks partition",
    events=("QuoteStateChunked", "QuoteStateSnapshotted"),
    cleanup_policy="compact",
    description="The quotes service's book per ticks partition (snapshot of partition p on partition p): "
    "state + the ticks offset it covers, restored on assignment instead of replaying history.",
)
DEAD_LETTERS = Topic(
    "newsroom.deadletter",
    partitions=1,
    key="original key",
    events=(),
    retention_ms=30 * DAY_MS,
    description="Records a consumer could not process, with the reason in headers.",
)

ALL_TOPICS: tuple[Topic, ...] = (
    ARTICLES,
    ENRICHED,
    SECURITIES,
    TICKS,
    SNAPSHOTS,
    QUOTE_STATE,
    DEAD_LETTERS,
)
BY_NAME = {t.name: t for t in ALL_TOPICS}
