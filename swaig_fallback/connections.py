"""Connection limits for the webhook server: idle timeout, a cap on open connections, JSON parser errors.

aiohttp keeps a connection that never sends a request (or sends half a
request line) open for its keep-alive timeout, about an hour by default, and
accepts connections until the process runs out of file descriptors. Here:

- every connection waiting for a request (idle, or with a request only partly
  sent) is closed after ``idle_timeout`` seconds (aiohttp's keep-alive timer,
  which also runs before the first request);
- at most ``max_connections`` are open (never more than the process's file
  limit allows); at the cap, the connection idle the longest is closed to
  make room, so a health probe still gets in, and when none is idle the new
  connection gets a JSON 503 and is closed;
- errors from aiohttp's HTTP parser (a malformed request line, a bad header)
  are answered with a JSON ``{"error": ...}`` and logged on one line.
"""

from __future__ import annotations

import asyncio
import json
import resource
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_log import AccessLogger
from aiohttp.web_protocol import RequestHandler

from livekit_fallback.log import log_safe
from livekit_fallback.log import swaig_logger as logger

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_CONNECTIONS", "ConnectionLimits", "effective_cap", "serve_limited"]

DEFAULT_IDLE_TIMEOUT = 15.0
"""Seconds a connection may wait without a complete request before it is closed."""

DEFAULT_MAX_CONNECTIONS = 512
"""Most connections open at once (lowered to fit the process's file limit)."""

BACKLOG = 100
"""Listen backlog; asyncio also accepts up to this many connections in one go."""

FD_RESERVE = 64 + BACKLOG
"""File descriptors kept free: a burst of accepts before the cap applies, the database client, cache and logs."""

_BUSY_BODY = json.dumps({"error": "server busy: too many open connections"}).encode()
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)


def effective_cap(max_connections: int) -> int:
    """``max_connections``, lowered so open connections leave :data:`FD_RESERVE` descriptors free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return max_connections
    return max(1, min(max_connections, soft - FD_RESERVE))


class _JsonErrors(RequestHandler):
    """aiohttp's request handler with JSON error pages for its own parser errors."""

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send an error reply")
        reason = HTTPStatus(status).phrase.lower() if status in HTTPStatus._value2member_map_ else "error"
        logger.warning(
            "HTTP error %d from %s: %s", status, log_safe(request.remote, 64), log_safe(message or exc or reason)
        )
        response = web.json_response({"error": reason if status >= 500 else f"bad request: {reason}"}, status=status)
        response.force_close()
        return response

    limits: ConnectionLimits | None = None

    def idle(self) -> bool:
        """True while connected and waiting for a request (nothing in progress)."""
        return self.transport is not None and not getattr(self, "_request_in_progress", False)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Free this connection's place under the cap."""
        if self.limits is not None:
            self.limits.release(self)
        super().connection_lost(exc)


LINGER = 2.0
"""Seconds a refused connection is read (and discarded) after its 503, until the client closes."""


class _Refuse(asyncio.Protocol):
    """Answers 503 and closes: the connection cap is reached and nothing idle can be dropped.

    The close lingers: the 503 is sent and the sending side shut, then what the
    client still sends (the rest of its request) is read and dropped until it
    closes, or :data:`LINGER` passes. Closing a socket with unread data makes
    the kernel answer with a reset, which throws away the 503 the client has
    not read yet: a client that sends its body after its headers would see
    ``connection reset`` instead of the JSON 503.
    """

    lingering = 0
    """Refused connections lingering now (past :data:`BACKLOG` of them, the next close at once)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(_BUSY)
        if transport.can_write_eof() and _Refuse.lingering < BACKLOG:
            _Refuse.lingering += 1
            self._lingers = True
            transport.write_eof()
            self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)
        else:
            transport.close()

    def data_received(self, data: bytes) -> None:
        """Drop what the client still sends."""

    def eof_received(self) -> bool:
        """The client is done: close now."""
        self._transport.close()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the linger timer."""
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
        if getattr(self, "_lingers", False):
            _Refuse.lingering -= 1
            self._lingers = False


class ConnectionLimits:
    """The protocol factory enforcing the cap; one per listening socket."""

    def __init__(self, server: web.Server, handler_args: dict[str, Any], max_connections: int) -> None:
        self._server = server
        self._args = handler_args
        self.cap = effective_cap(max_connections)
        self.refused = 0
        self._open: dict[_JsonErrors, None] = {}  # arrival order: the first idle one is the oldest

    def __call__(self) -> asyncio.Protocol:
        """A handler for a new connection, after making room (or a refusal when there is none)."""
        if len(self._open) >= self.cap:
            oldest = next((h for h in self._open if h.idle()), None)
            if oldest is None:
                self.refused += 1
                return _Refuse()
            self.release(oldest)
            oldest.force_close()
        handler = _JsonErrors(self._server, loop=asyncio.get_running_loop(), **self._args)
        handler.limits = self
        self._open[handler] = None
        return handler

    def release(self, handler: _JsonErrors) -> None:
        """Forget a connection that closed or is being closed."""
        self._open.pop(handler, None)


async def serve_limited(
    app: web.Application,
    *,
    host: str,
    port: int,
    idle_timeout: float,
    max_connections: int,
) -> tuple[web.AppRunner, asyncio.Server]:
    """Start ``app`` on ``host:port`` with the limits above.

    Returns:
        The runner (clean it up to stop the app) and the listening server
        (close it first to stop accepting).
    """
    handler_args: dict[str, Any] = {"keepalive_timeout": idle_timeout, "access_log": None}
    runner = web.AppRunner(app, **handler_args)
    await runner.setup()
    assert runner.server is not None
    factory = ConnectionLimits(runner.server, {**handler_args, "access_log_class": AccessLogger}, max_connections)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(factory, host, port, backlog=BACKLOG, reuse_address=True)
    return runner, listener
