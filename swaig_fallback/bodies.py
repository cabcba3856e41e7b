"""Request bodies and error replies for the webhook server: every error is JSON.

aiohttp answers routing errors (404, 405) and oversized bodies (413) with
plain text; :func:`error_middleware` turns those into ``{"error": ...}`` and
turns any unexpected exception into a logged 500, so one bad request never
affects another.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from livekit_fallback.errors import BadBody
from livekit_fallback.log import swaig_logger as logger

__all__ = ["BadBody", "error_middleware", "error_reply", "read_json"]


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
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BadBody(413, f"request body larger than {limit} bytes") from None
    if not body.strip():
        if required:
            raise BadBody(400, "request body is empty; expected a JSON object")
        return None
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        raise BadBody(400, "request body is not valid JSON") from None
    except RecursionError:
        raise BadBody(400, "request body is nested too deeply") from None


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
        except Exception:
            logger.error("Unhandled error serving %s %s", request.method, request.path, exc_info=True)
            return error_reply(500, "internal error")

    return json_errors
