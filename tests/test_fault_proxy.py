"""The fault proxy between the real async supabase client and the PostgREST stand-in."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.support.clients import async_supabase
from tests.support.proxy import FaultProxy
from tests.support.seed import set_theme

pytest_plugins = ["tests.support.fixtures"]

VERTICAL = "reverse_mortgage"


@pytest.fixture
async def client(fault_proxy, standin, clean_dsn):
    """A real async supabase client (0.3 s timeout) talking through the proxy."""
    set_theme(clean_dsn, VERTICAL, {"content": "legacy theme"})
    async with async_supabase(fault_proxy.url, timeout=0.3) as supabase:
        yield supabase


async def read_theme(client) -> list:
    """Reads the theme row the way the resolver does."""
    resp = await client.table("theme_prompts").select("vertical, content").eq("vertical", VERTICAL).limit(2).execute()
    return resp.data


async def test_pass_forwards_and_counts(client, fault_proxy, standin):
    """pass: requests reach the database and are counted, over one kept-alive connection."""
    assert await read_theme(client) == [{"vertical": VERTICAL, "content": "legacy theme"}]
    assert await read_theme(client)
    assert fault_proxy.connections == 1
    assert fault_proxy.requests_forwarded == 2
    assert len(standin.requests) == 2


async def test_refuse_then_recover_on_same_port(client, fault_proxy, standin):
    """refuse: connects fail fast with ConnectError; pass restores the same port."""
    assert await read_theme(client)
    port = fault_proxy.port
    fault_proxy.set_mode("refuse")
    started = time.monotonic()
    with pytest.raises(httpx.ConnectError):
        await read_theme(client)
    assert time.monotonic() - started < 0.2
    fault_proxy.set_mode("pass")
    assert fault_proxy.port == port
    assert await read_theme(client)
    assert len(standin.requests) == 2


async def test_hang_drops_pooled_connection_and_times_out(client, fault_proxy, standin):
    """hang: even a client with a pooled connection times out; nothing reaches the database."""
    assert await read_theme(client)
    fault_proxy.set_mode("hang")
    with pytest.raises(httpx.ReadTimeout):
        await read_theme(client)
    assert fault_proxy.requests_forwarded == 1
    assert len(standin.requests) == 1
    fault_proxy.set_mode("pass")
    assert await read_theme(client)


async def test_reset_is_transport_error(client, fault_proxy, standin):
    """reset: the connection is aborted, surfacing as httpx.TransportError."""
    fault_proxy.set_mode("reset")
    with pytest.raises(httpx.TransportError):
        await read_theme(client)
    assert fault_proxy.connections == 1
    assert standin.requests == []


def test_reset_sends_rst(fault_proxy):
    """reset: a raw socket sees ECONNRESET rather than a clean EOF."""
    fault_proxy.set_mode("reset")
    # ConnectionResetError may come from connect(), send() or recv(): a race
    with (
        pytest.raises(ConnectionResetError),
        socket.create_connection(("127.0.0.1", fault_proxy.port), timeout=1) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(1)


async def test_delay_adds_latency(client, fault_proxy):
    """delay: requests are answered, each at least the configured latency later."""
    fault_proxy.set_mode("delay", seconds=0.15)
    started = time.monotonic()
    assert await read_theme(client)
    assert time.monotonic() - started >= 0.15
    with pytest.raises(httpx.ReadTimeout):
        fault_proxy.set_mode("delay", seconds=0.5)
        await read_theme(client)


def test_stop_is_prompt_with_hung_connections(standin_server):
    """stop() returns quickly even with clients stuck in hang mode."""
    proxy = FaultProxy("127.0.0.1", standin_server.port).start()
    proxy.set_mode("hang")
    stuck = [socket.create_connection(("127.0.0.1", proxy.port)) for _ in range(3)]
    try:
        deadline = time.monotonic() + 2
        while proxy.connections < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        proxy.stop()
        assert time.monotonic() - started < 0.5
        assert stuck[0].recv(1) == b""
    finally:
        for sock in stuck:
            sock.close()
