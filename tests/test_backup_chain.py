"""Backup chains on the wire: the real openai.LLM plugin against a local server that fails chosen models.

The database is the session PostgreSQL behind the PostgREST stand-in; each test
sets the active LLM row and the ranked backup rows (``backup_rank``) it needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from livekit.agents import AgentSession, llm
from livekit.agents.testing import fake_job_context

from livekit_fallback import Reason, Source
from livekit_fallback.agents import build_node_agents
from livekit_fallback.call import start_call
from livekit_fallback.metrics import REGISTRY
from livekit_fallback.providers import build_chain
from tests.conftest import SeededDatabase
from tests.helpers_livekit import VERTICAL, VOICE_KEYS, TextConsole, example_registry, scripted
from tests.openai_server import OpenAICompatibleServer
from tests.support.seed import set_active_model, set_backups

pytestmark = pytest.mark.integration

LLM_TABLE = "livekit_available_llm_models"


def sample(name: str, **labels: str) -> float:
    """A metric sample's current value (0 when the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def server_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No provider or LiveKit keys from the shell: the tests set only OPENAI_BASE_URL."""
    for name in VOICE_KEYS:
        monkeypatch.delenv(name, raising=False)
    yield


async def test_database_model_equal_to_snapshot_failing_continues_on_the_first_backup(
    seeded: SeededDatabase, db_resolver: Any, server_env: None
) -> None:
    """Database LLM = snapshot LLM answering 500: the call moves to the first ranked backup and hands off."""
    set_active_model(seeded.dsn, LLM_TABLE, "openai/gpt-5")
    set_backups(seeded.dsn, LLM_TABLE, ["openai/gpt-4.1-mini"])
    config = await db_resolver.resolve(VERTICAL, "livekit")
    assert config.models.llm.value == "openai/gpt-5" and config.provenance["models.llm"].source is Source.DATABASE
    [(first, origin), *rest] = config.backups["llm"]
    assert first.value == "openai/gpt-4.1-mini" and origin.source is Source.DATABASE and origin.location == LLM_TABLE
    assert [c.value for c, _ in rest] == ["google/gemini-2.5-flash", "openai/gpt-5"]  # snapshot list, then its choice
    switches = {"kind": "llm", "from": "openai/gpt-5", "to": "openai/gpt-4.1-mini"}
    before = sample("livekit_fallback_model_switches_total", **switches)
    async with OpenAICompatibleServer(scripted, fail_models=["gpt-5"]) as srv:
        chain = build_chain(config, "llm", env={"OPENAI_BASE_URL": srv.base_url})
        assert isinstance(chain.instance, llm.FallbackAdapter)
        assert [m.choice.value for m in chain.models] == ["openai/gpt-5", "openai/gpt-4.1-mini"]
        agents = build_node_agents(config, tools=example_registry())
        try:
            async with AgentSession(llm=chain.instance, userdata={}) as session:
                started = time.perf_counter()
                await session.start(agents.start)
                await agents.start.opening
                first_answer = time.perf_counter() - started
                await session.run(user_input="Yes, speaking.")
                assert session.current_agent.id == "verify"
        finally:
            for model in chain.models:
                await model.instance.aclose()
    assert srv.models_requested[0] == "gpt-5"  # the greeting: failed, then the backup (gpt-5 again: recovery probes)
    assert srv.models_requested.count("gpt-4.1-mini") == 3  # greeting, handoff, verify (gpt-5: recovery probes)
    assert first_answer < 2.0, f"the backup answered the greeting only after {first_answer:.2f} s"
    print(f"time to the greeting from the backup: {first_answer * 1000:.0f} ms")
    assert sample("livekit_fallback_model_switches_total", **switches) == before + 1


