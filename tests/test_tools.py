"""The shared tool registry: registration rules, argument validation, state changes, binding."""

from __future__ import annotations

import pytest

from livekit_fallback import resolve_agent_config
from livekit_fallback.tools import ToolArgumentError, ToolRegistry, ToolResult, UnknownToolError, UnknownToolsError

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}


def _registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool(description="Verify.", parameters=SCHEMA)
    def verify_caller_identity(args, state):  # noqa: ANN001, ANN202
        state["verified"] = True
        state.setdefault("lead", {})["name"] = args["name"]
        return f"Verified {args['name']}."

    @registry.tool(description="Async tool.")
    async def mark_wrong_person(args, state):  # noqa: ANN001, ANN202
        return ToolResult("Noted.", {"wrong_person": True}, end_call=True)

    return registry


async def test_call_validates_runs_and_reports_state_changes() -> None:
    """A call returns the handler's text and every state change, nested ones included."""
    state: dict = {"lead": {"phone": "+1"}}
    result = await _registry().call("verify_caller_identity", {"name": "Ada"}, state)
    assert result == ToolResult("Verified Ada.", {"verified": True, "lead": {"phone": "+1", "name": "Ada"}})
    assert state["verified"] is True


async def test_async_handlers_and_tool_results_pass_through() -> None:
    """Async handlers are awaited and a returned ToolResult keeps its state and end_call."""
    result = await _registry().call("mark_wrong_person", {}, {})
    assert result.end_call and result.state == {"wrong_person": True}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "'name' is a required property"),
        ({"name": 3}, "name: 3 is not of type 'string'"),
        ({"name": "a", "x": 1}, "Additional properties"),
        (["a"], "must be a JSON object"),
    ],
)
async def test_bad_arguments_name_the_problem(args: object, fragment: str) -> None:
    """Arguments that break the schema raise ToolArgumentError naming the field; the handler never runs."""
    state: dict = {}
    with pytest.raises(ToolArgumentError, match=None) as info:
        await _registry().call("verify_caller_identity", args, state)
    assert fragment in str(info.value) and state == {}


async def test_unknown_tool_and_registration_rules() -> None:
    """Unknown names, reserved names, duplicates and non-object schemas are refused."""
    registry = _registry()
    with pytest.raises(UnknownToolError):
        await registry.call("transfer", {}, {})
    for name, params in [("change_context", None), ("verify_caller_identity", None), ("x", {"type": "string"})]:
        with pytest.raises(ValueError):
            registry.tool(name, description="d", parameters=params)(lambda a, s: "")


@pytest.mark.parametrize(
    "name", ["hangup", "startup_hook", "hangup_hook", "summarize_conversation", "check_time", "wait_for_user"]
)
def test_names_the_platform_or_sdk_treat_specially_are_refused(name: str) -> None:
    """A tool named like a SignalWire hook or native function is refused at registration with a clear error."""
    with pytest.raises(ValueError, match=rf"{name!r} is reserved by SignalWire or its SDK"):
        ToolRegistry().tool(name, description="d")(lambda a, s: "")


async def test_binding_reports_every_unknown_tool_at_once(clean_env: None) -> None:
    """Binding the shipped config to a partial registry lists all missing tools and the nodes using them."""
    config = await resolve_agent_config("reverse_mortgage")
    with pytest.raises(UnknownToolsError) as info:
        _registry().bind(config)
    missing = info.value.missing
    assert "verify_caller_identity" not in missing and "mark_wrong_person" not in missing
    assert missing["search_knowledge"] == ["answer", "objections"]
    assert len(missing) == 10


async def test_blocking_sync_tool_does_not_stall_the_event_loop() -> None:
    """A sync handler that blocks runs in a worker thread while the event loop keeps serving."""
    import asyncio
    import time

    registry = ToolRegistry()

    @registry.tool(description="Slow CRM lookup.")
    def slow_lookup(args, state):  # noqa: ANN001, ANN202
        time.sleep(0.3)
        state["looked_up"] = True
        return "found"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await registry.call("slow_lookup", {}, {})
    finally:
        task.cancel()
    assert result == ToolResult("found", {"looked_up": True})
    assert ticks >= 10


async def test_state_holding_uncopyable_objects_still_works() -> None:
    """Call state may hold locks or clients; tools still run and report what changed."""
    import threading

    state: dict = {"lock": threading.Lock()}
    result = await _registry().call("verify_caller_identity", {"name": "Ada"}, state)
    assert result.response == "Verified Ada." and set(result.state) == {"verified", "lead"}


async def test_deleted_state_keys_are_reported() -> None:
    """A tool that deletes a call-state key reports it, so SWAIG can unset it in global_data."""
    registry = ToolRegistry()

    @registry.tool(description="Forget the offered slots.")
    def forget_slots(args, state):  # noqa: ANN001, ANN202
        del state["offered_slots"]
        return "ok"

    result = await registry.call("forget_slots", {}, {"offered_slots": ["a"], "verified": True})
    assert result.removed == ("offered_slots",) and result.state == {}
