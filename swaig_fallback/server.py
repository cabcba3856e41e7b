"""The SignalWire webhook server (aiohttp): SWML, SWAIG functions, health and metrics.

Routes:

- ``GET|POST /swml``: the SWML document, resolved per request through the
  shared resolver (a database outage falls back exactly as on LiveKit).
- ``POST /swaig``: SWAIG function calls, dispatched to the tool registry.
- ``GET /healthz``: ``ok`` / ``degraded`` with each fallback component's source
  and reason class (no details, no secrets); 503 when no config is available.
- ``GET /metrics``: Prometheus metrics of the package.

``/swml`` and ``/swaig`` require basic auth; ``/healthz`` and ``/metrics`` are
public so probes and scrapers need no secret. Every error is a JSON
``{"error": ...}``; no request can take the server down.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from aiohttp import web

from livekit_fallback.config.resolver import ConfigUnavailableError, Resolver
from livekit_fallback.log import swaig_logger as logger
from livekit_fallback.metrics import CONTENT_TYPE, SWML_DOCUMENTS, render
from livekit_fallback.tools import ToolRegistry

from .auth import Credentials, InsecureServerError, auth_middleware
from .bodies import error_middleware, error_reply, read_json
from .dispatch import handle_swaig
from .parameters import swaig_parameters
from .swml import DEFAULT_LANGUAGE, CallerContext, Language, build_swml

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_VERTICAL", "PATHS", "ServerState", "create_app", "run_server", "state_of"]


DEFAULT_VERTICAL = "reverse_mortgage"
DEFAULT_MAX_BODY = 256 * 1024
"""Largest request body accepted, in bytes (SWAIG requests are a few KB; with call logs, more)."""

PATHS = {"swml": "/swml", "swaig": "/swaig", "health": "/healthz", "metrics": "/metrics"}
PUBLIC_PATHS = frozenset({PATHS["health"], PATHS["metrics"]})


@dataclass(frozen=True)
class ServerState:
    """What the handlers share; stored on the app under :data:`STATE`.

    Attributes:
        resolver: Resolves the config per request.
        registry: Tools served at ``/swaig`` (``None``: none; SWML declares generic functions).
        credentials: Required basic auth (``None`` only for a local-only server).
        vertical: The business vertical served.
        max_body: Largest accepted body in bytes.
        public_url: Base URL SignalWire reaches this server at (``None``: taken from the request).
        tool_timeout: Seconds a tool may run before a graceful reply is sent instead.
        language: The call language for the SWML ``languages`` entry.
    """

    resolver: Resolver
    registry: ToolRegistry | None
    credentials: Credentials | None
    vertical: str
    max_body: int
    public_url: str | None
    tool_timeout: float
    language: Language


STATE: web.AppKey[ServerState] = web.AppKey("swaig_state", ServerState)


def state_of(app: web.Application) -> ServerState:
    """The :class:`ServerState` of an app made by :func:`create_app`."""
    return app[STATE]


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

    Raises:
        InsecureServerError: No credentials and ``local_only`` is false, or
            only one of user name and password is given.
        SwaigSchemaError: A registry tool's schema cannot be declared in SWML.
        ValueError: ``public_url`` is not an http(s) URL.
    """
    credentials = None
    if username or password:
        credentials = Credentials(username or "", password or "")
    elif not local_only:
        raise InsecureServerError(
            "refusing to start without basic-auth credentials: set SWAIG_USERNAME and SWAIG_PASSWORD, "
            "or mark the server local-only"
        )
    if public_url is not None and urlsplit(public_url).scheme not in ("http", "https"):
        raise ValueError("public_url must be an http(s) URL")
    for spec in registry or ():
        swaig_parameters(spec.parameters, tool=spec.name)  # fail at start, not on every call
    middlewares = [error_middleware(max_body), auth_middleware(credentials, PUBLIC_PATHS)]
    app = web.Application(client_max_size=max_body, middlewares=middlewares)
    app[STATE] = ServerState(resolver, registry, credentials, vertical, max_body, public_url, tool_timeout, language)
    app.router.add_route("GET", PATHS["swml"], _swml)
    app.router.add_route("POST", PATHS["swml"], _swml)
    app.router.add_post(PATHS["swaig"], _swaig)
    app.router.add_get(PATHS["health"], _health)
    app.router.add_get(PATHS["metrics"], _metrics)
    return app


async def _swml(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await read_json(request, limit=state.max_body, required=False) if request.method == "POST" else None
    caller = _caller(request, body)
    try:
        config = await state.resolver.resolve(state.vertical, "signalwire")
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
    doc = build_swml(
        config,
        webhook_url=_webhook_url(request, state),
        registry=registry,
        caller=caller,
        language=state.language,
        missing_tools="omit",
    )
    SWML_DOCUMENTS.labels("degraded" if config.is_degraded else "ok").inc()
    headers = {"X-Config-Degraded": str(len(config.degraded))}
    return web.json_response(doc, headers=headers)


def _caller(request: web.Request, body: Any) -> CallerContext:
    call = body.get("call") if isinstance(body, dict) else None
    call = call if isinstance(call, dict) else {}
    phone = call.get("to") if call.get("direction") == "outbound" else call.get("from")
    return CallerContext.clean(
        request.query.get("caller_name"),
        request.query.get("caller_phone") or (phone if isinstance(phone, str) else None),
    )


def _webhook_url(request: web.Request, state: ServerState) -> str:
    if state.public_url:
        base = urlsplit(state.public_url)
        scheme, host, prefix = base.scheme, base.netloc.rpartition("@")[2], base.path.rstrip("/")
    else:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        scheme = forwarded if forwarded in ("http", "https") else request.scheme
        host, prefix = request.host, ""
    if state.credentials is not None:
        user = quote(state.credentials.username, safe="")
        host = f"{user}:{quote(state.credentials.password, safe='')}@{host}"
    return urlunsplit((scheme, host, prefix + PATHS["swaig"], "", ""))


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
        return web.json_response({**base, "status": "unavailable", "database": _database_health(state)}, status=503)
    degraded = {
        key: {"source": prov.source.value, "reason": prov.reason.value if prov.reason else None}
        for key, prov in config.degraded.items()
    }
    status = "degraded" if degraded else "ok"
    return web.json_response(
        {
            **base,
            "status": status,
            "database": _database_health(state),
            "components": len(config.provenance),
            "degraded": degraded,
        }
    )


def _database_health(state: ServerState) -> dict[str, Any]:
    """Database facts from the resolver's status, without error details (the endpoint is public)."""
    status = state.resolver.status()
    return {
        "configured": status.database_configured,
        "reachable": status.database_reachable,
        "since": status.since.isoformat() if status.since else None,
        "breaker": status.breaker,
    }


async def _metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def run_server(app: web.Application, *, host: str, port: int, ready: Callable[[int], None] | None = None) -> None:
    """Serve ``app`` until cancelled, SIGINT or SIGTERM, then shut down cleanly.

    Args:
        app: An app from :func:`create_app`.
        host: Address to bind.
        port: Port to bind (0 picks a free one).
        ready: Called with the bound port once listening.

    Raises:
        InsecureServerError: The app has no credentials and ``host`` is not a
            loopback address.
    """
    if app[STATE].credentials is None and not is_loopback(host):
        raise InsecureServerError(f"a server without credentials may only bind loopback addresses, not {host!r}")
    runner = web.AppRunner(app)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1] if runner.addresses else port
        logger.info("SWAIG server for %s listening on %s:%s", app[STATE].vertical, host, bound)
        if ready is not None:
            ready(bound)
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
