"""SignalWire in production through both servers: whole calls, routing after the AI's own moves, secrets in logs.

Every call goes as SignalWire sends it: the SWML fetch with the call's facts,
function calls to the URL the SWML gave each function (credentials from its
userinfo) carrying ``global_data`` and, where the AI changed context itself,
the call log; then the hangup. The password is generated and holds
``@ / % # ?``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from livekit_fallback.config.resolver import Resolver
from livekit_fallback.tools import ToolRegistry, ToolResult
from swaig_fallback import HANGUP_FUNCTION, NODE_KEY, InsecureServerError, ResolvedAgent
from tests.swaig_helpers import ai_verb
from tests.swaig_sides import AdapterSide, PackageSide, credentials_of, entered, swaig_request
from tests.test_swaig_server import serving
from tests.unit.test_sdk_adapter import TOOLS

USER = "signalwire"
PASSWORD = f"{secrets.token_urlsafe(9)}@/%#?{secrets.token_urlsafe(6)}"
KNOWN = "+1 (555) 010-4477"
CRM_FAILURE = "crm-failure"


def registry() -> ToolRegistry:
    """The example tools, with search_knowledge able to route (``next``) and one tool whose error names the password."""
    routed = ToolRegistry(spec for spec in TOOLS.build_registry() if spec.name != "search_knowledge")

    @routed.tool(
        description="Search the knowledge base; optionally move on.",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string"}, "next": {"type": "string"}},
            "required": ["query"],
        },
    )
    def search_knowledge(args: dict[str, Any], state: dict[str, Any]) -> ToolResult:
        if args["query"] == CRM_FAILURE:
            token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            raise RuntimeError(
                f"POST https://{USER}:{quote(PASSWORD, safe='')}@crm.example.com failed "
                f"(Authorization: Basic {token}; password {PASSWORD})"
            )
        return ToolResult(f"Knowledge about {args['query']}.", {"next_node": args["next"]} if "next" in args else {})

    return routed


@contextlib.asynccontextmanager
async def _side(kind: str) -> AsyncIterator[PackageSide | AdapterSide]:
    if kind == "package":
        async with (
            Resolver() as resolver,
            serving(resolver, registry(), call_state=TOOLS.call_state, username=USER, password=PASSWORD) as server,
        ):
            yield PackageSide(server, (USER, PASSWORD))
        return
    agent = ResolvedAgent(
        registry=registry(),
        resolver=Resolver,
        call_state=TOOLS.call_state,
        basic_auth=(USER, PASSWORD),
        public_url="https://agent.example.com",
    )
    try:
        yield AdapterSide(agent)
    finally:
        agent.close()


@pytest.fixture(params=["package", "adapter"])
async def side(request: pytest.FixtureRequest, clean_env: None) -> AsyncIterator[PackageSide | AdapterSide]:
    """Each server in turn, with the same tools, call-state hook and generated password."""
    async with _side(request.param) as running:
        yield running


@pytest.fixture
async def both(clean_env: None) -> AsyncIterator[tuple[PackageSide | AdapterSide, ...]]:
    """Both servers at once, to compare their replies."""
    async with _side("package") as package, _side("adapter") as adapter:
        yield package, adapter


def _merge(global_data: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    """Apply a reply's set/unset_global_data as the platform does."""
    data = dict(global_data)
    for action in reply.get("action", []):
        data.update(action.get("set_global_data", {}))
        for key in action.get("unset_global_data", []):
            data.pop(key, None)
    return data


