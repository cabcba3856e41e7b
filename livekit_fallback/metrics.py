"""Prometheus metrics of the package, for LiveKit workers and the SWAIG server.

The SWAIG server serves them at ``/metrics``. In a LiveKit worker, either
serve :func:`render` from your own HTTP endpoint or start a standalone
exporter with :func:`start_metrics_server`::

    from livekit_fallback.metrics import start_metrics_server
    start_metrics_server(port=9464)          # http://127.0.0.1:9464/metrics
"""

from __future__ import annotations

from prometheus_client import start_http_server

from .config.metrics import CONTENT_TYPE, REGISTRY, render

__all__ = ["CONTENT_TYPE", "REGISTRY", "render", "start_metrics_server"]


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> object:
    """Serve the package's metrics on ``http://addr:port/metrics`` from a background thread.

    Returns:
        The server object; call ``.shutdown()`` on it to stop.
    """
    server, _thread = start_http_server(port, addr=addr, registry=REGISTRY)
    return server
