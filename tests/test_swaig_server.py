"""The SignalWire webhook server over a real socket on 127.0.0.1: SWAIG, SWML, auth, bad input, health."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from livekit_fallback.config.resolver import Resolver
from livekit_fallback.config.sources.snapshot import SnapshotSource
from livekit_fallback.config.sources.supabase import SupabaseSource
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.sqlite import SqliteStorage
from livekit_fallback.tools import ToolRegistry, ToolSpec
from swaig_fallback import FALLBACK_RESPONSE, InsecureServerError, SwaigSchemaError, create_app, run_server
from tests.support.postgrest import Hang
from tests.swaig_helpers import NODE_NAMES, ai_verb, build_registry, swml_errors

USER, PASSWORD = "signalwire", "pa:ss-w0rd/with?odd&chars"
AUTH = (USER, PASSWORD)


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


SECRET_IN_TOOL = "db-password-hunter2"
REPO_ROOT = Path(__file__).resolve().parents[1]


def documented_payload(function: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A SWAIG request shaped like SignalWire's documented webhook payload (AiSwaigToolWebhookPayload)."""
    return {
        "function": function,
        "argument": {"parsed": [args], "raw": json.dumps(args), "substituted": ""},
        "argument_desc": {"type": "object", "properties": {}},
        "description": "test",
        "call_id": "2e1e66e5-5d07-413d-9668-55542992eec0",
        "ai_session_id": "a0d4e6e5-5d07-413d-9668-55542992eec0",
        "app_name": "swml app",
        "global_data": {"customer_tier": "premium"},
        "meta_data_token": "my-token",
        "meta_data": {},
        "caller_id_num": "+15555550100",
        "channel_active": True,
        "channel_offhook": True,
        "channel_ready": True,
        "content_type": "text/swaig",
        "content_disposition": "SWAIG Function",
        "version": "2.0",
        "conversation_type": "voice",
        **extra,
    }


@dataclass
class Server:
    """A running server and a client session for it."""

    url: str
    session: aiohttp.ClientSession

    async def post(self, path: str, body: Any = None, *, auth: tuple[str, str] | None = AUTH, **kw: Any):
        """POST JSON (or raw ``data=``) and return (status, decoded JSON body, headers)."""
        if body is not None:
            kw["json"] = body
        headers = dict(kw.pop("headers", {}))
        if auth is not None:
            headers["Authorization"] = basic(*auth)
        async with self.session.post(self.url + path, headers=headers, **kw) as resp:
            return resp.status, await resp.json(content_type=None), resp.headers

    async def get(self, path: str, *, auth: tuple[str, str] | None = AUTH):
        """GET and return (status, body text, headers)."""
        headers = {"Authorization": basic(*auth)} if auth else {}
        async with self.session.get(self.url + path, headers=headers) as resp:
            return resp.status, await resp.text(), resp.headers


@contextlib.asynccontextmanager
async def serving(resolver: Resolver, registry: ToolRegistry | None, **options: Any) -> AsyncIterator[Server]:
    """Run create_app + run_server on 127.0.0.1 with a free port; stop it afterwards."""
    options.setdefault("username", USER)
    options.setdefault("password", PASSWORD)
    app = create_app(resolver, registry, **options)
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_server(app, host="127.0.0.1", port=0, ready=bound.set_result))
    try:
        port = await asyncio.wait_for(asyncio.shield(bound), 10)
        async with aiohttp.ClientSession() as session:
            yield Server(f"http://127.0.0.1:{port}", session)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def registry() -> ToolRegistry:
    """The reverse-mortgage test registry plus a tool that fails and one that hangs."""
    registry = build_registry()

    @registry.tool(description="Always fails.")
    def explode(args: dict[str, Any], state: dict[str, Any]) -> str:
        raise RuntimeError(f"connection to postgres://admin:{SECRET_IN_TOOL}@db failed")

    @registry.tool(description="Never finishes in time.")
    async def dawdle(args: dict[str, Any], state: dict[str, Any]) -> str:
        await asyncio.sleep(30)
        return "late"

    return registry


