"""Node agents driven in a real AgentSession by a scripted fake LLM (offline, no keys)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit.agents import AgentHandoffEvent, AgentSession, CloseReason, FunctionCallOutputEvent

from livekit_fallback.agents import NodeAgent, build_node_agents, compose_instructions
from livekit_fallback.config.model import Source
from livekit_fallback.tools import ToolRegistry, ToolResult, UnknownToolsError
from tests.fake_llm import Call, FakeLLM
from tests.helpers_livekit import database_down_config, example_registry, snapshot_config

GREETING = "Hello, this is the reverse mortgage team. Am I speaking with Margaret?"


def outputs(result: Any) -> list[Any]:
    """The function call outputs of a run, in order."""
    return [e.item for e in result.events if isinstance(e, FunctionCallOutputEvent)]


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` holds (fails the test after ``timeout`` seconds)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def handoffs(result: Any) -> list[tuple[str, str]]:
    """``(old, new)`` agent ids of the handoffs in a run."""
    return [(e.old_agent.id, e.new_agent.id) for e in result.events if isinstance(e, AgentHandoffEvent)]


def registry_with(config: Any, handler: Any) -> ToolRegistry:
    """A registry where mark_wrong_person runs ``handler`` and every other tool of the config answers "ok"."""
    registry = ToolRegistry()
    registry.tool("mark_wrong_person", description="Wrong person.")(handler)
    for name in {t for n in config.nodes.values() for t in n.tools} - {"mark_wrong_person"}:
        registry.tool(name, description=name)(lambda args, state: "ok")
    return registry


@pytest.fixture
async def config():
    """The snapshot config (no database)."""
    return await snapshot_config()


async def test_starts_at_greet_with_composed_instructions_and_tools(config) -> None:
    """The session starts in greet, whose instructions are theme + role + instructions + completion."""
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM([GREETING])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        assert session.current_agent is agents["greet"]
        assert agents.start.id == "greet"
    seen = fake.seen[0]
    greet = config.nodes["greet"]
    assert seen.instructions == compose_instructions(config, greet)
    assert seen.instructions.startswith(config.theme.text[:200])
    for part in (greet.role.strip(), greet.instructions.strip(), greet.step_criteria_sw):
        assert part in seen.instructions
    assert seen.tools == ("mark_wrong_person", "move_to_answer", "move_to_goodbye", "move_to_quote", "move_to_verify")
    assert set(agents) == set(config.nodes)


async def test_valid_handoff_moves_to_target_with_history() -> None:
    """After the caller's first reply, move_to_verify hands off to verify, which sees the earlier turns."""
    config = await snapshot_config()
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM([GREETING, Call("move_to_verify"), "To protect your privacy, what is your full name?"])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        result = await session.run(user_input="Yes, this is Margaret.")
        assert handoffs(result) == [("greet", "verify")]
        assert isinstance(session.current_agent, NodeAgent) and session.current_agent.id == "verify"
        assert session.userdata["greet_turn_count"] == 1
        assert session.userdata["current_node"] == "verify"
    after = fake.seen[-1]
    assert after.instructions == compose_instructions(config, config.nodes["verify"])
    assert ("user", "Yes, this is Margaret.") in after.messages
    assert ("assistant", GREETING) in after.messages
    assert "verify_caller_identity" in after.tools and "move_to_verify" not in after.tools


async def test_target_outside_valid_contexts_is_impossible(config) -> None:
    """Greet offers no move_to_book; a model calling it anyway gets an error and stays in greet."""
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM([GREETING, Call("move_to_book"), "Sorry, let me first confirm who I am speaking with."])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        result = await session.run(user_input="Book me an appointment right now.")
        assert "move_to_book" not in fake.seen[1].tools
        [output] = outputs(result)
        assert output.is_error and "move_to_book" in output.output
        assert handoffs(result) == []
        assert session.current_agent is agents["greet"]


