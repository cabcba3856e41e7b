"""Every Prometheus metric of the package, in its own registry, defined here and nowhere else.

Every resolution is counted, including those answered from a cache, so a
dashboard sees exactly how many calls ran degraded. The SWAIG server serves
the metrics at ``/metrics``.

A LiveKit worker runs every call in its own process, so its metrics are
scraped in prometheus_client's multiprocess mode, the way LiveKit's own are:
start the worker with ``AgentServer(prometheus_port=9100,
prometheus_multiproc_dir="/tmp/lk-metrics")`` (or ``PROMETHEUS_MULTIPROC_DIR``
set before it starts) and the worker's main process serves every job
process's series, these included, summed across processes. The gauges here
use the ``mostrecent`` mode, so a finished call leaves no series of its own
behind. Starting a metrics server inside a job process is refused with
:class:`MetricsServerError`: two overlapping calls would clash on the port.
A single-process program may still start its own exporter::

    from livekit_fallback.metrics import start_metrics_server
    start_metrics_server(port=9464)          # http://127.0.0.1:9464/metrics
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from .errors import MetricsServerError

__all__ = [
    "BREAKER_STATE",
    "CONTENT_TYPE",
    "DATABASE_READS",
    "DEGRADED",
    "FALLBACKS",
    "LAST_KNOWN_GOOD_AGE",
    "MODEL_RECOVERIES",
    "MODEL_SWITCHES",
    "REGISTRY",
    "RESOLUTIONS",
    "RESOLUTION_SECONDS",
    "SNAPSHOT_AGE",
    "STATE_STORE_SLOW",
    "SWAIG_CALLS",
    "SWML_DOCUMENTS",
    "MetricsServerError",
    "mark_unbuildable",
    "render",
    "set_degraded",
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
    multiprocess_mode="mostrecent",
)
BREAKER_STATE = Gauge(
    "livekit_fallback_breaker_state",
    "Database circuit breaker: 0 closed, 1 half-open, 2 open.",
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
DATABASE_READS = Counter(
    "livekit_fallback_database_reads",
    "Database reads by result: ok, failed, or skipped (breaker open).",
    ["result"],
    registry=REGISTRY,
)
MODEL_SWITCHES = Counter(
    "livekit_fallback_model_switches",
    "Mid-call moves of a LiveKit model kind from a failed model to the next one of its backup chain.",
    ["kind", "from", "to"],
    registry=REGISTRY,
)
"""Counted when LiveKit's ``FallbackAdapter`` marks a model unavailable (``from``) and moves on (``to``)."""
MODEL_RECOVERIES = Counter(
    "livekit_fallback_model_recoveries",
    "A model that failed mid-call answered again and is used again, by kind and model.",
    ["kind", "model"],
    registry=REGISTRY,
)

SWAIG_CALLS = Counter(
    "livekit_fallback_swaig_calls",
    "SWAIG function calls by function and outcome (ok, bad_request, unknown_function, tool_error, timeout, shed).",
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
SNAPSHOT_AGE = Gauge(
    "livekit_fallback_snapshot_age_seconds",
    "Seconds since the vertical's snapshot file was taken (the last fallback every component has).",
    ["vertical"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
"""Set whenever the machine's view is read (status page, ``status --serve``'s ``/metrics``)."""
LAST_KNOWN_GOOD_AGE = Gauge(
    "livekit_fallback_last_known_good_age_seconds",
    "Seconds since the oldest component of the machine's last-known-good copy was read from the database.",
    ["vertical", "platform"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
"""Set whenever the machine's view is read (status page, ``status --serve``'s ``/metrics``)."""
STATE_STORE_SLOW = Counter(
    "livekit_fallback_state_store_slow",
    "Operations on the machine-wide state file that ran past their time limit (a busy disk or CPU); "
    "the call used this process's memory for them. Not a database failure.",
    registry=REGISTRY,
)


_UNBUILDABLE: set[tuple[str, str, str]] = set()


def mark_unbuildable(vertical: str, platform: str, component: str, unbuildable: bool) -> None:
    """Note whether a model can be built in this process; its degraded gauge stays 1 while it cannot."""
    key = (vertical, platform, component)
    if unbuildable:
        _UNBUILDABLE.add(key)
    else:
        _UNBUILDABLE.discard(key)
    DEGRADED.labels(vertical, platform, component).set(1 if unbuildable else 0)


def set_degraded(vertical: str, platform: str, component: str, degraded: bool) -> None:
    """Set a component's degraded gauge; a model that cannot be built here stays degraded."""
    value = degraded or (vertical, platform, component) in _UNBUILDABLE
    DEGRADED.labels(vertical, platform, component).set(1 if value else 0)


def render() -> bytes:
    """The current metrics in Prometheus text format.

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, as with several
    SWAIG server workers), every process's series, aggregated.
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        aggregate = CollectorRegistry()
        MultiProcessCollector(aggregate, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(aggregate)
    return generate_latest(REGISTRY)


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> object:
    """Serve the package's metrics on ``http://addr:port/metrics`` from a background thread.

    For single-process programs. A LiveKit worker serves the package's metrics
    from its main process instead (see the module docstring).

    Returns:
        The server object; call ``.shutdown()`` on it to stop.

    Raises:
        MetricsServerError: Called in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``
            set, as inside a LiveKit job process started with ``prometheus_multiproc_dir``).
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        raise MetricsServerError(
            "start_metrics_server() called in a multi-process worker (PROMETHEUS_MULTIPROC_DIR is set): "
            "every call's process would bind the same port. The worker's main process already serves these "
            "metrics: start it with AgentServer(prometheus_port=..., prometheus_multiproc_dir=...)."
        )
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return server