@pytest.fixture
async def server(registry: ToolRegistry) -> AsyncIterator[Server]:
    """A snapshot-backed server with the test registry, a 4 KB body limit and a 0.5 s tool timeout."""
    async with Resolver() as resolver, serving(resolver, registry, max_body=4096, tool_timeout=0.5) as running:
        yield running


async def test_documented_swaig_request_gets_tool_result(server: Server) -> None:
    """A SWAIG call shaped like SignalWire's payload runs the tool and returns its result and state."""
    status, body, _ = await server.post(
        "/swaig", documented_payload("verify_caller_identity", {"full_name": "Jane Doe", "street": "12 Elm St"})
    )
    assert status == 200
    assert body == {"response": "Identity confirmed.", "action": [{"set_global_data": {"verified": True}}]}


async def test_raw_arguments_are_used_when_parsed_is_empty(server: Server) -> None:
    """With argument.parsed empty, the JSON string argument.raw supplies the arguments."""
    payload = documented_payload("search_knowledge", {})
    payload["argument"] = {"parsed": [], "raw": '{"query": "heirs"}'}
    status, body, _ = await server.post("/swaig", payload)
    assert (status, body) == (200, {"response": "Knowledge about heirs: heirs inherit the home."})


async def test_routing_tool_answers_with_context_change(server: Server) -> None:
    """A tool that moves the call answers with change_context and records the new node, not the routing key."""
    status, body, _ = await server.post("/swaig", documented_payload("mark_ready_to_book", {}))
    assert status == 200
    assert body["action"] == [
        {"set_global_data": {"ready_to_book": True, "current_node": "book"}},
        {"change_context": "book"},
    ]


async def test_global_data_is_the_tool_state(server: Server) -> None:
    """The request's global_data is the state the tool sees; only changed keys come back."""
    payload = documented_payload("mark_qualification_result", {"qualified": False}, global_data={"qualified": True})
    status, body, _ = await server.post("/swaig", payload)
    assert body["action"] == [{"set_global_data": {"qualified": False}}]
    payload = documented_payload("mark_qualification_result", {"qualified": True}, global_data={"qualified": True})
    status, body, _ = await server.post("/swaig", payload)
    assert (status, body) == (200, {"response": "Qualification recorded."})


@pytest.mark.parametrize(
    "auth",
    [None, (USER, "guess-Zq9"), ("someone", PASSWORD)],
    ids=["missing", "wrong-password", "wrong-user"],
)
async def test_missing_or_wrong_auth_is_401(server: Server, auth: tuple[str, str] | None, caplog) -> None:
    """Without the right credentials SWAIG and SWML answer 401 with a challenge, and no password is logged."""
    caplog.set_level(logging.DEBUG)
    payload = documented_payload("search_knowledge", {"query": "x"})
    status, body, headers = await server.post("/swaig", payload, auth=auth)
    assert (status, body) == (401, {"error": "authentication required"})
    assert headers["WWW-Authenticate"].startswith("Basic ")
    status, _, _ = await server.get("/swml", auth=auth)
    assert status == 401
    assert "Rejected POST /swaig" in caplog.text
    assert PASSWORD not in caplog.text and "guess-Zq9" not in caplog.text


