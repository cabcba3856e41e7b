"""A hostile-input corpus against the real webhook server: no 5xx, JSON bodies, one line per request, no secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from livekit_fallback.config.resolver import Resolver
from tests.swaig_helpers import build_registry
from tests.test_swaig_server import PASSWORD, USER, Server, basic, documented_payload, serving

AUTH = basic(USER, PASSWORD)
ODD = ["\n", "\r\n", "\u2028", "\u202e", "\x00", "\x1b[31m", "${global_data.x}", "%{call.from}"]


def _nest(depth: int, leaf: Any = 1) -> str:
    return "[" * depth + json.dumps(leaf) + "]" * depth


def corpus() -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, raw path, headers, body) requests: depth, numbers, odd text, hosts, line breaks, sizes, auth."""
    cases: list[tuple[str, str, dict[str, str], bytes]] = []
    post = {"Authorization": AUTH, "Content-Type": "application/json"}
    for depth in (10, 63, 64, 65, 100, 1_000, 5_000, 100_000):
        nested = _nest(depth)
        cases.append(("POST", "/swaig", post, nested.encode()))
        body = {"function": "search_knowledge", "argument": {"raw": nested}}
        cases.append(("POST", "/swaig", post, json.dumps(body).encode()))
        body = {"function": "search_knowledge", "argument": {"parsed": [{"query": json.loads(_nest(min(depth, 500)))}]}}
        cases.append(("POST", "/swaig", post, json.dumps(body).encode()))
    for number in ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400, "1" * 5000, "1e-400", "2e308"):
        raw = '{"amount_low": ' + number + "}"
        cases.append(
            (
                "POST",
                "/swaig",
                post,
                b'{"function": "mark_quote_presented", "argument": {"parsed": [%s]}}' % raw.encode(),
            )
        )
        body = {"function": "mark_quote_presented", "argument": {"raw": raw}}
        cases.append(("POST", "/swaig", post, json.dumps(body).encode()))
        cases.append(
            ("POST", "/swaig", post, b'{"function": "search_knowledge", "global_data": {"x": %s}}' % number.encode())
        )
    for odd in ODD:
        for function in ("search_knowledge", f"x{odd}", "nope"):
            body = documented_payload(function, {"query": f"a{odd}b"}, call_id=f"id{odd}FORGED LINE")
            cases.append(("POST", "/swaig", post, json.dumps(body).encode()))
        cases.append(
            ("POST", f"/swml?caller_name=a{odd}b", post, json.dumps({"call": {"from": f"+1555{odd}"}}).encode())
        )
    for host in ("", "[::1", "agent.example.com/x?", "a b", "evil.com@x", "x" * 300, "[::1]:99999", "\u00e9.com"):
        cases.append(("GET", "/swml", {"Authorization": AUTH, "Host": host}, b""))
    for path in (
        "/swml%0AFORGED DATABASE RECOVERED",
        "/swml%0D%0AFORGED",
        "/%E2%80%A8FORGED",
        "/swaig%00",
        "/x" * 3000,
    ):
        cases.append(("GET", path, {}, b""))
        cases.append(("GET", path, {"Authorization": AUTH}, b""))
    for auth in (
        "Basic",
        "Basic !!!",
        "Basic " + base64.b64encode(b"\xff\xfe").decode(),
        "Bearer x",
        "Basic " + "A" * 9000,
    ):
        cases.append(("POST", "/swaig", {"Authorization": auth}, b"{}"))
    big = b'{"function": "search_knowledge", "argument": {"raw": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    cases.append(("POST", "/swaig", post, big))
    cases.append(("POST", "/swaig", post, b"\xff\xfe{not json"))
    cases.append(("POST", "/swaig", post, b"[" + b"1," * 100_000 + b"1]"))
    cases.append(("PUT", "/swaig", post, b"{}"))
    return cases


async def _raw_request(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, bytes, str]:
    """Send one request over a raw socket (so odd Host headers and paths go out as written)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = {"Host": f"127.0.0.1:{port}", **headers, "Content-Length": str(len(body)), "Connection": "close"}
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in head.items())]
    writer.write("\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n")
    try:
        writer.write(body)
        await writer.drain()
    except ConnectionError:
        pass
    try:
        data = await asyncio.wait_for(reader.read(), 30)
    except ConnectionError:
        data = b""
    writer.close()
    head_part, _, payload = data.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1]) if head_part.startswith(b"HTTP/1.") else 0
    content_type = next(
        (
            line.split(b":", 1)[1].strip().decode()
            for line in head_part.split(b"\r\n")
            if line.lower().startswith(b"content-type:")
        ),
        "",
    )
    return status, payload, content_type


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A snapshot-backed server with the test registry and a 64 KB body limit."""
    async with Resolver() as resolver, serving(resolver, build_registry(), max_body=64 * 1024) as running:
        yield running


async def test_hostile_corpus(server: Server, caplog) -> None:
    """Zero 5xx, JSON error bodies, no request writes a second log line, and the password is never output."""
    caplog.set_level(logging.DEBUG)
    port = int(server.url.rsplit(":", 1)[1])
    statuses: Counter[int] = Counter()
    for method, path, headers, body in corpus():
        before = len(caplog.records)
        status, payload, content_type = await _raw_request(port, method, path, headers, body)
        statuses[status] += 1
        assert 0 < status < 500, (method, path[:60], status)
        if status >= 400:
            assert content_type.startswith("application/json"), (path[:60], status, payload[:80])
            assert "error" in json.loads(payload)
        if status == 200 and path == "/swaig":
            assert "response" in json.loads(payload)
        assert len(payload) < 200_000 or path.startswith("/swml")
        assert PASSWORD.encode() not in payload or path.startswith("/swml")
        for record in caplog.records[before:]:
            text = record.getMessage()
            assert "\n" not in text and "\r" not in text and "\u2028" not in text, text[:200]
            assert PASSWORD not in text
    print("hostile corpus statuses:", dict(sorted(statuses.items())))
    assert PASSWORD not in caplog.text
    assert sum(statuses.values()) == len(corpus())


async def test_non_finite_numbers_never_reach_global_data(server: Server) -> None:
    """NaN, Infinity and 1e400 in arguments are refused before the tool runs; nothing is set."""
    for number in ("NaN", "Infinity", "1e400"):
        raw = '{"amount_low": ' + number + "}"
        status, reply, _ = await server.post(
            "/swaig", documented_payload("mark_quote_presented", {}) | {"argument": {"raw": raw}}
        )
        assert status == 200 and "action" not in reply
        assert "not valid JSON" in reply["response"] or "out of range" in reply["response"]
