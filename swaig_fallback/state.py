"""The state the webhook's handlers share, stored on the aiohttp app.

Its own module so the server (which builds it) and the SWAIG dispatcher
(which reads it) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from livekit_fallback.config.resolver import Resolver
from livekit_fallback.tools import ToolRegistry

from .auth import Credentials
from .calls import CallStateHook
from .swml import Language

__all__ = ["STATE", "ServerState", "state_of"]


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


STATE: web.AppKey[ServerState] = web.AppKey("swaig_state", ServerState)


def state_of(app: web.Application) -> ServerState:
    """The :class:`ServerState` of an app made by :func:`~swaig_fallback.server.create_app`."""
    return app[STATE]
