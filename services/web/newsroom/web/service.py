"""The web tier: pages assembled from Redis fragments, and nothing else; it never talks to Kafka.

A thin shell, nothing built at import: :func:`create_app` makes the ASGI application
(:class:`~newsroom.web.site.Site`, which reads the store, caches pages and follows the renderer's
announcements) for ``newsroom run web``, or for uvicorn as ``newsroom.web.service:create_app`` with
``factory=True``.
"""

from __future__ import annotations

from newsroom.common.settings import Settings, get_settings
from newsroom.web.site import Site


def create_app(settings: Settings | None = None) -> Site:
    """The web tier's ASGI application, reading the store and template version the settings name."""
    settings = settings or get_settings()
    return Site(settings.redis_url, settings.template_version)
