"""The SignalWire Agents SDK adapter in process: the example agent's SWML and tool replies through the SDK's own app.

Requests go through the SDK's FastAPI app with Starlette's in-process test
client (no socket), so the SDK's per-request hook, tool tokens and
``FunctionResult`` handling are the real ones. No database is configured
(snapshot mode).
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from signalwire.cli.core.agent_loader import load_agent_from_file
from signalwire.utils.schema_utils import SchemaUtils

from livekit_fallback.config.resolver import Resolver
from livekit_fallback.tools import ToolRegistry, ToolResult
from swaig_fallback import HANGUP_FUNCTION, NODE_KEY, CallInfo, ResolvedAgent, build_swml
from swaig_fallback.dispatch import handle_swaig
from swaig_fallback.sdk import UNAVAILABLE_MESSAGE
from swaig_fallback.state import ServerState
from swaig_fallback.swml import DEFAULT_LANGUAGE
from tests.swaig_helpers import ai_verb, swml_errors

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "signalwire_agent.py"
AUTH = ("sw-user", "sw-pass")
CALL = {"call": {"call_id": "call-1", "from": "+1 555 010 4477", "to": "+15550100000", "direction": "inbound"}}
LEAD = {"first_name": "Walter", "last_name": "Brooks", "property_address": "48 Birch Lane, Fairview"}
STATE = {"lead": LEAD, "today": "2026-03-16", NODE_KEY: "greet"}
EXAMPLE_CALLS: dict[str, dict[str, Any]] = {
    "verify_caller_identity": {"full_name": "Walter Brooks", "property_address": "48 Birch Lane"},
    "update_lead_info": {"age": 71, "home_value": 420000},
    "mark_qualification_result": {"qualified": True, "reason": "owns the home"},
    "mark_quote_presented": {"estimate_low": 150000, "estimate_high": 190000},
    "search_knowledge": {"query": "what fees are there"},
    "mark_ready_to_book": {},
    "mark_objection_handled": {"outcome": "resolved"},
    "mark_has_objection": {"objection": "my children inherit the house"},
    "check_broker_availability": {"time_of_day": "morning"},
    "book_appointment": {"slot": "2026-03-17T10:00", "phone": "+1 555 010 4477"},
    "mark_booking_declined": {},
    "mark_wrong_person": {"note": "his son answered"},
    HANGUP_FUNCTION: {},
}


def _example_tools() -> Any:
    """The example's tool module, imported as the example imports it."""
    spec = importlib.util.spec_from_file_location(
        "reverse_mortgage_tools", ROOT / "examples" / "reverse_mortgage_tools.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOLS = _example_tools()


class Sdk:
    """An agent behind the SDK's own app, with the tool tokens of one rendered SWML."""

    def __init__(self, agent: ResolvedAgent) -> None:
        self.agent = agent
        self.client = TestClient(agent.get_app())
        self.swml = self.post("/", CALL)
        functions = ai_verb_of(self.swml)["SWAIG"]["functions"]
        self.paths = {
            f["function"]: f"{urlsplit(f['web_hook_url']).path}?{urlsplit(f['web_hook_url']).query}" for f in functions
        }

    def post(self, path: str, body: Any) -> Any:
        response = self.client.post(path, json=body, auth=AUTH)
        assert response.status_code == 200, response.text
        return response.json()

    def call(self, function: str, args: Any, global_data: dict[str, Any], *, token_of: str | None = None) -> Any:
        """A SWAIG request as SignalWire sends it, with the token the SWML gave the function."""
        body = {"function": function, "call_id": "call-1", "argument": {"parsed": [args]}, "global_data": global_data}
        return self.post(self.paths[token_of or function], body)


def ai_verb_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``ai`` verb of a SWML document."""
    (verb,) = [v["ai"] for v in doc["sections"]["main"] if "ai" in v]
    return verb  # type: ignore[no-any-return]


@pytest.fixture
def example(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sdk]:
    """The example agent loaded as swaig-test loads it (no database), behind the SDK's app."""
    monkeypatch.setenv("SWML_BASIC_AUTH_USER", AUTH[0])
    monkeypatch.setenv("SWML_BASIC_AUTH_PASSWORD", AUTH[1])
    agent = load_agent_from_file(str(EXAMPLE))
    assert isinstance(agent, ResolvedAgent)
    try:
        yield Sdk(agent)
    finally:
        agent.close()
        sys.modules.pop("reverse_mortgage_tools", None)


async def _reference_swml() -> dict[str, Any]:
    async with Resolver() as resolver:
        config = await resolver.resolve("reverse_mortgage", "signalwire")
    call = CallInfo.from_request(CALL, {})
    return build_swml(
        config,
        webhook_url="https://user:pass@agent.example.com/swaig",
        registry=TOOLS.build_registry(),
        missing_tools="omit",
        call=call,
        call_state=TOOLS.call_state,
    )


def _structure(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what may differ: webhook URLs and the order of functions."""
    doc = copy.deepcopy(doc)
    swaig = ai_verb_of(doc)["SWAIG"]
    del swaig["defaults"]["web_hook_url"]
    for function in swaig["functions"]:
        function.pop("web_hook_url", None)
    swaig["functions"].sort(key=lambda f: f["function"])
    return doc


def test_sdk_swml_is_structurally_build_swml(example: Sdk) -> None:
    """The SDK renders the example's contexts, steps, texts, functions, params and languages as build_swml does."""
    reference = asyncio.run(_reference_swml())
    assert _structure(example.swml) == _structure(reference)
    ai = ai_verb_of(example.swml)
    assert ai["global_data"]["lead"]["first_name"] == "Walter"
    assert ai["global_data"][NODE_KEY] == "greet"
    assert ai["SWAIG"]["defaults"]["web_hook_url"].endswith("/swaig/")
    assert all("__token=" in f["web_hook_url"] for f in ai["SWAIG"]["functions"])


def test_sdk_swml_passes_both_validations(example: Sdk) -> None:
    """The SDK-rendered document passes the SDK's own document validation and signalwire/schema.json."""
    assert swml_errors(example.swml) == []
    valid, errors = SchemaUtils().validate_document(example.swml)
    assert (valid, errors) == (True, [])
    assert ai_verb(example.swml)["prompt"]["contexts"]["end"]["steps"][0]["end"] is True


@pytest.mark.parametrize("function", list(EXAMPLE_CALLS))
def test_each_example_tool_replies_as_the_package_server(example: Sdk, function: str) -> None:
    """Through the SDK's /swaig, every example tool's reply equals the package server's for the same input."""
    args = EXAMPLE_CALLS[function]
    got = example.call(function, args, copy.deepcopy(STATE))
    status, expected = asyncio.run(_server_reply(TOOLS.build_registry(), function, args, copy.deepcopy(STATE)))
    assert status == 200
    assert got == expected
    assert isinstance(got["response"], str) and got["response"]


async def _server_reply(
    registry: ToolRegistry, function: str, args: Any, global_data: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with Resolver() as resolver:
        state = ServerState(resolver, registry, None, "reverse_mortgage", 4096, None, 10.0, DEFAULT_LANGUAGE)
        payload = {
            "function": function,
            "call_id": "call-1",
            "argument": {"parsed": [args]},
            "global_data": global_data,
        }
        return await handle_swaig(state, payload)


def test_closing_steps_hang_up_after_the_goodbye(example: Sdk) -> None:
    """end_call is offered in the closing steps and answers with a hangup action and post_process."""
    contexts = ai_verb_of(example.swml)["prompt"]["contexts"]
    closing = {name for name, ctx in contexts.items() if HANGUP_FUNCTION in ctx["steps"][0]["functions"]}
    assert closing == {"goodbye", "end"}
    reply = example.call(HANGUP_FUNCTION, {}, {NODE_KEY: "goodbye"})
    assert reply["action"] == [{"hangup": True}] and reply["post_process"] is True
    assert example.swml["sections"]["main"][-1] == {"hangup": {}}


def test_unknown_function_and_bad_arguments_get_a_response(example: Sdk) -> None:
    """An unknown function and arguments that break the schema are answered with a response for the model."""
    unknown = example.call("transfer_money", {}, {}, token_of="search_knowledge")
    assert unknown == {"response": "Function 'transfer_money' not found"}
    bad = example.call("search_knowledge", {"query": 5}, {})
    assert set(bad) == {"response"} and bad["response"].startswith("Invalid arguments")
    missing = example.call("book_appointment", {"phone": "+1 555 010 4477"}, {})
    assert set(missing) == {"response"} and "slot" in missing["response"]


def test_tool_without_its_token_is_refused_by_the_sdk(example: Sdk) -> None:
    """The SDK's tool tokens stay on: a request without the function's token does not run it."""
    body = {"function": "mark_wrong_person", "call_id": "call-1", "argument": {"parsed": [{}]}}
    reply = example.post("/swaig/", body)
    assert "action" not in reply and "token" in reply["response"]


def _routing_registry() -> ToolRegistry:
    """One tool the greet step offers, moving the call wherever it is asked to."""
    registry = ToolRegistry()

    @registry.tool(
        description="Move the call to another step.",
        parameters={"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
    )
    def mark_wrong_person(args: dict[str, Any], state: dict[str, Any]) -> ToolResult:
        return ToolResult("Moving.", {"next_node": args["to"]})

    return registry


@pytest.fixture
def routing(clean_env: None) -> Iterator[Sdk]:
    """An agent whose greet-step tool asks to move the call."""
    agent = ResolvedAgent(registry=_routing_registry(), resolver=Resolver, basic_auth=AUTH)
    try:
        yield Sdk(agent)
    finally:
        agent.close()


def test_routing_outside_valid_contexts_is_refused(routing: Sdk) -> None:
    """A move to a node outside the current node's valid_contexts is refused; a move inside them is made."""
    refused = routing.call("mark_wrong_person", {"to": "book"}, {NODE_KEY: "greet"})
    assert "not allowed" in refused["response"]
    assert "action" not in refused
    status, expected = asyncio.run(
        _server_reply(_routing_registry(), "mark_wrong_person", {"to": "book"}, {NODE_KEY: "greet"})
    )
    assert refused == expected
    made = routing.call("mark_wrong_person", {"to": "goodbye"}, {NODE_KEY: "greet"})
    assert made["action"] == [{"set_global_data": {NODE_KEY: "goodbye"}}, {"change_context": "goodbye"}]


def test_unresolvable_config_fails_closed(clean_env: None, tmp_path: Path) -> None:
    """With no config from any source, the SWML apologises and hangs up before the AI runs."""
    from livekit_fallback.config.sources.snapshot import SnapshotSource

    agent = ResolvedAgent(
        "no_such_vertical", resolver=lambda: Resolver(snapshots=SnapshotSource([tmp_path])), basic_auth=AUTH
    )
    try:
        response = TestClient(agent.get_app()).post("/", json=CALL, auth=AUTH)
        main = response.json()["sections"]["main"]
        assert main[1] == {"play": {"url": f"say:{UNAVAILABLE_MESSAGE}"}} and main[2] == {"hangup": {}}
    finally:
        agent.close()


def test_call_state_hook_seeds_global_data_only_on_the_swml_request(clean_env: None) -> None:
    """The call-state hook runs for the SWML fetch and its data lands in global_data; tool calls do not rerun it."""
    calls: list[CallInfo] = []

    def hook(call: CallInfo) -> dict[str, Any]:
        calls.append(call)
        return {"caller": call.caller_phone}

    agent = ResolvedAgent(registry=TOOLS.build_registry(), resolver=Resolver, call_state=hook, basic_auth=AUTH)
    try:
        sdk = Sdk(agent)
        assert ai_verb_of(sdk.swml)["global_data"] == {"caller": "+1 555 010 4477", NODE_KEY: "greet"}
        sdk.call("mark_wrong_person", {}, {})
        assert len(calls) == 1
    finally:
        agent.close()


def test_failing_call_state_hook_fails_closed(clean_env: None) -> None:
    """A call-state hook that raises gives the apology and a hangup, not an agent without the caller's data."""

    def hook(call: CallInfo) -> dict[str, Any]:
        raise RuntimeError("CRM down")

    agent = ResolvedAgent(registry=TOOLS.build_registry(), resolver=Resolver, call_state=hook, basic_auth=AUTH)
    try:
        main = TestClient(agent.get_app()).post("/", json=CALL, auth=AUTH).json()["sections"]["main"]
        assert main[1] == {"play": {"url": f"say:{UNAVAILABLE_MESSAGE}"}} and main[2] == {"hangup": {}}
    finally:
        agent.close()