async def test_malformed_authorization_header_is_401(server: Server) -> None:
    """A non-Basic or undecodable Authorization header is rejected, not a crash."""
    for header in ("Bearer abc", "Basic !!!notbase64", "Basic " + base64.b64encode(b"no-colon").decode()):
        status, body, _ = await server.post("/swaig", {}, auth=None, headers={"Authorization": header})
        assert (status, body) == (401, {"error": "authentication required"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "request body is not valid JSON"),
        (b"", "request body is empty; expected a JSON object"),
        (b"[1, 2]", "request body must be a JSON object, got array"),
        (b'{"argument": {"parsed": [{}]}}', "missing 'function'"),
        (b'{"function": 42}', "'function' must be a function name string"),
    ],
    ids=[
        "not-json",
        "empty",
        "array",
        "no-function",
        "function-not-string",
    ],
)
async def test_malformed_requests_are_400(server: Server, body: bytes, expected: str) -> None:
    """Bodies that are not a usable SWAIG call get 400 with an error naming the problem."""
    status, reply, _ = await server.post("/swaig", data=body, headers={"Content-Type": "application/json"})
    assert (status, reply) == (400, {"error": expected})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"function": "search_knowledge", "argument": "query=x"}', "'argument' must be an object, got string"),
        (b'{"function": "search_knowledge", "argument": {"raw": "{oops"}}', "'argument.raw' is not valid JSON"),
        (
            b'{"function": "search_knowledge", "argument": {"parsed": [{}]}, "global_data": [1]}',
            "'global_data' must be an object, got array",
        ),
    ],
    ids=["argument-string", "raw-not-json", "global-data-array"],
)
async def test_malformed_call_of_a_named_function_is_200_for_the_model(
    server: Server, body: bytes, expected: str, caplog
) -> None:
    """A call that names a function but is malformed gets 200 with a response naming the problem, and a WARNING."""
    status, reply, _ = await server.post("/swaig", data=body, headers={"Content-Type": "application/json"})
    assert status == 200 and set(reply) == {"response"}
    assert reply["response"] == (
        f"The call to search_knowledge was malformed ({expected}). Fix the arguments and call again."
    )
    assert any(r.levelno == logging.WARNING and "malformed" in r.getMessage() for r in caplog.records)


async def test_wrong_argument_types_are_200_for_the_model(server: Server, caplog) -> None:
    """Arguments that break the tool's schema (type, missing field, extra field) get 200 naming the field."""
    payload = documented_payload("mark_qualification_result", {"qualified": "yes"})
    status, reply, _ = await server.post("/swaig", payload)
    assert status == 200 and reply["response"].startswith("Invalid arguments: mark_qualification_result: qualified:")
    assert "boolean" in reply["response"] and set(reply) == {"response"}
    status, reply, _ = await server.post("/swaig", documented_payload("search_knowledge", {}))
    assert status == 200 and "'query' is a required property" in reply["response"]
    status, reply, _ = await server.post("/swaig", documented_payload("search_knowledge", {"query": "a", "x": 1}))
    assert status == 200 and "Additional properties" in reply["response"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "invalid arguments" in r.getMessage()]
    assert len(warnings) == 3


async def test_unknown_function_is_200_not_found(server: Server, caplog) -> None:
    """A function the registry does not have gets 200 with the SDK's 'not found' response and a WARNING."""
    status, reply, _ = await server.post("/swaig", documented_payload("transfer_to_sales", {}))
    assert (status, reply) == (200, {"response": "Function 'transfer_to_sales' not found"})
    assert any(r.levelno == logging.WARNING and "transfer_to_sales" in r.getMessage() for r in caplog.records)


async def test_oversized_body_is_413(server: Server) -> None:
    """A body over the limit gets 413, whether it declares its length or is chunked."""
    big = json.dumps(documented_payload("search_knowledge", {"query": "x" * 10_000})).encode()
    status, reply, _ = await server.post("/swaig", data=big, headers={"Content-Type": "application/json"})
    assert (status, reply) == (413, {"error": "request body larger than 4096 bytes"})

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1024):
            yield big[start : start + 1024]

    status, reply, _ = await server.post("/swaig", data=chunks(), headers={"Content-Type": "application/json"})
    assert (status, reply) == (413, {"error": "request body larger than 4096 bytes"})


