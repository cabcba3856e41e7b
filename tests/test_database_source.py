"""Reading the real database through the real supabase client and the PostgREST stand-in."""

from __future__ import annotations

from urllib.parse import unquote

from livekit_fallback import Resolver, Source

from .conftest import DB_MARKER, DB_MODELS, SeededDatabase


async def test_healthy_database_serves_every_component(db_resolver: Resolver, seeded: SeededDatabase) -> None:
    """With a healthy database every component comes from it, with no reason."""
    config = await db_resolver.resolve("reverse_mortgage", "livekit")
    assert {p.source for p in config.provenance.values()} == {Source.DATABASE}
    assert all(p.reason is None for p in config.provenance.values())
    assert DB_MARKER in config.theme.text and "# Guardrails" in config.theme.text
    assert all(DB_MARKER in node.instructions for node in config.nodes.values())
    assert config.models.llm.value == DB_MODELS["livekit"]["llm"]
    assert config.models.tts.variant == "21m00Tcm4TlvDq8ikWAM"
    assert not config.is_degraded


async def test_queries_are_pinned(db_resolver: Resolver, seeded: SeededDatabase) -> None:
    """One request per table group, five in all, with exactly these URLs (a client upgrade that changes them fails here)."""
    await db_resolver.resolve("reverse_mortgage", "signalwire")
    paths = sorted(unquote(r.path) for r in seeded.standin.requests)
    assert paths == sorted(
        [
            "/rest/v1/theme_prompts?select=vertical,content,content_structured"
            "&vertical=eq.reverse_mortgage&is_active=eq.true&limit=2",
            "/rest/v1/active_node_prompts?select=node_name,version_number,content&vertical=eq.reverse_mortgage"
            "&node_name=in.(answer,book,end,goodbye,greet,objections,qualify,quote,verify)&order=node_name.asc",
            "/rest/v1/signalwire_available_stt_models?select=model_id_full&is_active=eq.true&limit=2",
            "/rest/v1/signalwire_available_llm_models?select=model_id_full&is_active=eq.true&limit=2",
            "/rest/v1/signalwire_available_voices?select=voice_id_full&is_active=eq.true&limit=2",
        ]
    )
    headers = {k.lower(): v for k, v in seeded.standin.requests[0].headers.items()}
    assert headers["apikey"] == seeded.key and headers["authorization"] == f"Bearer {seeded.key}"
