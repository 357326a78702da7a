"""Settings, read once from the environment (prefix ``NEWSROOM_``) and frozen."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from newsroom.common.topics import BY_NAME

PLACEHOLDER_SECRETS = frozenset({"dev-key", "changeme", "change-me", "secret", "password", ""})
DEFAULT_WATCHLIST = tuple(
    f"{exchange}:{symbol}"
    for exchange, symbol in (
        ("NASDAQ", "AMZN"),
        ("NASDAQ", "AAPL"),
        ("NASDAQ", "AMD"),
        ("NYSE", "BAC"),
        ("NASDAQ", "GOOG"),
        ("NASDAQ", "META"),
        ("NASDAQ", "MSFT"),
        ("NASDAQ", "NVDA"),
        ("NYSE", "ORCL"),
        ("NASDAQ", "TSLA"),
    )
)  # the seed page's "Recent Quotes"


# Template versions whose store format this code no longer reads or writes: a service pinned to one would
# misread that namespace's keys (a t2 meta is a hash, which MGET reads as missing) instead of failing.
RETIRED_TEMPLATE_VERSIONS = {
    "t1": "a page was a list and a key per piece",
    "t2": "an article's meta was a hash",
}


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(BaseSettings):
    """Every knob of the newsroom; each field is read from ``NEWSROOM_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="NEWSROOM_", frozen=True, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    """``NEWSROOM_ENVIRONMENT``: outside development, placeholder API keys are refused."""

    broker_url: str = "127.0.0.1:9092"
    """``NEWSROOM_BROKER_URL``: Kafka bootstrap servers (comma separated host:port)."""

    redis_url: str = "redis://127.0.0.1:6390/0"
    """``NEWSROOM_REDIS_URL``: the fragment store."""

    host: str = "127.0.0.1"
    """``NEWSROOM_HOST``: the interface every HTTP listener binds."""

    web_port: int = 8000
    """``NEWSROOM_WEB_PORT``: the public site."""

    api_port: int = 8001
    """``NEWSROOM_API_PORT``: the ingestion API."""

    enrichment_port: int = 8011
    """``NEWSROOM_ENRICHMENT_PORT``: health and metrics of the enrichment service."""

    quotes_port: int = 8012
    """``NEWSROOM_QUOTES_PORT``: health and metrics of the quotes service."""

    rendering_port: int = 8013
    """``NEWSROOM_RENDERING_PORT``: health and metrics of the rendering service."""

    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    """``NEWSROOM_API_KEYS``: comma-separated bearer keys allowed to write articles."""

    max_body_bytes: int = 1_000_000
    """``NEWSROOM_MAX_BODY_BYTES``: larger ingestion requests get 413."""

    http_max_header_bytes: int = 32 * 1024
    """``NEWSROOM_HTTP_MAX_HEADER_BYTES``: a request head (request line and headers) over this gets 431."""

    http_header_timeout_seconds: float = 10.0
    """``NEWSROOM_HTTP_HEADER_TIMEOUT_SECONDS``: a request head must arrive whole within this long of its
    first byte (for a new connection, of connecting), or the connection is closed."""

    http_keep_alive_seconds: int = 5
    """``NEWSROOM_HTTP_KEEP_ALIVE_SECONDS``: an idle keep-alive connection is closed after this long."""

    max_future_publish_seconds: float = 300.0
    """``NEWSROOM_MAX_FUTURE_PUBLISH_SECONDS``: how far ahead of the clock an article's ``published_at``
    may be (clock skew); later ones get 422 (scheduled publishing does not exist yet)."""

    quote_delay_minutes: int = 20
    """``NEWSROOM_QUOTE_DELAY_MINUTES``: public quotes show what was true this long ago."""

    quote_delay_by_exchange: Annotated[dict[str, int], NoDecode] = {}
    """``NEWSROOM_QUOTE_DELAY_BY_EXCHANGE``: per-exchange delays in minutes, e.g. ``TYO=20,NYSE=15``."""

    quote_coalesce_seconds: float = 1.0
    """``NEWSROOM_QUOTE_COALESCE_SECONDS``: at most one public snapshot per instrument this often."""

    quote_splits_file: str | None = None
    """``NEWSROOM_QUOTE_SPLITS_FILE``: known splits, CSV ``instrument,date,ratio`` (default: bundled)."""

    quote_snapshot_every_ticks: int = Field(default=50_000, ge=1)
    """``NEWSROOM_QUOTE_SNAPSHOT_EVERY_TICKS``: a ticks partition's book is snapshotted after this many
    ticks (and on revocation and shutdown): a restore replays at most about this many."""

    quote_snapshot_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)
    """``NEWSROOM_QUOTE_SNAPSHOT_SECONDS``: ... or this long after its last snapshot, if it took ticks."""

    watchlist: Annotated[tuple[str, ...], NoDecode] = DEFAULT_WATCHLIST
    """``NEWSROOM_WATCHLIST``: the "Recent Quotes" instruments, ``EXCHANGE:SYMBOL``, comma separated."""

    demo_simulate: bool = True
    """``NEWSROOM_DEMO_SIMULATE``: ``newsroom dev`` runs the quote simulator (0 holds prices still)."""

    demo_tick_interval: float = 2.0
    """``NEWSROOM_DEMO_TICK_INTERVAL``: seconds between simulated bursts of ticks."""

    linger_ms: int = 5
    """``NEWSROOM_LINGER_MS``: producer linger, so bursts become one batch per partition."""

    topic_replication_factor: int | None = Field(default=None, ge=1)
    """``NEWSROOM_TOPIC_REPLICATION_FACTOR``: the replicas of every topic created; by default 3, or as many
    as the cluster has brokers when it has fewer (1 on the embedded broker)."""

    topic_min_insync_replicas: int | None = Field(default=None, ge=1)
    """``NEWSROOM_TOPIC_MIN_INSYNC_REPLICAS``: ``min.insync.replicas`` of every topic created; by default 2
    where topics have three replicas or more (so an ``acks=all`` write survives one broker lost), else
    not set."""

    topic_partitions: Annotated[dict[str, int], NoDecode] = {}
    """``NEWSROOM_TOPIC_PARTITIONS``: partition counts instead of the registry's, for topics created from
    now on, e.g. ``newsroom.articles=12,newsroom.quotes.ticks=24`` (a topic's partitions bound how many
    replicas of its consumers share the work)."""

    kafka_idempotence: Literal["auto", "true", "false"] = "auto"
    """``NEWSROOM_KAFKA_IDEMPOTENCE``: the idempotent producer (no duplicate from a retried produce);
    ``auto`` asks the broker at start-up and uses it where the broker supports it (Apache Kafka does,
    the embedded broker does not)."""

    fetch_max_wait_ms: int = 50
    """``NEWSROOM_FETCH_MAX_WAIT_MS``: how long a consumer fetch waits for data."""

    publish_timeout_seconds: float = Field(default=5.0, gt=0, allow_inf_nan=False)
    """``NEWSROOM_PUBLISH_TIMEOUT_SECONDS``: a publish not acknowledged by the broker within this has
    failed (a consumer's batch comes again; the API answers 503 with Retry-After)."""

    request_deadline_seconds: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    """``NEWSROOM_REQUEST_DEADLINE_SECONDS``: the longest an API write waits for its outcome before
    answering 503 (whether it reached the log is then found by submitting it again)."""

    log_format: Literal["auto", "json", "console"] = "auto"
    """``NEWSROOM_LOG_FORMAT``: ``auto`` is console on a TTY and JSON lines otherwise."""

    run_dir: str = ".run"
    """``NEWSROOM_RUN_DIR``: where ``newsroom dev`` keeps Redis data and logs."""

    template_version: str = "t3"
    """``NEWSROOM_TEMPLATE_VERSION``: part of every key; bump to roll out new templates or page format.

    t2: a page is one JSON string with its own HTML inline (t1 kept a list and a key per piece).
    t3: an article's meta is one JSON string (t2 kept a hash)."""

    _split = field_validator("api_keys", "watchlist", mode="before")(_split_csv)

    @field_validator("quote_delay_by_exchange", mode="before")
    @classmethod
    def _minutes_by_exchange(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = (part.split("=", 1) for part in value.split(",") if part.strip())
            return {code.strip().upper(): int(minutes) for code, minutes in pairs}
        return value

    @field_validator("topic_partitions", mode="before")
    @classmethod
    def _partitions_by_topic(cls, value: object) -> object:
        if isinstance(value, str):
            pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("expected topic=partitions pairs, comma separated")
            return {name.strip(): int(count) for name, count in pairs}
        return value

    @field_validator("topic_partitions")
    @classmethod
    def _declared_topics(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(BY_NAME))
        if unknown:
            raise ValueError(f"no such topic in the registry: {', '.join(unknown)}")
        if any(count < 1 for count in value.values()):
            raise ValueError("a topic has at least one partition")
        ticks, state = (
            value.get(name, BY_NAME[name].partitions)
            for name in ("newsroom.quotes.ticks", "newsroom.quotes.state")
        )
        if state < ticks:  # quotes snapshots ticks partition p's book to state partition p
            raise ValueError(
                f"newsroom.quotes.state needs as many partitions as newsroom.quotes.ticks "
                f"({ticks}), not {state}"
            )
        return value

    @field_validator("template_version")
    @classmethod
    def _current_format(cls, value: str) -> str:
        if value in RETIRED_TEMPLATE_VERSIONS:
            raise ValueError(
                f"NEWSROOM_TEMPLATE_VERSION={value} names a store format this code no longer reads "
                f"({RETIRED_TEMPLATE_VERSIONS[value]}): use the default, rebuild fragments, then "
                f"`newsroom rebuild retire {value}`"
            )
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment != "development":
            bad = [k for k in self.api_keys if k.get_secret_value() in PLACEHOLDER_SECRETS]
            if bad or not self.api_keys:
                raise ValueError(
                    "NEWSROOM_API_KEYS must hold real keys outside development "
                    "(placeholders such as 'dev-key' are refused)"
                )
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        return [part.strip() for part in self.broker_url.split(",") if part.strip()]

    def port_of(self, service: str) -> int:
        return int(getattr(self, f"{'api' if service == 'ingestion' else service}_port"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