async def test_whole_call_from_swml_to_hangup(side: PackageSide | AdapterSide) -> None:
    """A known caller verifies, asks, is moved to booking by a tool, books, and the call hangs up after the goodbye."""
    call_id = f"call-{side.name}"
    doc = await side.swml({"call_id": call_id, "from": KNOWN, "to": "+15550000000", "direction": "inbound"})
    for url in side.urls.values():
        assert urlsplit(url).path.rstrip("/") == "/swaig"
    data = ai_verb(doc)["global_data"]
    assert data["lead"]["first_name"] == "Walter" and data[NODE_KEY] == "greet"
    log = [entered("verify")]
    args = {"full_name": "Walter Brooks", "property_address": "48 Birch Lane"}
    reply = await side.call("verify_caller_identity", swaig_request("verify_caller_identity", args, data, call_id, log))
    assert reply["response"] == "Verified: the caller is Walter Brooks."
    data = _merge(data, reply)
    log.append(entered("answer"))
    body = swaig_request("search_knowledge", {"query": "fees", "next": "book"}, data, call_id, log)
    reply = await side.call("search_knowledge", body)
    assert {"change_context": "book"} in reply["action"]
    data = _merge(data, reply)
    assert data[NODE_KEY] == "book" and data["verified"] is True
    slot = {"slot": "2026-03-17T10:00", "phone": "+1 555 010 4477"}
    reply = await side.call(
        "book_appointment", swaig_request("book_appointment", slot, {**data, "today": "2026-03-16"}, call_id)
    )
    assert reply["response"].startswith("Booked for")
    data = _merge(data, reply)
    assert data["appointment_booked"] is True and data["lead"]["last_name"] == "Brooks"
    log.append(entered("goodbye"))
    reply = await side.call(HANGUP_FUNCTION, swaig_request(HANGUP_FUNCTION, {}, data, call_id, log))
    assert reply["action"] == [{"hangup": True}] and reply["post_process"] is True


@pytest.mark.parametrize(
    ("logged", "moved", "note"),
    [
        (None, False, "change to that context now if the current step allows it"),
        ("objections", False, "not allowed from the current step"),
        ("answer", True, None),
    ],
    ids=["position-unknown-handed-to-the-ai", "call-log-says-objections-refused", "call-log-says-answer-moved"],
)
async def test_routing_follows_the_ais_own_context_changes(
    side: PackageSide | AdapterSide, logged: str | None, moved: bool, note: str | None
) -> None:
    """After the webhook moved the call to answer and the AI moved on, a move is not judged from answer alone.

    search_knowledge is offered in answer and objections; answer may move to
    quote, objections may not. Without the call log the webhook cannot tell
    which, so the AI is asked to move (SignalWire allows it only from answer);
    with the call log the move is made or refused.
    """
    await side.swml({"call_id": "c"})
    data = {NODE_KEY: "answer"}
    log = [entered("answer"), entered(logged)] if logged else None
    reply = await side.call(
        "search_knowledge", swaig_request("search_knowledge", {"query": "heirs", "next": "quote"}, data, "c", log)
    )
    changes = [a for a in reply.get("action", []) if "change_context" in a]
    assert changes == ([{"change_context": "quote"}] if moved else [])
    if note is not None:
        assert note in reply["response"]


async def test_move_allowed_from_every_possible_step_is_made(side: PackageSide | AdapterSide) -> None:
    """With the position unknown between answer and objections, a move both allow (book) is made at once."""
    await side.swml({"call_id": "c"})
    body = swaig_request("search_knowledge", {"query": "fees", "next": "book"}, {NODE_KEY: "answer"}, "c")
    reply = await side.call("search_knowledge", body)
    assert {"change_context": "book"} in reply["action"]


async def test_secrets_never_reach_the_logs_in_any_form(
    side: PackageSide | AdapterSide, caplog: pytest.LogCaptureFixture
) -> None:
    """A tool error naming the password, its URL-encoded and base64 forms is logged with every form masked."""
    caplog.set_level(logging.DEBUG)
    await side.swml({"call_id": "c"})
    reply = await side.call("search_knowledge", swaig_request("search_knowledge", {"query": CRM_FAILURE}, {}, "c"))
    assert "Apologise" in reply["response"]
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert "crm.example.com failed" in text
    for form in (PASSWORD, quote(PASSWORD, safe=""), token):
        assert form not in text


@pytest.mark.parametrize(
    ("argument", "problem"),
    [
        ("not an object", "'argument' must be an object, got string"),
        ({"parsed": "x"}, "'argument.parsed' must be a list, got string"),
        ({"raw": "{nope"}, "'argument.raw' is not valid JSON"),
        ({"parsed": ["x"]}, "arguments must be a JSON object, got str"),
        ({"raw": "[1, 2]"}, "arguments must be a JSON object, got list"),
    ],
    ids=["argument-string", "parsed-string", "raw-not-json", "parsed-not-object", "raw-array"],
)
async def test_malformed_arguments_get_the_same_reply_on_both_servers(
    both: tuple[PackageSide | AdapterSide, ...], argument: Any, problem: str
) -> None:
    """Each malformed argument shape gets one reply naming the problem, the same from both servers."""
    body = swaig_request("search_knowledge", {}, {}, "c")
    body["argument"] = argument
    for side in both:
        await side.swml({"call_id": "c"})
    replies = [await side.call("search_knowledge", body) for side in both]
    assert replies[0] == replies[1]
    assert set(replies[0]) == {"response"} and problem in replies[0]["response"]


