"""Request bodies and error replies for the webhook server: every error is JSON.

aiohttp answers routing errors (404, 405) and oversized bodies (413) with
plain text; :func:`error_middleware` turns those into ``{"error": ...}`` and
turns any unexpected exception into a logged 500, so one bad request never
affects another.

:func:`loads` is the only JSON decoder for request data: it checks the
nesting depth before parsing (so no depth can exhaust the parser's stack)
and rejects ``NaN``, ``Infinity`` and numbers outside the range JSON peers
can represent, so nothing non-finite reaches a tool or ``set_global_data``.
Error messages quote at most :data:`EXCERPT` characters of the input.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from livekit_fallback.errors import BadBody
from livekit_fallback.log import log_safe
from livekit_fallback.log import swaig_logger as logger

__all__ = ["EXCERPT", "MAX_DEPTH", "BadBody", "error_middleware", "error_reply", "excerpt", "loads", "read_json"]

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in request JSON."""

MAX_INTEGER = 2**63
"""Integers must lie strictly between minus and plus this."""

EXCERPT = 60
"""Most characters of caller input an error message quotes."""

BODY_TIMEOUT = 10.0
"""Seconds a client may take to send a request body."""


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """A short, one-line, escaped excerpt of untrusted input for error messages."""
    return log_safe(value, limit)


def _depth_ok(text: str | bytes, limit: int) -> bool:
    """True when the JSON text nests arrays/objects at most ``limit`` deep (strings are skipped)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {excerpt(text, 24)}")
    return value


def _int(text: str) -> int:
    if len(text) > 20:
        raise ValueError(f"number out of range: {excerpt(text, 24)}")
    value = int(text)
    if not -MAX_INTEGER < value < MAX_INTEGER:
        raise ValueError(f"number out of range: {excerpt(text, 24)}")
    return value


def loads(text: str | bytes, *, what: str = "request body", max_depth: int = MAX_DEPTH) -> Any:
    """Decode untrusted JSON with bounded depth and finite, in-range numbers.

    Raises:
        ValueError: Not JSON, nested deeper than ``max_depth``, or holding
            ``NaN``, ``Infinity`` or an out-of-range number; the message names
            ``what`` and never quotes more than a short excerpt.
    """
    if not _depth_ok(text, max_depth):
        raise ValueError(f"{what} is nested too deeply")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} is not UTF-8") from None
    except ValueError as exc:
        if str(exc).startswith("number out of range"):
            raise ValueError(f"{what} holds a number out of range") from None
        raise ValueError(f"{what} is not valid JSON") from None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_reply(status: int, message: str, **headers: str) -> web.Response:
    """A JSON ``{"error": message}`` response."""
    return web.json_response({"error": message}, status=status, headers=headers or None)


async def read_json(request: web.Request, *, limit: int, required: bool) -> Any:
    """Read and decode a JSON body of at most ``limit`` bytes.

    Returns:
        The decoded value, or ``None`` for an empty body when not ``required``.

    Raises:
        BadBody: 413 for an oversized body; 400 for a body that is empty
            (when required) or not JSON.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BadBody(413, f"request body larger than {limit} bytes")
    try:
        body = await asyncio.wait_for(request.read(), BODY_TIMEOUT)
    except web.HTTPRequestEntityTooLarge:
        raise BadBody(413, f"request body larger than {limit} bytes") from None
    except asyncio.TimeoutError:
        raise BadBody(408, f"request body not received within {BODY_TIMEOUT:.0f} s") from None
    if not body.strip():
        if required:
            raise BadBody(400, "request body is empty; expected a JSON object")
        return None
    try:
        return loads(body)
    except ValueError as exc:
        raise BadBody(400, str(exc)) from None


def _reject_constant(name: str) -> None:
    """NaN and Infinity are not JSON; echoing them back would break SignalWire's parser."""
    raise ValueError(f"{name} is not valid JSON")


def error_middleware(max_body: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware turning HTTP errors and unexpected exceptions into JSON replies."""

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadBody as exc:
            return error_reply(exc.status, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return error_reply(413, f"request body larger than {max_body} bytes")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
            return error_reply(exc.status, exc.reason.lower(), **allow)
        except ConnectionError as exc:
            # The client went away mid-request: its problem, one line, no trace (nobody reads the reply).
            logger.warning(
                "Client %s dropped the connection during %s %s: %s",
                log_safe(request.remote, 64),
                log_safe(request.method, 16),
                log_safe(request.path),
                log_safe(str(exc) or type(exc).__name__, 80),
                extra={"event": "swaig_client_dropped"},
            )
            return error_reply(400, "connection lost before the request was complete")
        except Exception:
            logger.error(
                "Unhandled error serving %s %s", log_safe(request.method, 16), log_safe(request.path), exc_info=True
            )
            return error_reply(500, "internal error")

    return json_errors
