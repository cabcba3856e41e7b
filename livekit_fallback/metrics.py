"""Prometheus metrics of the package, in their own registry.

Exposed by the SWAIG server's ``/metrics`` endpoint; LiveKit workers can serve
them with :func:`render` or mount :data:`REGISTRY` in their own exporter.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "REGISTRY", "render"]

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry holding every livekit-fallback metric."""

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of :func:`render`'s output."""


def render() -> bytes:
    """The current metrics in Prometheus text format."""
    return generate_latest(REGISTRY)
