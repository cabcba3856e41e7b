"""Past ``--max-connections`` a client gets the documented JSON 503, never a connection reset.

Two requests in progress hold the cap of 2; then many clients send a request
the way most HTTP clients do for a body: the headers, then the body. The
server must read what they send before closing, or the kernel resets the
connection and the 503 is lost.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from swaig_fallback.connections import serve_limited

REQUESTS = 300
AT_ONCE = 100


RELEASE = web.AppKey("release", asyncio.Event)


async def _slow(request: web.Request) -> web.Response:
    await request.app[RELEASE].wait()
    return web.json_response({})


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _refused(port: int) -> tuple[int, object]:
    """Send headers, then the body; return the status and the JSON body received ("reset" on a reset)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"POST /ok HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"{}")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return 0, "reset"
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


async def test_past_the_cap_every_client_gets_a_json_503() -> None:
    """300 clients while 2 requests hold a cap of 2: 300 JSON 503s naming the cause, no reset."""
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_get("/slow", _slow)
    app.router.add_post("/ok", _ok)
    runner, listener = await serve_limited(app, host="127.0.0.1", port=0, idle_timeout=15, max_connections=2)
    port = listener.sockets[0].getsockname()[1]
    held = []
    try:
        for _ in range(2):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            held.append(writer)
        await asyncio.sleep(0.2)
        answers = []
        for start in range(0, REQUESTS, AT_ONCE):
            answers += await asyncio.gather(*(_refused(port) for _ in range(min(AT_ONCE, REQUESTS - start))))
    finally:
        app[RELEASE].set()
        for writer in held:
            writer.close()
        listener.close()
        await runner.cleanup()
    assert answers == [(503, {"error": "server busy: too many open connections"})] * REQUESTS


pytestmark = pytest.mark.integration