async def test_tool_that_raises_gets_graceful_200_and_error_log(server: Server, caplog) -> None:
    """A failing tool answers 200 with a sayable response, logs ERROR with the trace, and leaks nothing."""
    caplog.set_level(logging.ERROR, logger="livekit_fallback.swaig")
    status, reply, _ = await server.post("/swaig", documented_payload("explode", {}))
    assert (status, reply) == (200, {"response": FALLBACK_RESPONSE})
    assert SECRET_IN_TOOL not in json.dumps(reply)
    records = [r for r in caplog.records if r.name == "livekit_fallback.swaig" and r.levelno == logging.ERROR]
    assert len(records) == 1 and records[0].exc_info is not None
    assert records[0].exc_info[0] is RuntimeError and records[0].function == "explode"


async def test_tool_that_hangs_gets_graceful_200(server: Server, caplog) -> None:
    """A tool running past the timeout answers 200 with the graceful response and logs ERROR."""
    status, reply, _ = await server.post("/swaig", documented_payload("dawdle", {}))
    assert (status, reply) == (200, {"response": FALLBACK_RESPONSE})
    assert "did not finish within 0.5 s" in caplog.text


async def test_bad_requests_do_not_disturb_other_calls(server: Server) -> None:
    """Concurrent bad, failing and oversized requests leave good calls answered correctly."""
    good = documented_payload("check_broker_availability", {"day": "2026-12-03"})
    bad = [
        server.post("/swaig", data=b"{", headers={"Content-Type": "application/json"}),
        server.post("/swaig", documented_payload("explode", {})),
        server.post("/swaig", data=b"x" * 20_000),
        server.post("/swaig", documented_payload("nope", {})),
        server.post("/swaig", {}, auth=None),
    ]
    results = await asyncio.gather(*bad, *(server.post("/swaig", good) for _ in range(5)))
    assert [r[0] for r in results[:5]] == [400, 200, 413, 200, 401]
    for status, reply, _ in results[5:]:
        assert (status, reply) == (200, {"response": '["2026-12-03T10:00", "2026-12-03T14:30"]'})


async def test_swml_get_and_post_return_valid_documents(server: Server) -> None:
    """GET and POST /swml return valid SWML whose webhook URL carries the credentials and this server."""
    status, text, headers = await server.get("/swml")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc = json.loads(text)
    assert swml_errors(doc) == []
    hook = ai_verb(doc)["SWAIG"]["defaults"]["web_hook_url"]
    port = server.url.rsplit(":", 1)[1]
    assert hook == f"http://signalwire:pa%3Ass-w0rd%2Fwith%3Fodd%26chars@127.0.0.1:{port}/swaig"
    assert set(ai_verb(doc)["prompt"]["contexts"]) == {"default", *NODE_NAMES}
    signalwire_request = {
        "call": {"call_id": "c1", "direction": "inbound", "from": "+15555550100", "to": "+1555"},
        "vars": {},
        "params": {},
    }
    status, doc, _ = await server.post("/swml?caller_name=Jane%20Doe", signalwire_request)
    assert status == 200 and swml_errors(doc) == []
    greet = ai_verb(doc)["prompt"]["contexts"]["default"]["steps"][0]["text"]
    assert "Jane Doe" in greet and "Caller phone number: +15555550100" in greet


async def test_swml_post_with_bad_json_is_400(server: Server) -> None:
    """A SWML fetch whose body is not JSON gets 400, not a document."""
    status, reply, _ = await server.post("/swml", data=b"<xml/>", headers={"Content-Type": "application/json"})
    assert (status, reply) == (400, {"error": "request body is not valid JSON"})