async def test_every_route_failing_ends_the_call_with_one_clear_line(
    seeded: SeededDatabase,
    db_resolver: Any,
    server_env: None,
    text_console: TextConsole,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Active and backup LLMs all answering 500: CALL ENDED is logged and the job shuts down, no silent hang."""
    set_active_model(seeded.dsn, LLM_TABLE, "openai/gpt-5")
    set_backups(seeded.dsn, LLM_TABLE, ["openai/gpt-4.1-mini"])
    async with OpenAICompatibleServer(scripted, fail_models=["gpt-5", "gpt-4.1-mini"]) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        with fake_job_context() as ctx, caplog.at_level(logging.ERROR, logger="livekit_fallback"):
            shutdown: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            ctx._on_shutdown = lambda reason: shutdown.done() or shutdown.set_result(reason)  # type: ignore[attr-defined]
            started = time.perf_counter()
            call = await asyncio.wait_for(start_call(ctx, VERTICAL, tools=example_registry(), resolver=db_resolver), 20)
            try:
                reason = await asyncio.wait_for(shutdown, 20)
            finally:
                await call.session.aclose()
                for model in call.models["llm"].models:
                    await model.instance.aclose()
                await ctx._on_cleanup()
            ended = time.perf_counter() - started
    assert reason == "every LLM model of the backup chain failed"
    [line] = [r for r in caplog.records if r.getMessage().startswith("CALL ENDED")]
    assert "every LLM model of the backup chain failed" in line.getMessage()
    assert line.levelno == logging.ERROR and line.event == "call_ended_by_error"
    assert set(srv.models_requested) == {"gpt-5", "gpt-4.1-mini"}
    assert ended < 20
    print(f"call ended {ended:.2f} s after it started")


async def test_an_unbuildable_database_model_is_named_as_such(
    seeded: SeededDatabase,
    db_resolver: Any,
    server_env: None,
    text_console: TextConsole,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A groq row with no key for it: reason unbuildable, MODEL UNAVAILABLE banner, metric, gauge, provenance."""
    set_active_model(seeded.dsn, LLM_TABLE, "groq/llama-3.3-70b")
    labels = {"component": "models.llm", "platform": "livekit", "source": "snapshot", "reason": "unbuildable"}
    before = sample("livekit_fallback_fallbacks_total", **labels)
    async with OpenAICompatibleServer(scripted) as srv:
        monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
        with fake_job_context() as ctx, caplog.at_level(logging.ERROR, logger="livekit_fallback"):
            call = await start_call(ctx, VERTICAL, tools=example_registry(), resolver=db_resolver)
            try:
                await call.session.run(user_input="Yes, speaking.")
            finally:
                await call.session.aclose()
                await call.session.llm.aclose()  # type: ignore[union-attr]
                await ctx._on_cleanup()
    assert set(srv.models_requested) == {"gpt-4.1-mini"}  # the snapshot's first buildable backup carried the call
    provenance = call.config.provenance["models.llm"]
    assert provenance.reason is Reason.UNBUILDABLE and provenance.source is Source.SNAPSHOT
    assert "groq/llama-3.3-70b" in (provenance.detail or "")
    assert call.config.models.llm.value == "openai/gpt-4.1-mini"
    assert call.config.is_degraded and "models.llm" in call.config.degraded
    assert sample("livekit_fallback_fallbacks_total", **labels) == before + 1
    assert sample("livekit_fallback_degraded", vertical=VERTICAL, platform="livekit", component="models.llm") == 1
    [banner] = [r for r in caplog.records if "MODEL UNAVAILABLE" in r.getMessage()]
    text = banner.getMessage()
    assert "MODEL UNAVAILABLE: LLM MODEL 'groq/llama-3.3-70b'" in text and "DATABASE FAILURE" not in text
    assert "Missing: provider plugin: no plugin supported for provider 'groq'" in text
    assert "LiveKit Inference: LIVEKIT_API_KEY/LIVEKIT_API_SECRET" in text
    assert "Using fallback LLM model 'openai/gpt-4.1-mini' from snapshot taken 2025-11-21" in text
    assert banner.reason_class == "unbuildable" and banner.event == "model_unavailable"


async def test_a_database_without_the_rank_column_says_so_once_then_reads_models_as_before(
    seeded: SeededDatabase, db_resolver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Before the backup_rank migration: one ERROR naming it, that read's models fall back, then all from the DB."""
    import psycopg

    from tests.support.pg import apply_migrations

    with psycopg.connect(seeded.dsn) as conn:
        for table in ("livekit_available_stt_models", LLM_TABLE, "livekit_available_voices"):
            conn.execute(f"ALTER TABLE public.{table} DROP COLUMN backup_rank")
    try:
        with caplog.at_level(logging.ERROR, logger="livekit_fallback"):
            first = await db_resolver.resolve(VERTICAL, "livekit", fresh=True)
            second = await db_resolver.resolve(VERTICAL, "livekit", fresh=True)
    finally:
        apply_migrations(seeded.dsn)  # the migrations are idempotent: the column comes back for other tests
    assert first.provenance["models.llm"].source is not Source.DATABASE
    assert first.provenance["theme"].source is Source.DATABASE
    assert not second.is_degraded and second.models.llm.value == "openai/gpt-4.1"
    said = [r for r in caplog.records if "no backup_rank column" in r.getMessage()]
    assert len(said) == 1 and "20251201000000_model_backup_rank.sql" in said[0].getMessage()
