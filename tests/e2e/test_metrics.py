"""Operators' view: every service answers /healthz, /readyz and /metrics."""

from __future__ import annotations

import httpx

from newsroom.cli.stack import SERVICE_ORDER
from tests.conftest import RunningStack, poll, publish_and_wait
from tests.fakes import new_article


def test_every_service_has_health_and_metrics(stack: RunningStack) -> None:
    """Each service is alive, ready, and publishes Prometheus metrics."""
    for name in SERVICE_ORDER:
        base = f"http://127.0.0.1:{stack.settings.port_of(name)}"
        health = httpx.get(base + "/healthz")
        assert health.status_code == 200, (name, health.text)
        assert httpx.get(base + "/readyz").status_code == 200, name
        metrics = httpx.get(base + "/metrics", follow_redirects=True)
        assert metrics.status_code == 200, name
        assert "# TYPE" in metrics.text, name


def test_consumers_export_processing_counts_and_lag(stack: RunningStack) -> None:
    """After an article flows through, enrichment reports it processed and its consumer lag."""
    publish_and_wait(stack, new_article())
    url = f"http://127.0.0.1:{stack.settings.enrichment_port}/metrics"
    text = poll(
        lambda: httpx.get(url, follow_redirects=True).text,
        lambda body: 'newsroom_consumer_lag{group="enrichment"' in body,
        timeout=60,
    )
    assert 'newsroom_events_processed_total{service="enrichment",type="ArticleSubmitted"}' in text