async def test_database_outage_still_serves_valid_swml(caplog) -> None:
    """With the database refusing connections, /swml returns valid SWML from the snapshot and logs the banner."""
    resolver = Resolver(database=SupabaseSource("http://127.0.0.1:1", "service-key-xyz"), deadline=1.0)
    async with resolver, serving(resolver, build_registry(), public_url="https://agent.example.com/hooks") as srv:
        status, text, headers = await srv.get("/swml")
        health_status, health, _ = await srv.get("/healthz", auth=None)
    doc = json.loads(text)
    assert status == 200 and swml_errors(doc) == []
    assert headers["X-Config-Degraded"] == "13"
    assert ai_verb(doc)["SWAIG"]["defaults"]["web_hook_url"].endswith("@agent.example.com/hooks/swaig")
    assert "DATABASE FAILURE: NODE CONFIG 'greet'" in caplog.text
    assert "DATABASE CONNECTION UNREACHABLE" in caplog.text
    report = json.loads(health)
    assert health_status == 200 and report["status"] == "degraded"
    assert report["database"] == {**report["database"], "configured": True, "reachable": False}
    assert report["degraded"]["reverse_mortgage/signalwire"]["nodes.verify"] == {
        "source": "snapshot",
        "reason": "unreachable",
    }
    assert "service-key-xyz" not in health and "127.0.0.1:1" not in health


async def test_healthz_and_metrics_need_no_auth(server: Server) -> None:
    """/healthz reports the snapshot-mode degradation and /metrics exposes SWAIG call counters, both without auth."""
    await server.post("/swaig", documented_payload("mark_objection_handled", {}))
    status, text, _ = await server.get("/healthz", auth=None)
    report = json.loads(text)
    assert status == 200 and report["status"] == "degraded"
    assert report["database"] == {"configured": False, "reachable": None, "since": None, "breaker": "closed"}
    assert report["degraded"]["reverse_mortgage/signalwire"]["theme"] == {
        "source": "snapshot",
        "reason": "not_configured",
    }
    assert report["components"] == 13
    status, text, headers = await server.get("/metrics", auth=None)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert 'livekit_fallback_swaig_calls_total{function="mark_objection_handled",outcome="ok"}' in text


async def test_unknown_path_and_method_are_json_errors(server: Server) -> None:
    """Routing errors are JSON too: 404 for an unknown path, 405 for a wrong method."""
    status, reply, _ = await server.post("/nowhere", {})
    assert (status, reply) == (404, {"error": "not found"})
    status, text, headers = await server.get("/swaig")
    assert status == 405 and json.loads(text) == {"error": "method not allowed"} and "POST" in headers["Allow"]


async def test_refuses_to_start_without_credentials() -> None:
    """No credentials is refused unless local-only, and a local-only server binds loopback addresses only."""
    async with Resolver() as resolver:
        with pytest.raises(InsecureServerError, match="SWAIG_USERNAME"):
            create_app(resolver, None, username=None, password=None)
        with pytest.raises(InsecureServerError):
            create_app(resolver, None, username="user", password="")
        local = create_app(resolver, None, username=None, password=None, local_only=True)
        with pytest.raises(InsecureServerError, match="loopback"):
            await run_server(local, host="0.0.0.0", port=0)


async def test_local_only_server_answers_without_auth() -> None:
    """A local-only server without credentials serves SWML whose webhook URL has no userinfo."""
    async with Resolver() as resolver, serving(resolver, None, username=None, password=None, local_only=True) as srv:
        status, text, _ = await srv.get("/swml", auth=None)
        swaig_status, reply, _ = await srv.post("/swaig", documented_payload("search_knowledge", {"query": "x"}))
    doc = json.loads(text)
    assert status == 200 and swml_errors(doc) == []
    assert "@" not in ai_verb(doc)["SWAIG"]["defaults"]["web_hook_url"]
    assert (swaig_status, reply) == (200, {"response": "Function 'search_knowledge' not found"})


def _cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "SWAIG_"))}
    return {**env, **extra}