async def test_unmet_criteria_keep_agent_in_place_and_say_why(config) -> None:
    """Leaving verify before verified == True is refused with what is missing; after verifying it works."""
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM(
        [
            "What is your full name and the property address?",
            Call("move_to_qualify"),
            "I still need to confirm your details first.",
            Call("verify_caller_identity", {"full_name": "Margaret Lee", "property_address": "12 Oak Street"}),
            Call("move_to_qualify"),
            "Great, a few quick questions now.",
        ]
    )
    async with AgentSession(llm=fake, userdata={"demo_mode": True}) as session:
        await session.start(agents["verify"])
        refused = await session.run(user_input="Let's skip this part.")
        [output] = outputs(refused)
        assert not output.is_error
        assert "Still missing: verified == True" in output.output
        assert "step is not complete" in output.output
        assert handoffs(refused) == [] and session.current_agent is agents["verify"]

        moved = await session.run(user_input="Margaret Lee, 12 Oak Street.")
        assert [o.output for o in outputs(moved)][0].startswith("Verified")
        assert session.userdata["verified"] is True
        assert handoffs(moved) == [("verify", "qualify")]


async def test_turn_counter_gates_greet_until_the_caller_replies(config) -> None:
    """A move out of greet in the opening (no caller turn yet) is refused; after one reply it is allowed."""
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM([Call("move_to_verify"), GREETING, Call("move_to_verify"), "What is your full name?"])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        await wait_until(lambda: len(fake.seen) == 2)
        assert fake.seen[1].tool_outputs[-1].startswith("Not moved: the 'greet' step is not complete yet")
        assert "Still missing: greet_turn_count >= 1 or wrong_person == True" in fake.seen[1].tool_outputs[-1]
        assert session.current_agent is agents["greet"]
        result = await session.run(user_input="Speaking.")
        assert session.userdata["greet_turn_count"] == 1
        assert handoffs(result) == [("greet", "verify")]


async def test_a_node_can_be_entered_again_with_the_whole_history(config) -> None:
    """Answer -> goodbye -> answer: the same node agent is re-entered and sees every earlier turn."""
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM(
        [
            "What would you like to know?",
            Call("move_to_goodbye"),
            "Anything else I can help with?",
            Call("move_to_answer"),
            "Sure, what is your other question?",
        ]
    )
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents["answer"])
        first = await session.run(user_input="That answers it.")
        second = await session.run(user_input="Actually, one more question.")
        assert handoffs(first) == [("answer", "goodbye")] and handoffs(second) == [("goodbye", "answer")]
        assert session.current_agent is agents["answer"]
        assert session.userdata["answer_turn_count"] == 1 and session.userdata["goodbye_turn_count"] == 1
    users = [text for role, text in fake.seen[-1].messages if role == "user"]
    assert users == ["That answers it.", "Actually, one more question."]
    assert fake.seen[-1].instructions == compose_instructions(config, config.nodes["answer"])


async def test_reaching_end_closes_the_session(config) -> None:
    """Goodbye -> end: the end node's entry closes the session."""
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM(["Is there anything else I can help with?", ["Goodbye, take care!", Call("move_to_end")]])
    closed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    session = AgentSession(llm=fake, userdata={})
    session.on("close", lambda ev: closed.done() or closed.set_result(ev))
    async with session:
        await session.start(agents["goodbye"])
        result = await session.run(user_input="No, that's all. Thank you!")
        assert handoffs(result) == [("goodbye", "end")]
        event = await asyncio.wait_for(closed, 5)
    assert event.reason == CloseReason.USER_INITIATED
    assert session.userdata["current_node"] == "end"
    assert len(fake.seen) == 2  # the end node never calls the model


