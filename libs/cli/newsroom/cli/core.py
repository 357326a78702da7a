"""Core subcommands: ``run``, ``dev``, ``topics`` and ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import structlog

from newsroom.cli import SERVICES
from newsroom.common.settings import Settings, get_settings

STATE_FILE = "dev-state.json"  # in the run directory: what `newsroom dev` says of its children
log = structlog.get_logger("newsroom")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run one service in the foreground (SIGTERM stops it cleanly)")
    p.add_argument("service", choices=SERVICES)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("dev", help="the whole stack on the embedded broker and a private Redis, demo loaded")
    p.add_argument("--no-demo", action="store_true", help="start empty")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("topics", help="the declared topics: partitions, start/end offsets, message counts")
    p.add_argument("--exact", action="store_true", help="count the messages by reading them")
    p.add_argument("--create", action="store_true", help="create the declared topics that are missing")
    p.add_argument("--dry-run", action="store_true", help="with --create: list the topics, create nothing")
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("demo", help="load the demo content into a running stack")
    p.add_argument("--dry-run", action="store_true", help="list what would be loaded, send nothing")
    p.set_defaults(func=cmd_demo)
    from newsroom.cli import dlq, lag, rebuild, replay, status, tail

    for family in (tail, lag, dlq, status, replay, rebuild):  # one module per command family
        family.register(sub)


def cmd_run(args: argparse.Namespace) -> int:
    import importlib

    import uvicorn

    from newsroom.common.admin import resolved
    from newsroom.common.logging import configure_logging
    from newsroom.common.server import uvicorn_options

    configure_logging(args.service)
    settings = asyncio.run(resolved(get_settings()))  # the broker's capabilities, asked once
    module = importlib.import_module(f"newsroom.{args.service}.service")
    app = module.create_app(settings) if hasattr(module, "create_app") else module.app
    # uvicorn re-raises the stop signal after its graceful shutdown; with this handler in
    # place that re-raise is a no-op, so a clean stop exits 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port_of(args.service),
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        lifespan="on",
        **uvicorn_options(settings),  # bounds for slow and oversized request heads, keep-alive
    )
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from newsroom.cli.topics import cmd_topics_describe
    from newsroom.common.admin import ensure_topics, review_topics
    from newsroom.common.topics import ALL_TOPICS

    if not args.create:
        return cmd_topics_describe(args)
    settings = get_settings()
    for topic in ALL_TOPICS:
        partitions = settings.topic_partitions.get(topic.name, topic.partitions)
        print(f"{topic.name:<30} partitions={partitions} {topic.cleanup_policy:<8} key={topic.key}")
    if args.dry_run:
        return 0
    created = asyncio.run(ensure_topics(settings))
    print(f"created: {', '.join(created) or 'none (all existed)'}")
    layout, differences = asyncio.run(review_topics(settings))
    isr = layout.min_insync or "broker default"
    print(f"layout: replication factor {layout.replication}, min.insync.replicas {isr}")
    for difference in differences:
        print(f"differs: {difference}")
    return 1 if differences else 0


def load_demo(settings: Settings, api_key: str) -> None:
    """Post the demo articles through the API and publish the seed quotes as ticks."""
    from newsroom.cli import demo

    api = f"http://{settings.host}:{settings.api_port}"
    for article in demo.articles():
        r = httpx.post(
            f"{api}/v1/articles", json=article, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        )
        r.raise_for_status()
        log.info("demo article loaded", headline=article["headline"][:60], **r.json())
    asyncio.run(publish_ticks(settings, demo.seed_ticks(settings.quote_delay_minutes)))


async def publish_ticks(settings: Settings, ticks: list[Any]) -> None:
    from newsroom.common.events import instrument_id, new_envelope
    from newsroom.common.messaging import Publisher, make_broker
    from newsroom.common.topics import TICKS

    broker = make_broker("demo", settings)
    await broker.start()
    try:
        await Publisher(broker, "demo").publish(
            (TICKS, instrument_id(t.exchange, t.symbol), new_envelope(t, producer="demo")) for t in ticks
        )
    finally:
        await broker.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.dry_run:
        from newsroom.cli import demo

        for article in demo.articles():
            print(f"article: {article['headline']}")
        print(f"ticks:   {len(demo.seed_ticks(settings.quote_delay_minutes))} (the seed page's quotes)")
        print("dry run: nothing sent")
        return 0
    keys = [k.get_secret_value() for k in settings.api_keys]
    load_demo(settings, keys[0] if keys else "dev-key")
    return 0


def redis_to_start(settings: Settings, explicit: bool) -> int | None:
    """The port ``newsroom dev`` starts a private Redis on, or None to use the one the URL names.

    Without NEWSROOM_REDIS_URL the default port is ours. A URL naming a local port where nothing
    listens gets a private Redis there too; a Redis that answers is someone else's and is used as it is.
    A remote one that does not answer is :class:`StartFailed` (nothing here can start it).
    """
    from newsroom.cli.stack import LOCAL_HOSTS, StartFailed, port_open

    url = urlparse(settings.redis_url)
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    if port_open(host, port):
        return None if explicit else port
    if host in LOCAL_HOSTS:
        return port
    raise StartFailed(
        f"nothing answers at {settings.redis_url} (NEWSROOM_REDIS_URL): start Redis there, "
        "or unset the variable and `newsroom dev` starts a private one"
    )


def cmd_dev(args: argparse.Namespace) -> int:
    from newsroom.cli.stack import Stack, StartFailed
    from newsroom.common.logging import configure_logging

    configure_logging("dev")
    settings = get_settings()
    env: dict[str, str] = {}
    if sys.stdout.isatty() and settings.log_format == "auto":
        env["NEWSROOM_LOG_FORMAT"] = "console"  # children write to a pipe, but a person reads it
    if not settings.api_keys:
        env["NEWSROOM_API_KEYS"] = "dev-key"
        log.warning("NEWSROOM_API_KEYS not set: using the development key 'dev-key'")
    api_key = env.get("NEWSROOM_API_KEYS") or settings.api_keys[0].get_secret_value()
    run_dir = Path(settings.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    stack: Stack | None = None
    try:
        redis_port = redis_to_start(settings, explicit="NEWSROOM_REDIS_URL" in os.environ)
        stack = Stack.for_settings(settings, run_dir)
        stack.redis_port = redis_port
        if redis_port is not None:
            log.info("starting a private Redis", port=redis_port)
        stack.start_infra(settings)
        stack.start_services(settings, env)
        if not args.no_demo:
            load_demo(settings, api_key)
        if settings.demo_simulate and not args.no_demo:
            stack.start_command("simulator", ["quotes", "simulate"], env)
        log.info(
            "newsroom is up",
            site=f"http://{settings.host}:{settings.web_port}",
            api=f"http://{settings.host}:{settings.api_port}/docs",
        )
        stack.supervise(stop, run_dir / STATE_FILE)  # restarts a child that exits, until Ctrl-C
    except StartFailed as exc:
        print(f"newsroom dev: {exc}", file=sys.stderr)
        return 1
    finally:
        log.info("stopping the stack")
        if stack is not None:
            stack.stop()
            (run_dir / STATE_FILE).unlink(missing_ok=True)
    return 0