async def test_cli_serve_answers_swaig_call_and_stops_on_sigterm() -> None:
    """`livekit-fallback serve` with credentials answers a SWAIG call with basic auth and exits 0 on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livekit_fallback.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--tools",
        "tests.swaig_helpers:REGISTRY",
        cwd=REPO_ROOT,
        env=_cli_env(SWAIG_USERNAME=USER, SWAIG_PASSWORD=PASSWORD),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        match = re.search(r"on (http://127\.0\.0\.1:\d+) ", line)
        assert match, line
        async with aiohttp.ClientSession() as session:
            srv = Server(match.group(1), session)
            payload = documented_payload("mark_has_objection", {"topic": "scam"})
            status, reply, _ = await srv.post("/swaig", payload)
            denied, _, _ = await srv.post("/swaig", payload, auth=None)
        assert (status, reply) == (
            200,
            {"response": "Concern recorded.", "action": [{"set_global_data": {"objection_topic": "scam"}}]},
        )
        assert denied == 401
    finally:
        if proc.returncode is None:
            proc.terminate()
        rest = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, rest[1].decode()
    assert PASSWORD not in rest[1].decode()


async def test_cli_serve_refuses_without_credentials() -> None:
    """`serve` without SWAIG_USERNAME/SWAIG_PASSWORD exits 2 unless --local-only, which refuses public hosts."""
    for args, message in [
        ((), "refusing to start without basic-auth credentials"),
        (("--local-only", "--host", "0.0.0.0"), "may only bind loopback addresses"),
    ]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "livekit_fallback.cli",
            "serve",
            "--port",
            "0",
            *args,
            cwd=REPO_ROOT,
            env=_cli_env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 2 and message in err.decode()


async def test_config_naming_unimplemented_tool_still_serves_swml(tmp_path: Path, caplog) -> None:
    """A config naming a tool the server lacks gets valid SWML without it, and an ERROR naming the tool."""
    snapshot = (REPO_ROOT / "snapshots" / "reverse_mortgage.toml").read_text()
    marker = 'tools = ["check_broker_availability", "book_appointment", "mark_booking_declined"]'
    assert marker in snapshot
    (tmp_path / "reverse_mortgage.toml").write_text(snapshot.replace(marker, marker[:-1] + ', "transfer_to_human"]'))
    async with Resolver(snapshots=SnapshotSource([tmp_path])) as resolver, serving(resolver, build_registry()) as srv:
        status, text, _ = await srv.get("/swml")
    doc = json.loads(text)
    assert status == 200 and swml_errors(doc) == []
    assert ai_verb(doc)["prompt"]["contexts"]["book"]["steps"][0]["functions"] == [
        "check_broker_availability",
        "book_appointment",
        "mark_booking_declined",
    ]
    assert "does not implement: ['transfer_to_human']" in caplog.text


async def test_registry_with_undeclarable_schema_fails_at_start() -> None:
    """A registry tool whose schema SWML cannot declare stops create_app, not every call."""
    registry = build_registry()
    registry.add(
        ToolSpec(
            "lookup",
            "Look up.",
            {"type": "object", "properties": {"x": {"$ref": "#/$defs/X"}}},
            handler=lambda args, state: "ok",
        )
    )
    async with Resolver() as resolver:
        with pytest.raises(SwaigSchemaError, match=r"lookup\.x"):
            create_app(resolver, registry, username=USER, password=PASSWORD)


async def test_database_sourced_swml_and_health(db_resolver) -> None:
    """With a healthy database, /swml serves the database's config and /healthz reports ok."""
    async with serving(db_resolver, build_registry()) as srv:
        status, text, headers = await srv.get("/swml")
        health_status, health, _ = await srv.get("/healthz", auth=None)
    doc = json.loads(text)
    assert status == 200 and swml_errors(doc) == []
    assert headers["X-Config-Degraded"] == "0"
    assert ai_verb(doc)["params"]["ai_model"] == "gpt-4.1-nano"
    assert (health_status, json.loads(health)["status"], json.loads(health)["degraded"]) == (
        200,
        "ok",
        {"reverse_mortgage/signalwire": {}},
    )


