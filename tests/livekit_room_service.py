"""A local stand-in for LiveKit's room service, speaking Twirp over HTTP as the ``livekit-api`` client does.

The client posts protobuf bodies (``Content-Type: application/protobuf``) to
``/twirp/livekit.RoomService/<Method>`` with a bearer JWT signed by the API
secret. This server checks the token (a ``roomCreate`` grant, as LiveKit
requires for ``DeleteRoom``), records each call and answers with the protobuf
response; errors are Twirp JSON. It binds 127.0.0.1 only and is stopped by
whoever started it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from livekit import api
from livekit.protocol import room as room_proto

__all__ = ["RoomServiceCall", "RoomServiceStandIn"]


@dataclass(frozen=True)
class RoomServiceCall:
    """One Twirp call received: method, room named and when (``time.monotonic()``)."""

    method: str
    room: str
    at: float


class RoomServiceStandIn:
    """``POST /twirp/livekit.RoomService/DeleteRoom`` on 127.0.0.1, verifying the caller's token.

    Args:
        api_key: The key tokens must be issued by.
        api_secret: The secret tokens must be signed with.
        on_call: Called with each accepted call (for ordering against other events).

    Attributes:
        calls: Accepted calls, in order.
        rejected: Requests refused (bad token, unknown method), as ``(method, reason)``.
    """

    def __init__(self, api_key: str, api_secret: str, on_call: Callable[[RoomServiceCall], None] | None = None) -> None:
        self.calls: list[RoomServiceCall] = []
        self.rejected: list[tuple[str, str]] = []
        self._verifier = api.TokenVerifier(api_key, api_secret)
        self._on_call = on_call
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """The server URL, as ``LIVEKIT_URL`` would give it."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RoomServiceStandIn:
        app = web.Application()
        app.router.add_post("/twirp/livekit.RoomService/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = self._verifier.verify(token)
        except Exception as exc:  # any invalid token is a Twirp unauthenticated error
            self.rejected.append((method, f"bad token: {type(exc).__name__}"))
            return _twirp_error(401, "unauthenticated", "invalid token")
        if method != "DeleteRoom":
            self.rejected.append((method, "not implemented"))
            return _twirp_error(404, "bad_route", f"no handler for {method}")
        if not (claims.video and claims.video.room_create):
            self.rejected.append((method, "no roomCreate grant"))
            return _twirp_error(403, "permission_denied", "roomCreate grant required")
        if request.content_type != "application/protobuf":
            self.rejected.append((method, f"content type {request.content_type}"))
            return _twirp_error(415, "malformed", "protobuf expected")
        body = room_proto.DeleteRoomRequest.FromString(await request.read())
        call = RoomServiceCall(method, body.room, time.monotonic())
        self.calls.append(call)
        if self._on_call is not None:
            self._on_call(call)
        return web.Response(
            body=room_proto.DeleteRoomResponse().SerializeToString(), content_type="application/protobuf"
        )


def _twirp_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status)