async def test_tool_results_update_call_state_and_bad_arguments_are_errors(config) -> None:
    """Registry tools set flags in userdata; arguments failing the schema reach the model as an error."""
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM(
        [
            "Let me ask a few quick questions.",
            [Call("mark_qualification_result", {"qualified": "yes"}), Call("update_lead_info", {"age": 74})],
            Call("mark_qualification_result", {"qualified": True, "reason": "meets all requirements"}),
            "You qualify.",
        ]
    )
    async with AgentSession(llm=fake, userdata={"lead": {"last_name": "Lee", "property_address": "1 A St"}}) as session:
        await session.start(agents["qualify"])
        result = await session.run(user_input="I'm 74 and I own the house outright.")
        bad, saved, good = outputs(result)
        assert bad.is_error and "qualified" in bad.output and "boolean" in bad.output
        assert not saved.is_error and session.userdata["lead"]["age"] == 74
        assert good.output == "Recorded: qualified."
        assert session.userdata["qualified"] is True


async def test_end_call_result_closes_the_session(config) -> None:
    """A tool returning ToolResult(end_call=True) ends the call after the reply."""
    registry = registry_with(
        config, lambda args, state: ToolResult("Recorded; end the call.", {"wrong_person": True}, end_call=True)
    )
    agents = build_node_agents(config, tools=registry, reply_on_enter=False)
    fake = FakeLLM([Call("mark_wrong_person"), "Sorry to have bothered you. Goodbye."])
    closed = asyncio.Event()
    async with AgentSession(llm=fake, userdata={}) as session:
        session.on("close", lambda ev: closed.set())
        await session.start(agents.start)
        await session.run(user_input="You have the wrong number.")
        await asyncio.wait_for(closed.wait(), 5)
    assert session.userdata["wrong_person"] is True
    assert len(fake.seen) == 2


async def test_a_raising_tool_is_an_error_for_the_model_and_logged(config, caplog) -> None:
    """A handler exception becomes an error tool output (no details leaked) and an ERROR log; the call goes on."""

    def broken(args: dict, state: dict) -> str:
        raise RuntimeError("backend secret-token-123 unreachable")

    registry = registry_with(config, broken)
    agents = build_node_agents(config, tools=registry, reply_on_enter=False)
    fake = FakeLLM([Call("mark_wrong_person"), "Sorry about that."])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        result = await session.run(user_input="Wrong number.")
        [output] = outputs(result)
        assert output.is_error and "mark_wrong_person failed" in output.output
        assert "secret-token-123" not in output.output
        assert session.current_agent is agents["greet"]
    [record] = [r for r in caplog.records if r.getMessage().startswith("Tool mark_wrong_person raised")]
    assert record.exc_info is not None and record.tool == "mark_wrong_person"


async def test_unknown_tool_names_are_reported_at_once(config) -> None:
    """Binding a config to a registry missing tools lists every missing name with its nodes."""
    registry = ToolRegistry()
    registry.tool("mark_wrong_person", description="Wrong person.")(lambda args, state: "ok")
    with pytest.raises(UnknownToolsError) as caught:
        build_node_agents(config, tools=registry)
    expected = {t for n in config.nodes.values() for t in n.tools} - {"mark_wrong_person"}
    assert set(caught.value.missing) == expected and len(expected) == 11
    assert caught.value.missing["search_knowledge"] == ["answer", "objections"]


async def test_config_from_fallback_still_builds_working_agents() -> None:
    """With the database down every node comes from the snapshot, and the agents still run."""
    config = await database_down_config()
    assert {p.source for p in config.provenance.values()} == {Source.SNAPSHOT}
    agents = build_node_agents(config, tools=example_registry())
    fake = FakeLLM([GREETING, Call("move_to_answer"), "Happy to answer that."])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        result = await session.run(user_input="What is a reverse mortgage anyway?")
        assert handoffs(result) == [("greet", "answer")]


