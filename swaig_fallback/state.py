"""The state the webhook's handlers share, stored on the aiohttp app.

Its own module so the server (which builds it) and the SWAIG dispatcher
(which reads it) do not import each other.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from livekit_fallback.config.model import AgentConfig
from livekit_fallback.config.resolver import Resolver
from livekit_fallback.tools import ToolRegistry

from .auth import Credentials
from .calls import CallStateHook
from .swml import Language

__all__ = ["ROUTING_WAIT", "STATE", "RoutingConfig", "ServerState", "state_of"]

ROUTING_WAIT = 0.05
"""Seconds a function call waits for a config resolution when the server already holds a config."""


class RoutingConfig:
    """The latest config this server resolved, for routing function calls without waiting on the database.

    A function call needs the config only to check its move against the node
    graph. While the server holds a config, a call waits at most
    :data:`ROUTING_WAIT` for a new resolution, then routes with the config it
    holds; the resolution goes on and its result is kept for the next call.
    """

    def __init__(self) -> None:
        self.latest: AgentConfig | None = None

    def remember(self, config: AgentConfig) -> None:
        """Keep a config the server resolved (for ``/swml``, ``/healthz`` or a function call)."""
        self.latest = config

    async def resolve(self, resolver: Resolver, vertical: str) -> AgentConfig:
        """The config to route with: a new resolution if it is quick, else the one held.

        Raises:
            ConfigUnavailableError: Nothing held and the resolution found no config.
        """
        held = self.latest
        pending = asyncio.ensure_future(resolver.resolve(vertical, "signalwire"))
        pending.add_done_callback(self._landed)
        if held is not None:
            done, _ = await asyncio.wait({pending}, timeout=ROUTING_WAIT)
            if not done:
                return held
        return await asyncio.shield(pending)

    def _landed(self, task: asyncio.Task[AgentConfig]) -> None:
        if not task.cancelled() and task.exception() is None:  # an exception is retrieved here, logged elsewhere
            self.latest = task.result()


@dataclass(frozen=True)
class ServerState:
    """What the handlers share; stored on the app under :data:`STATE`.

    Attributes:
        resolver: Resolves the config per request.
        registry: Tools served at ``/swaig`` (``None``: none; SWML declares generic functions).
        credentials: Required basic auth (``None`` only for a local-only server).
        vertical: The business vertical served.
        max_body: Largest accepted body in bytes.
        public_url: Base URL SignalWire reaches this server at (``None``: taken
            from a validated request Host, loopback servers only).
        tool_timeout: Seconds a tool may run before a graceful reply is sent instead.
        language: The call language for the SWML ``languages`` entry.
        call_state: The call-state hook giving each call's initial ``global_data``.
        routing: The latest config, for routing function calls without waiting.
    """

    resolver: Resolver
    registry: ToolRegistry | None
    credentials: Credentials | None
    vertical: str
    max_body: int
    public_url: str | None
    tool_timeout: float
    language: Language
    call_state: CallStateHook | None = None
    routing: RoutingConfig = field(default_factory=RoutingConfig)


STATE: web.AppKey[ServerState] = web.AppKey("swaig_state", ServerState)


def state_of(app: web.Application) -> ServerState:
    """The :class:`ServerState` of an app made by :func:`~swaig_fallback.server.create_app`."""
    return app[STATE]