async def test_database_hang_mid_run_falls_back_then_recovers(seeded, db_resolver, caplog) -> None:
    """A hung database during /swml gives valid snapshot SWML in time; after recovery the SWML is the database's."""
    async with serving(db_resolver, build_registry()) as srv:
        seeded.standin.set_fault("*", Hang())
        started = time.monotonic()
        status, text, headers = await srv.get("/swml")
        elapsed = time.monotonic() - started
        seeded.standin.clear_faults()
        await asyncio.sleep(db_resolver.state.policy.cool_down)  # the hang opened the breaker; one cool-down to probe
        _, recovered_text, recovered_headers = await srv.get("/swml")
    assert status == 200 and swml_errors(json.loads(text)) == []
    assert elapsed < 2.5 and headers["X-Config-Degraded"] == "13"
    assert ai_verb(json.loads(text))["params"]["ai_model"] == "gpt-4.1-mini"
    assert "DATABASE CONNECTION UNREACHABLE" in caplog.text
    assert recovered_headers["X-Config-Degraded"] == "0"
    assert ai_verb(json.loads(recovered_text))["params"]["ai_model"] == "gpt-4.1-nano"


@pytest.mark.parametrize(
    ("data", "headers", "status", "message"),
    [
        (b"{}", {"Authorization": "Basic \u00e9"}, 401, "authentication required"),
        (b"[" * 2000 + b"]" * 2000, {}, 400, "request body is nested too deeply"),
        (
            b'{"function": "mark_objection_handled", "global_data": {"x": NaN}}',
            {},
            400,
            "request body is not valid JSON",
        ),
    ],
)
async def test_odd_bodies_and_headers_get_4xx_not_500(
    server: Server, data: bytes, headers: dict, status: int, message: str
) -> None:
    """Non-ASCII auth, pathologically nested JSON and NaN constants are client errors, never a 500."""
    auth = None if "Authorization" in headers else AUTH
    got, reply, _ = await server.post(
        "/swaig", data=data, auth=auth, headers={"Content-Type": "application/json", **headers}
    )
    assert (got, reply["error"]) == (status, message)


def test_reply_unsets_deleted_state_and_routes() -> None:
    """State a tool deleted is unset in global_data; an allowed routing target becomes change_context and the node."""
    from livekit_fallback.tools import ToolResult
    from swaig_fallback.swaig import swaig_reply

    reply, rejected = swaig_reply(
        ToolResult("ok", {"verified": True, "next_node": "qualify"}, removed=("offered_slots",)),
        contexts={"default", "qualify"},
    )
    assert rejected is None
    assert reply == {
        "response": "ok",
        "action": [
            {"set_global_data": {"verified": True, "current_node": "qualify"}},
            {"unset_global_data": ["offered_slots"]},
            {"change_context": "qualify"},
        ],
    }


@pytest.mark.parametrize("machine_wide", [True, False], ids=["sqlite", "memory"])
async def test_no_request_waits_for_a_probe(seeded, tmp_path, machine_wide: bool) -> None:
    """During a hanging outage at 20 requests a second, only the requests that probe the database wait."""
    resolver = Resolver(
        database=SupabaseSource(seeded.url, seeded.key),
        snapshots=SnapshotSource(),
        cool_down=0.3,
        deadline=0.5,
        state=SqliteStorage(tmp_path) if machine_wide else MemoryStorage(),
    )
    seeded.standin.set_fault("*", Hang())
    async with resolver, serving(resolver, build_registry()) as srv:

        async def timed() -> float:
            started = time.monotonic()
            status, _, _ = await srv.get("/swml")
            assert status == 200
            return time.monotonic() - started

        assert await timed() < 1.0  # the outage's first request pays the deadline and opens the breaker
        seeded.standin.clear_requests()
        tasks = []
        for _ in range(40):
            tasks.append(asyncio.create_task(timed()))
            await asyncio.sleep(0.05)
        waits = await asyncio.gather(*tasks)
    reads = len(seeded.standin.requests) // 5
    slow = [w for w in waits if w > 0.3]
    assert 1 <= reads <= 8, "one probe per cool-down"
    assert len(slow) <= reads, f"only probes wait: {len(slow)} slow requests for {reads} probes"