@pytest.mark.parametrize(("target", "moved"), [("goodbye", True), ("book", False)])
async def test_a_tool_can_route_the_call_within_valid_contexts(config, target: str, moved: bool) -> None:
    """A tool setting next_node hands off like SignalWire's change_context, but only to a valid_contexts target."""

    def mark_wrong_person(args, state):  # noqa: ANN001, ANN202
        state["wrong_person"] = True
        state["next_node"] = target
        return "Recorded."

    registry = registry_with(config, mark_wrong_person)
    agents = build_node_agents(config, tools=registry, reply_on_enter=False)
    fake = FakeLLM([Call("mark_wrong_person"), "Understood."])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        result = await session.run(user_input="You have the wrong number.")
        current = session.current_agent.id
    assert handoffs(result) == ([("greet", target)] if moved else [])
    assert current == (target if moved else "greet")
    assert "next_node" not in session.userdata and session.userdata["wrong_person"] is True


BOOKING = Call("book_appointment", {"slot": "2099-01-05T10:00", "phone": "555-0100"})
BOOKED = "Booked for Monday January 5 at 10 in the morning; the broker will call 555-0100."


async def test_the_next_node_sees_the_booking_result(config) -> None:
    """After book -> goodbye, goodbye's first request carries the booking call and its result."""
    agents = build_node_agents(config, tools=example_registry())
    script = ["Which time suits you?", BOOKING, Call("move_to_goodbye"), "You are booked for Monday at 10. Goodbye!"]
    fake = FakeLLM(script)
    async with AgentSession(llm=fake, userdata={"lead": {}, "today": "2099-01-01"}) as session:
        await session.start(agents["book"])
        assert agents["book"].opening is not None
        await agents["book"].opening  # the node's opening line is spoken before the caller answers
        result = await session.run(user_input="Please book slot 2099-01-05T10:00, my phone is 555-0100.")
        assert handoffs(result) == [("book", "goodbye")]
    [first_goodbye] = [s for s in fake.seen if "# Current step: goodbye" in s.instructions][:1]
    assert BOOKED in first_goodbye.tool_outputs
    assert ("user", "Please book slot 2099-01-05T10:00, my phone is 555-0100.") in first_goodbye.messages


async def test_a_routing_tool_result_reaches_the_next_node(config) -> None:
    """A tool that routes with next_node returns an agent, yet the next node sees the tool's own result."""

    def mark_wrong_person(args, state):  # noqa: ANN001, ANN202
        state["wrong_person"] = True
        state["next_node"] = "goodbye"
        return "Recorded: wrong person."

    agents = build_node_agents(config, tools=registry_with(config, mark_wrong_person))
    fake = FakeLLM([GREETING, Call("mark_wrong_person"), "Sorry for the trouble. Goodbye."])
    async with AgentSession(llm=fake, userdata={}) as session:
        await session.start(agents.start)
        await session.run(user_input="You have the wrong number.")
        assert session.current_agent.id == "goodbye"
    assert "Recorded: wrong person." in fake.seen[-1].tool_outputs


async def test_a_handoff_with_other_tool_calls_gives_one_agent_turn(config) -> None:
    """One response moves and books at once: the next node speaks once, the old node not again."""
    agents = build_node_agents(config, tools=example_registry())
    script = ["Which time suits you?", [BOOKING, Call("move_to_goodbye")], "You are booked for Monday at 10. Goodbye!"]
    fake = FakeLLM(script, default="EXTRA TURN")
    # The tools of one response run concurrently: the step is already complete, so the move does not race the booking.
    state = {"lead": {}, "today": "2099-01-01", "appointment_booked": True}
    async with AgentSession(llm=fake, userdata=state) as session:
        await session.start(agents["book"])
        await agents["book"].opening
        result = await session.run(user_input="Please book slot 2099-01-05T10:00, my phone is 555-0100.")
        await wait_until(lambda: agents["goodbye"].opening is not None)
        await agents["goodbye"].opening
        assert handoffs(result) == [("book", "goodbye")]
        said = [i.text_content for i in session.history.items if i.type == "message" and i.role == "assistant"]
    assert said == ["Which time suits you?", "You are booked for Monday at 10. Goodbye!"]
    assert [s for s in fake.seen if "# Current step: book" in s.instructions][1:] == [fake.seen[1]]  # no 3rd request
    assert BOOKED in fake.seen[-1].tool_outputs  # the next node answers with the booking result
