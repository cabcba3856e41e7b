"""End to end on the wire: database -> resolver -> real openai.LLM plugin -> local OpenAI-compatible server.

The database is the session PostgreSQL behind the PostgREST stand-in, seeded
(``seeded`` / ``db_resolver`` in conftest) from the snapshot but with different
models (LiveKit LLM ``openai/gpt-4.1``), so the model a request names shows
where the config came from.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from livekit.agents import AgentSession, llm
from livekit.plugins import openai

from livekit_fallback import Source
from livekit_fallback.agents import build_node_agents
from livekit_fallback.providers import build_llm
from tests.helpers_livekit import VERTICAL, database_down_config, example_registry
from tests.openai_server import OpenAICompatibleServer, ToolCall


def scripted(body: dict[str, Any]) -> Any:
    """Greets, hands off to verify on the caller's first reply, then opens verify."""
    messages = body["messages"]
    system = messages[0]["content"] if messages else ""
    if "# Current step: verify" in system:
        return "To protect your privacy, may I have your full name?"
    if messages[-1]["role"] == "user":
        return ToolCall("move_to_verify")
    return "Hello, this is the reverse mortgage team. Am I speaking with Margaret?"


@pytest.fixture
async def server():
    """The local OpenAI-compatible server, stopped after the test."""
    async with OpenAICompatibleServer(scripted) as srv:
        yield srv


@pytest.fixture
async def db_config(db_resolver):
    """The LiveKit config resolved from the seeded database."""
    config = await db_resolver.resolve(VERTICAL, "livekit")
    assert config.models.llm.value == "openai/gpt-4.1"
    return config


async def converse(model: llm.LLM, config: Any) -> None:
    """Start at greet, say one line (which hands off to verify), then close the session and the model."""
    agents = build_node_agents(config, tools=example_registry())
    try:
        async with AgentSession(llm=model, userdata={}) as session:
            await session.start(agents.start)
            await session.run(user_input="Yes, speaking.")
            assert session.current_agent.id == "verify"
    finally:
        for instance in getattr(model, "_llm_instances", [model]):  # an adapter does not close its children
            await instance.aclose()


def env_for(server: OpenAICompatibleServer) -> dict[str, str]:
    """Provider environment pointing the OpenAI plugin at the local server."""
    return {"OPENAI_API_KEY": "sk-local-test", "OPENAI_BASE_URL": server.base_url}


async def test_requests_carry_the_database_model(server, db_config) -> None:
    """With the database up, every chat request names the database's model, tools and handoff included."""
    assert db_config.provenance["models.llm"].source is Source.DATABASE
    model = build_llm(db_config, env=env_for(server), runtime_fallback=False)
    assert isinstance(model, openai.LLM)
    await converse(model, db_config)
    assert server.models_requested == ["gpt-4.1"] * 3
    greet_request, handoff_request, verify_request = server.requests
    assert greet_request["stream"] is True
    offered = {t["function"]["name"] for t in handoff_request["tools"]}
    assert {"move_to_verify", "move_to_answer", "mark_wrong_person"} <= offered and "move_to_book" not in offered
    assert "# Current step: verify" in verify_request["messages"][0]["content"]
    assert {"role": "user", "content": "Yes, speaking."} in verify_request["messages"]


async def test_database_down_requests_carry_the_snapshot_model(server) -> None:
    """With the database refusing connections, the same flow names the snapshot's model."""
    config = await database_down_config()
    assert config.provenance["models.llm"].source is Source.SNAPSHOT
    model = build_llm(config, env=env_for(server))
    assert isinstance(model, llm.FallbackAdapter)  # the snapshot's model, then its ranked backup
    assert [m.model for m in model._llm_instances] == ["gpt-5", "gpt-4.1-mini"]
    await converse(model, config)
    assert server.models_requested == ["gpt-5"] * 3


async def test_provider_outage_mid_call_moves_to_the_snapshot_model(server, db_config, caplog) -> None:
    """The database model failing with HTTP 500 is replaced mid-call by the snapshot's first backup, loudly."""
    server.fail_models.add("gpt-4.1")
    model = build_llm(db_config, env=env_for(server))
    assert isinstance(model, llm.FallbackAdapter)
    with caplog.at_level(logging.ERROR, logger="livekit_fallback"):
        await converse(model, db_config)
    assert server.models_requested[0] == "gpt-4.1"
    assert "gpt-4.1-mini" in server.models_requested
    assert [r for r in caplog.records if "'openai/gpt-4.1' failed mid-call" in r.getMessage()]


def booking_script(body: dict[str, Any]) -> Any:
    """In book: books the slot the caller names, then moves to goodbye; goodbye repeats the time."""
    messages = body["messages"]
    system = messages[0]["content"] if messages else ""
    last = messages[-1]
    if "# Current step: goodbye" in system:
        return "You are booked for Monday January 5 at 10 in the morning. Goodbye!"
    if last["role"] == "user":
        return ToolCall("book_appointment", {"slot": "2099-01-05T10:00", "phone": "555-0100"})
    if last["role"] == "tool" and str(last.get("content", "")).startswith("Booked"):
        return ToolCall("move_to_goodbye")
    return "Which of these times suits you?"


async def test_goodbye_first_request_carries_the_booking_result() -> None:
    """On the wire: after book -> goodbye, goodbye's first request holds the booking call and its result."""
    config = await database_down_config()
    agents = build_node_agents(config, tools=example_registry())
    async with OpenAICompatibleServer(booking_script) as srv:
        model = build_llm(config, env=env_for(srv))
        try:
            async with AgentSession(llm=model, userdata={"lead": {}, "today": "2099-01-01"}) as session:
                await session.start(agents["book"])
                await agents["book"].opening
                await session.run(user_input="Please book slot 2099-01-05T10:00, my phone is 555-0100.")
                assert session.current_agent.id == "goodbye"
        finally:
            await model.aclose()
    [first_goodbye] = [r for r in srv.requests if "# Current step: goodbye" in r["messages"][0]["content"]][:1]
    messages = first_goodbye["messages"]
    booked = [m for m in messages if m["role"] == "tool" and m["content"].startswith("Booked for Monday January 5")]
    assert booked, messages
    calls = [c for m in messages if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert [c["id"] for c in calls if c["function"]["name"] == "book_appointment"] == [booked[0]["tool_call_id"]]
    assert not [c for c in calls if c["function"]["name"].startswith("move_to_")]  # the handoff itself is not replayed
    offered = {t["function"]["name"] for t in first_goodbye["tools"]}
    assert "book_appointment" not in offered  # carried over although goodbye does not have the tool
