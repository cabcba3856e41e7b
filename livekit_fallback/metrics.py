"""Every Prometheus metric of the package, in its own registry, defined here and nowhere else.

Every resolution is counted, including those answered from a cache, so a
dashboard sees exactly how many calls ran degraded. The SWAIG server serves
the metrics at ``/metrics``. In a LiveKit worker, either serve :func:`render`
from your own HTTP endpoint or start a standalone exporter with
:func:`start_metrics_server`::

    from livekit_fallback.metrics import start_metrics_server
    start_metrics_server(port=9464)          # http://127.0.0.1:9464/metrics
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = [
    "BREAKER_STATE",
    "CONTENT_TYPE",
    "DATABASE_READS",
    "DEGRADED",
    "FALLBACKS",
    "REGISTRY",
    "RESOLUTIONS",
    "RESOLUTION_SECONDS",
    "SWAIG_CALLS",
    "SWML_DOCUMENTS",
    "render",
    "start_metrics_server",
]

REGISTRY = CollectorRegistry(auto_describe=True)
"""The registry holding every livekit-fallback metric."""

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of :func:`render`'s output."""

FALLBACKS = Counter(
    "livekit_fallback_fallbacks",
    "Components served from a fallback copy, per resolution returned.",
    ["component", "platform", "source", "reason"],
    registry=REGISTRY,
)
RESOLUTIONS = Counter(
    "livekit_fallback_resolutions",
    "Resolutions returned, by outcome (healthy or degraded) and cache (hit, stale, miss).",
    ["platform", "outcome", "cache"],
    registry=REGISTRY,
)
RESOLUTION_SECONDS = Histogram(
    "livekit_fallback_resolution_seconds",
    "Wall time of a resolution as seen by the caller.",
    ["outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
DEGRADED = Gauge(
    "livekit_fallback_degraded",
    "1 when the latest resolution served this component from a fallback copy.",
    ["vertical", "platform", "component"],
    registry=REGISTRY,
)
BREAKER_STATE = Gauge(
    "livekit_fallback_breaker_state",
    "Database circuit breaker: 0 closed, 1 half-open, 2 open.",
    registry=REGISTRY,
)
DATABASE_READS = Counter(
    "livekit_fallback_database_reads",
    "Database reads by result: ok, failed, or skipped (breaker open).",
    ["result"],
    registry=REGISTRY,
)

SWAIG_CALLS = Counter(
    "livekit_fallback_swaig_calls",
    "SWAIG function calls by function and outcome (ok, bad_request, unknown_function, tool_error, timeout).",
    ["function", "outcome"],
    registry=REGISTRY,
)
"""Counter of SWAIG calls; unregistered function names are counted as ``unknown``."""
SWML_DOCUMENTS = Counter(
    "livekit_fallback_swml_documents",
    "SWML documents served, by outcome (ok, degraded: some component from a fallback, unavailable).",
    ["outcome"],
    registry=REGISTRY,
)


def render() -> bytes:
    """The current metrics in Prometheus text format."""
    return generate_latest(REGISTRY)


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> object:
    """Serve the package's metrics on ``http://addr:port/metrics`` from a background thread.

    Returns:
        The server object; call ``.shutdown()`` on it to stop.
    """
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return server