@pytest.fixture
def adapter_env(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The adapter configured by environment only, as a deployment would be."""
    for name in ("SIGNALWIRE_SWAIG_SECRET", "SWAIG_TOKEN_LIFETIME", "SWML_TRUST_PROXY_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SWML_BASIC_AUTH_USER", USER)
    monkeypatch.setenv("SWML_BASIC_AUTH_PASSWORD", PASSWORD)
    monkeypatch.setenv("SWML_PROXY_URL_BASE", "https://agent.example.com")
    yield


def _adapter(**options: Any) -> AdapterSide:
    return AdapterSide(ResolvedAgent(registry=registry(), resolver=Resolver, call_state=TOOLS.call_state, **options))


def test_adapter_urls_carry_a_password_with_reserved_characters(adapter_env: None) -> None:
    """With a password holding @ / % # ?, every webhook URL parses to the public host, /swaig/ and the password."""
    adapter = _adapter()
    try:
        doc = adapter.swml_sync({"call_id": "c-url", "from": KNOWN})
        urls = [ai_verb(doc)["SWAIG"]["defaults"]["web_hook_url"], *adapter.urls.values()]
        for url in urls:
            parts = urlsplit(url)
            assert (parts.scheme, parts.hostname, parts.path) == ("https", "agent.example.com", "/swaig/")
            assert credentials_of(url) == (USER, PASSWORD)
        args = {"full_name": "Walter Brooks", "property_address": "48 Birch Lane"}
        body = swaig_request("verify_caller_identity", args, ai_verb(doc)["global_data"], "c-url")
        assert adapter.call_sync("verify_caller_identity", body)["response"].startswith("Verified")
    finally:
        adapter.agent.close()


@pytest.mark.parametrize("trust_headers", [False, True], ids=["default", "sdk-told-to-trust-proxy-headers"])
def test_adapter_urls_never_follow_request_headers(
    adapter_env: None, monkeypatch: pytest.MonkeyPatch, trust_headers: bool
) -> None:
    """Host and X-Forwarded-* headers never move the credentialed URLs, with or without a public URL."""
    if trust_headers:
        monkeypatch.setenv("SWML_TRUST_PROXY_HEADERS", "1")
    forged = {"Host": "evil.example.net", "X-Forwarded-Host": "evil.example.net", "X-Forwarded-Proto": "https"}
    for public in (True, False):
        if not public:
            monkeypatch.delenv("SWML_PROXY_URL_BASE")
        adapter = _adapter()
        try:
            doc = adapter.swml_sync({"call_id": "c-hdr"}, headers=forged)
            hosts = {urlsplit(url).hostname for url in [*adapter.urls.values()]}
            assert hosts == {"agent.example.com" if public else "127.0.0.1"}
            assert "evil" not in str(doc)
        finally:
            adapter.agent.close()


@pytest.mark.parametrize("topology", ["restart", "replicas"])
def test_tool_tokens_survive_a_restart_and_a_second_replica(adapter_env: None, topology: str) -> None:
    """Tokens from one process's SWML are accepted by the next process, and by a replica serving the same URL."""
    first = _adapter()
    doc = first.swml_sync({"call_id": "c-tok", "from": KNOWN})
    urls, data = dict(first.urls), ai_verb(doc)["global_data"]
    args = {"full_name": "Walter Brooks", "property_address": "48 Birch Lane"}
    reply = first.call_sync("verify_caller_identity", swaig_request("verify_caller_identity", args, data, "c-tok"))
    data = _merge(data, reply)
    if topology == "restart":
        first.agent.close()
    others = [_adapter()] if topology == "restart" else [_adapter(), first]
    try:
        for server in others:
            body = swaig_request("search_knowledge", {"query": "fees"}, data, "c-tok")
            assert server.call_sync("search_knowledge", body, urls) == {"response": "Knowledge about fees."}
        stranger = _adapter(swaig_secret="another-deployment")
        body = swaig_request("search_knowledge", {"query": "fees"}, data, "c-tok")
        assert "token" in stranger.call_sync("search_knowledge", body, urls)["response"]
        stranger.agent.close()
    finally:
        for server in {*others, first}:
            server.agent.close()


def test_token_lifetime_is_a_setting(adapter_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens last 12 hours unless SWAIG_TOKEN_LIFETIME says otherwise; a bad value is refused by name."""
    from livekit_fallback.errors import SettingsError

    agent = ResolvedAgent(resolver=Resolver)
    assert agent._session_manager.token_expiry_secs == 12 * 3600
    agent.close()
    monkeypatch.setenv("SWAIG_TOKEN_LIFETIME", "28800")
    agent = ResolvedAgent(resolver=Resolver)
    assert agent._session_manager.token_expiry_secs == 28800
    agent.close()
    monkeypatch.setenv("SWAIG_TOKEN_LIFETIME", "soon")
    with pytest.raises(SettingsError, match="SWAIG_TOKEN_LIFETIME"):
        ResolvedAgent(resolver=Resolver)


@pytest.mark.parametrize(
    ("options", "unset", "error", "fragment"),
    [
        ({"host": "0.0.0.0"}, ["SWML_PROXY_URL_BASE"], InsecureServerError, "needs a public URL"),
        ({"host": "0.0.0.0"}, ["SWML_BASIC_AUTH_PASSWORD"], InsecureServerError, "password set by you"),
        ({"public_url": "http://agent.example.com"}, [], ValueError, "must be https"),
        ({"public_url": "https://u:p@agent.example.com"}, [], ValueError, "must not carry credentials"),
    ],
    ids=["public-bind-no-url", "public-bind-generated-password", "http-url", "url-with-credentials"],
)
def test_adapter_refuses_unsafe_deployments(
    adapter_env: None,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, Any],
    unset: list[str],
    error: type,
    fragment: str,
) -> None:
    """A public bind needs a public URL and a set password; the public URL must be https and carry no credentials."""
    for name in unset:
        monkeypatch.delenv(name)
    with pytest.raises(error, match=fragment):
        ResolvedAgent(resolver=Resolver, **options)


def test_adapter_defaults_to_loopback_with_a_password_it_shows(
    adapter_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unconfigured, the adapter binds 127.0.0.1 with a password the operator can read; a public serve is refused."""
    for name in ("SWML_PROXY_URL_BASE", "SWML_BASIC_AUTH_PASSWORD"):
        monkeypatch.delenv(name)
    agent = ResolvedAgent(resolver=Resolver)
    try:
        user, password = agent.get_basic_auth_credentials()[:2]
        assert agent.host == "127.0.0.1" and user == USER and len(password) >= 24
        with pytest.raises(InsecureServerError, match="needs a public URL"):
            agent.serve(host="0.0.0.0")
    finally:
        agent.close()
    public = ResolvedAgent(
        resolver=Resolver, host="0.0.0.0", public_url="https://agent.example.com", basic_auth=(USER, PASSWORD)
    )
    assert public.host == "0.0.0.0"
    public.close()


async def test_client_dropping_mid_body_is_one_warning_line(clean_env: None, caplog: pytest.LogCaptureFixture) -> None:
    """A client that closes halfway through its body costs one WARNING line, no ERROR and no traceback."""
    caplog.set_level(logging.DEBUG, logger="livekit_fallback")
    async with Resolver() as resolver, serving(resolver, registry(), username=USER, password=PASSWORD) as server:
        host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
        reader, writer = await asyncio.open_connection(host, port)
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        head = f"POST /swaig HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {token}\r\nContent-Length: 1000\r\n\r\n"
        writer.write(head.encode() + b'{"function": "sea')
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()
        deadline = asyncio.get_running_loop().time() + 5
        while not any(getattr(r, "event", None) == "swaig_client_dropped" for r in caplog.records):
            assert asyncio.get_running_loop().time() < deadline, caplog.text
            await asyncio.sleep(0.02)
    dropped = [r for r in caplog.records if getattr(r, "event", None) == "swaig_client_dropped"]
    assert len(dropped) == 1 and dropped[0].levelno == logging.WARNING and dropped[0].exc_info is None
    assert "/swaig" in dropped[0].getMessage() and "\n" not in dropped[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
