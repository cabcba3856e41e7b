"""The SignalWire webhook server (aiohttp): SWML, SWAIG functions, health and metrics.

Routes:

- ``GET|POST /swml``: the SWML document, resolved per request through the
  shared resolver (a database outage falls back exactly as on LiveKit).
- ``POST /swaig``: SWAIG function calls, dispatched to the tool registry.
- ``GET /healthz``: ``ok`` / ``degraded`` with each fallback component's source
  and reason class (no details, no secrets); 503 when no config is available.
- ``GET /metrics``: Prometheus metrics of the package.
- ``GET /status``: the machine's status page (HTML, :mod:`livekit_fallback.status_page`);
  error details only with basic auth, like ``/healthz`` never without.

``/swml`` and ``/swaig`` require basic auth; ``/healthz`` and ``/metrics`` are
public so probes and scrapers need no secret. Every error is a JSON
``{"error": ...}``; no request can take the server down.

The SWML's webhook URL carries the basic-auth credentials, so its base never
comes from an untrusted header: a server bound to a non-loopback address
requires ``public_url`` (https unless ``allow_http``); on loopback, without
one, it is ``http://`` plus the request's Host header, which must be a plain
host name or IP address with an optional port (anything else gets 400).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from livekit_fallback.config.resolver import ConfigUnavailableError, Resolver
from livekit_fallback.log import log_safe, protect_secrets
from livekit_fallback.log import swaig_logger as logger
from livekit_fallback.metrics import CONTENT_TYPE, SWML_DOCUMENTS, render
from livekit_fallback.status_page import build_status_page, machine_storage
from livekit_fallback.tools import ToolRegistry

from .auth import Credentials, InsecureServerError, auth_middleware
from .bodies import error_middleware, error_reply, read_json
from .calls import CallInfo, CallStateHook, initial_global_data
from .connections import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, serve_limited
from .dispatch import handle_swaig
from .parameters import swaig_parameters
from .state import STATE, ServerState, state_of
from .swml import DEFAULT_LANGUAGE, HANGUP_FUNCTION, CallerContext, Language, build_swml
from .urls import checked_public_url, credentialed_url

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_VERTICAL",
    "PATHS",
    "ServerState",
    "create_app",
    "is_loopback",
    "run_server",
    "state_of",
]


DEFAULT_VERTICAL = "reverse_mortgage"
DEFAULT_MAX_BODY = 256 * 1024
"""Largest request body accepted, in bytes (SWAIG requests are a few KB; with call logs, more)."""

PATHS = {"swml": "/swml", "swaig": "/swaig", "health": "/healthz", "metrics": "/metrics", "status": "/status"}
PUBLIC_PATHS = frozenset({PATHS["health"], PATHS["metrics"], PATHS["status"]})


_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?$"
)


def create_app(
    resolver: Resolver,
    registry: ToolRegistry | None,
    *,
    username: str | None,
    password: str | None,
    local_only: bool = False,
    vertical: str = DEFAULT_VERTICAL,
    max_body: int = DEFAULT_MAX_BODY,
    public_url: str | None = None,
    tool_timeout: float = 10.0,
    language: Language = DEFAULT_LANGUAGE,
    call_state: CallStateHook | None = None,
    allow_http: bool = False,
) -> web.Application:
    """Build the webhook application.

    Args:
        resolver: The shared resolver (the caller owns and closes it).
        registry: The tool registry, or ``None`` to serve no tools.
        username: Basic-auth user name (usually ``SWAIG_USERNAME``).
        password: Basic-auth password (usually ``SWAIG_PASSWORD``).
        local_only: Allow running without credentials; :func:`run_server` then
            binds loopback addresses only.
        vertical: The business vertical served.
        max_body: Largest request body in bytes; larger bodies get 413.
        public_url: The base URL SignalWire uses (``https://agent.example.com``);
            SWML's webhook URL is this plus ``/swaig`` with the credentials.
        tool_timeout: Seconds a tool may run.
        language: Language name and code for the SWML document.
        call_state: Call-state hook (sync or async) giving each call's
            initial ``global_data`` from what SignalWire posts for the call.
        allow_http: Accept an ``http://`` ``public_url`` (the credentials in
            the webhook URL then travel in clear text).

    Raises:
        InsecureServerError: No credentials and ``local_only`` is false, or
            only one of user name and password is given.
        SwaigSchemaError: A registry tool's schema cannot be declared in SWML.
        ValueError: ``public_url`` is not an http(s) URL with a host (and no
            query or credentials), or is ``http://`` without ``allow_http``, or a registry tool is named
            like the built-in hangup function.
    """
    credentials = None
    if username or password:
        credentials = Credentials(username or "", password or "")
    elif not local_only:
        raise InsecureServerError(
            "refusing to start without basic-auth credentials: set SWAIG_USERNAME and SWAIG_PASSWORD, "
            "or mark the server local-only"
        )
    if public_url is not None:
        checked_public_url(public_url, allow_http=allow_http)
    if credentials is not None:
        protect_secrets(*credentials.secret_forms())
    if registry is not None and HANGUP_FUNCTION in registry:
        raise ValueError(f"tool name {HANGUP_FUNCTION!r} is the built-in hangup function")
    for spec in registry or ():
        swaig_parameters(spec.parameters, tool=spec.name)  # fail at start, not on every call
    middlewares = [error_middleware(max_body), auth_middleware(credentials, PUBLIC_PATHS)]
    app = web.Application(client_max_size=max_body, middlewares=middlewares)
    app[STATE] = ServerState(
        resolver, registry, credentials, vertical, max_body, public_url, tool_timeout, language, call_state
    )
    app.router.add_route("GET", PATHS["swml"], _swml)
    app.router.add_route("POST", PATHS["swml"], _swml)
    app.router.add_post(PATHS["swaig"], _swaig)
    app.router.add_get(PATHS["health"], _health)
    app.router.add_get(PATHS["metrics"], _metrics)
    app.router.add_get(PATHS["status"], _status)
    return app


async def _swml(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await read_json(request, limit=state.max_body, required=False) if request.method == "POST" else None
    webhook_url = _webhook_url(request, state)
    if webhook_url is None:
        logger.warning("Refused /swml: Host header %s is not a host name", log_safe(request.headers.get("Host"), 80))
        return error_reply(400, "bad Host header; start the server with a public URL")
    call = CallInfo.from_request(body, request.query)
    try:
        config = await state.resolver.resolve(state.vertical, "signalwire")
        state.routing.remember(config)
    except ConfigUnavailableError as exc:
        SWML_DOCUMENTS.labels("unavailable").inc()
        logger.error("No SignalWire config available for %s: %s", state.vertical, exc)
        return error_reply(503, f"no configuration available for vertical {state.vertical!r}")
    registry = state.registry
    if registry is not None:
        missing = [name for node in config.nodes.values() for name in node.tools if name not in registry]
        if missing:
            logger.error(
                "Config for %s names tools this server does not implement: %s; they are left out of the SWML",
                state.vertical,
                sorted(set(missing)),
            )
    try:
        global_data = await initial_global_data(state.call_state, call)
    except Exception:
        SWML_DOCUMENTS.labels("unavailable").inc()
        logger.error(
            "The call-state hook failed for call %s; no SWML served", log_safe(call.call_id, 64), exc_info=True
        )
        return error_reply(503, "call state unavailable")
    doc = build_swml(
        config,
        webhook_url=webhook_url,
        registry=registry,
        caller=CallerContext.of_call(call),
        language=state.language,
        missing_tools="omit",
        global_data=global_data,
    )
    SWML_DOCUMENTS.labels("degraded" if config.is_degraded else "ok").inc()
    headers = {"X-Config-Degraded": str(len(config.degraded))}
    return web.json_response(doc, headers=headers)


def _webhook_url(request: web.Request, state: ServerState) -> str | None:
    """The SWAIG URL with the credentials; ``None`` when a request-derived host is not a plain host."""
    if state.public_url:
        base = state.public_url
    else:
        host = request.headers.get("Host", "")
        if not _HOST.match(host):
            return None
        base = f"http://{host}"
    return credentialed_url(base, state.credentials, PATHS["swaig"])


async def _swaig(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    payload = await read_json(request, limit=state.max_body, required=True)
    status, reply = await handle_swaig(state, payload)
    return web.json_response(reply, status=status)


async def _health(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    base: dict[str, Any] = {"vertical": state.vertical, "platform": "signalwire"}
    try:
        config = await state.resolver.resolve(state.vertical, "signalwire")
    except ConfigUnavailableError:
        report = state.resolver.status().to_json(public=True, unavailable=True)
        return web.json_response({**base, **report}, status=503)
    # The health record in the one shape every health report uses (public: no error details).
    return web.json_response(
        {**base, **state.resolver.status().to_json(public=True), "components": len(config.provenance)}
    )


async def _metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE})


async def _status(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    authenticated = state.credentials is None or state.credentials.matches(request.headers.get("Authorization"))
    resolver = state.resolver
    page = await build_status_page(
        machine_storage(resolver),
        public=not authenticated,
        snapshot_dirs=getattr(resolver.snapshots, "dirs", ()),
        title=f"{state.vertical} on SignalWire: livekit-fallback status",
    )
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def run_server(
    app: web.Application,
    *,
    host: str,
    port: int,
    ready: Callable[[int], None] | None = None,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Serve ``app`` until cancelled, SIGINT or SIGTERM, then shut down cleanly.

    Args:
        app: An app from :func:`create_app`.
        host: Address to bind.
        port: Port to bind (0 picks a free one).
        ready: Called with the bound port once listening.
        idle_timeout: Seconds a connection may wait without a complete
            request (idle, or half sent) before it is closed.
        max_connections: Most connections open at once (lowered to fit the
            process's file limit); see :mod:`swaig_fallback.connections`.

    Raises:
        InsecureServerError: The app has no credentials and ``host`` is not a
            loopback address, or ``host`` is not loopback and the app has no
            public URL (the webhook URL would come from a request header).
    """
    state = app[STATE]
    if state.credentials is None and not is_loopback(host):
        raise InsecureServerError(f"a server without credentials may only bind loopback addresses, not {host!r}")
    if state.public_url is None and not is_loopback(host):
        raise InsecureServerError(
            f"binding {host!r} needs a public URL: the webhook URL carries the credentials and must not "
            "be built from a request's Host header"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    runner, listener = await serve_limited(
        app, host=host, port=port, idle_timeout=idle_timeout, max_connections=max_connections
    )
    try:
        sockets = listener.sockets
        bound = sockets[0].getsockname()[1] if sockets else port
        logger.info("SWAIG server for %s listening on %s:%s", state.vertical, host, bound)
        if ready is not None:
            ready(bound)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        listener.close()
        await runner.cleanup()
