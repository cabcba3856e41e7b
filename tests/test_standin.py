"""The PostgREST stand-in, exercised with the real supabase clients."""

from __future__ import annotations

import time

import httpx
import pytest
from postgrest import APIError

from supabase import ClientOptions, create_client
from tests.support.clients import TEST_KEY, async_supabase
from tests.support.postgrest import Delay, Hang, Reset, Status
from tests.support.seed import MODEL_TABLES, seed_vertical

pytest_plugins = ["tests.support.fixtures"]

VERTICAL = "reverse_mortgage"
SNAPSHOT = {
    "schema_version": 1,
    "vertical": VERTICAL,
    "taken_at": "2025-11-21T00:00:00Z",
    "source": "test",
    "theme": {
        "identity": "You are Barbara.",
        "output_rules": "Be brief.",
        "conversational_flow": "Greet first.",
        "tools": "Use tools.",
        "guardrails": "No advice.",
    },
    "nodes": {
        name: {
            "role": f"{name} role",
            "instructions": f"Do {name}.",
            "valid_contexts": targets,
            "tools": ["mark_wrong_person"] if name == "greet" else [],
            "step_criteria_lk": "greeted == True",
            "step_criteria_sw": "The caller was greeted.",
        }
        for name, targets in [
            ("greet", ["verify", "answer"]),
            ("verify", ["qualify"]),
            ("qualify", ["goodbye"]),
            ("goodbye", []),
        ]
    },
    "models": {
        "livekit": {
            "stt": "deepgram/nova-3:multi",
            "llm": "openai/gpt-5",
            "tts": "elevenlabs/eleven_turbo_v2_5:EXAVITQu4vr4xnSDxMaL",
        },
        "signalwire": {"stt": "deepgram:nova-3", "llm": "gpt-4.1-mini", "tts": "elevenlabs.rachel"},
    },
}
POSTGREST_500 = b'{"code":"XX000","message":"internal error","details":null,"hint":null}'
INVALID_KEY = b'{"message":"Invalid API key","hint":"Double check your Supabase API key."}'


@pytest.fixture
def seeded(clean_dsn: str) -> str:
    """The session database holding SNAPSHOT."""
    seed_vertical(clean_dsn, SNAPSHOT)
    return clean_dsn


@pytest.fixture
async def client(standin, seeded):
    """A real async supabase client pointed at the seeded stand-in."""
    async with async_supabase(standin.url) as supabase:
        yield supabase


async def test_eq_filters_return_rows_with_json_types(client, standin):
    """Eq filters select the row; jsonb comes back as objects and booleans as booleans."""
    resp = await (
        client.table("theme_prompts").select("*").eq("vertical", VERTICAL).eq("is_active", True).limit(1).execute()
    )
    [row] = resp.data
    assert row["is_active"] is True
    assert row["content_structured"]["identity"] == "You are Barbara."
    assert row["content"].startswith("You are Barbara.\n\n# Output rules\n\nBe brief.")
    assert standin.requests[-1].path == (
        "/rest/v1/theme_prompts?select=%2A&vertical=eq.reverse_mortgage&is_active=eq.true&limit=1"
    )


async def test_view_and_json_arrows(client):
    """The active_node_prompts view serves node content; ->, ->> and alias:col work."""
    resp = await (
        client.table("active_node_prompts")
        .select("node_name, version_number, contexts:content->valid_contexts, content->>role")
        .eq("vertical", VERTICAL)
        .eq("node_name", "greet")
        .execute()
    )
    assert resp.data == [
        {"node_name": "greet", "version_number": 1, "contexts": ["verify", "answer"], "role": "greet role"}
    ]


async def test_seeded_snapshot_reads_back(client):
    """seed_vertical writes one active row per model table and functions == tools per node."""
    full_ids = {}
    for (platform, kind), table in MODEL_TABLES.items():
        column = "voice_id_full" if table.endswith("_voices") else "model_id_full"
        resp = await client.table(table).select(column).eq("is_active", True).execute()
        full_ids[(platform, kind)] = [row[column] for row in resp.data]
    stt = await client.table("livekit_available_stt_models").select("provider,model_name").execute()
    greet = await client.table("active_node_prompts").select("content").eq("node_name", "greet").single().execute()
    assert full_ids == {key: [SNAPSHOT["models"][key[0]][key[1]]] for key in MODEL_TABLES}
    assert stt.data == [{"provider": "deepgram", "model_name": "nova-3"}]
    assert greet.data["content"]["functions"] == greet.data["content"]["tools"] == ["mark_wrong_person"]


async def test_single_with_zero_rows_raises_pgrst116(client):
    """.single() over zero rows raises APIError PGRST116 (HTTP 406)."""
    with pytest.raises(APIError) as caught:
        await client.table("theme_prompts").select("*").eq("vertical", "nope").single().execute()
    assert caught.value.code == "PGRST116"
    assert caught.value.details == "The result contains 0 rows"


async def test_single_with_one_row_returns_object(client):
    """.single() over exactly one row returns that row as a dict."""
    resp = await client.table("theme_prompts").select("vertical").single().execute()
    assert resp.data == {"vertical": VERTICAL}


async def test_limit_order_and_in(client):
    """Limit caps the rows, order sorts them (desc), in_ matches any listed value."""
    limited = await client.table("prompts").select("node_name").limit(2).execute()
    ordered = await client.table("prompts").select("node_name").order("node_name", desc=True).execute()
    matched = await (
        client.table("prompts")
        .select("node_name")
        .in_("node_name", ["verify", "goodbye", "x,y"])
        .order("node_name")
        .execute()
    )
    assert len(limited.data) == 2
    assert [r["node_name"] for r in ordered.data] == ["verify", "qualify", "greet", "goodbye"]
    assert [r["node_name"] for r in matched.data] == ["goodbye", "verify"]


async def test_not_is_like_and_exact_count(client):
    """not./is/ilike filters work and count='exact' fills the response count."""
    resp = await (
        client.table("prompts")
        .select("node_name", count="exact")
        .not_.is_("current_version", "null")
        .ilike("node_name", "G*")
        .execute()
    )
    assert sorted(r["node_name"] for r in resp.data) == ["goodbye", "greet"]
    assert resp.count == 2


async def test_insert_upsert_update_delete_roundtrip(client):
    """Rows written through the client read back; upsert merges; update and delete filter."""
    table = client.table("signalwire_available_llm_models")
    inserted = await table.insert({"model_id_full": "gpt-x", "is_available": False}).execute()
    assert inserted.data[0]["is_available"] is False
    upserted = await table.upsert(
        [{"model_id_full": "gpt-x", "display_name": "X"}, {"model_id_full": "gpt-y", "display_name": "Y"}],
        on_conflict="model_id_full",
    ).execute()
    assert {r["display_name"] for r in upserted.data} == {"X", "Y"}
    updated = await table.update({"is_available": True}).eq("model_id_full", "gpt-x").execute()
    assert updated.data[0]["is_available"] is True
    deleted = await table.delete().in_("model_id_full", ["gpt-x", "gpt-y"]).execute()
    assert len(deleted.data) == 2
    left = await table.select("model_id_full").execute()
    assert left.data == [{"model_id_full": "gpt-4.1-mini"}]


async def test_database_errors_use_sqlstate_codes(client):
    """A missing table is 42P01, a bad uuid 22P02 and a duplicate key 23505."""
    codes = []
    for query in (
        client.table("missing").select("*"),
        client.table("prompts").select("*").eq("id", "not-a-uuid"),
        client.table("theme_prompts").insert({"vertical": VERTICAL, "content": "x"}),
    ):
        with pytest.raises(APIError) as caught:
            await query.execute()
        codes.append(caught.value.code)
    assert codes == ["42P01", "22P02", "23505"]


async def test_status_faults(client, standin):
    """Status faults: 500 -> code, 401 -> 'Invalid API key', 200 text -> str, object -> dict."""
    query = client.table("theme_prompts").select("*")
    standin.set_fault("theme_prompts", Status(500, POSTGREST_500))
    with pytest.raises(APIError) as server_error:
        await query.execute()
    standin.set_fault("theme_prompts", Status(401, INVALID_KEY))
    with pytest.raises(APIError) as bad_key:
        await query.execute()
    standin.set_fault("theme_prompts", Status(200, b"<html>portal</html>", "text/html"))
    text = await query.execute()
    standin.set_fault("theme_prompts", Status.json(200, {"not": "a list"}))
    obj = await query.execute()
    assert server_error.value.code == "XX000"
    assert (bad_key.value.code, bad_key.value.message) == (None, "Invalid API key")
    assert text.data == "<html>portal</html>"
    assert obj.data == {"not": "a list"}


async def test_fault_only_hits_its_table(client, standin):
    """A fault on one table leaves other tables served normally."""
    standin.set_fault("prompts", Status(503, b"{}"))
    resp = await client.table("theme_prompts").select("vertical").execute()
    assert resp.data == [{"vertical": VERTICAL}]


async def test_hang_fault_times_out(standin):
    """Hang: the client gives up with httpx.ReadTimeout after its own timeout."""
    standin.set_fault("*", Hang())
    async with async_supabase(standin.url, timeout=0.3) as short:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            await short.table("theme_prompts").select("*").execute()
    assert 0.25 < time.monotonic() - started < 1.5


async def test_reset_fault_is_transport_error(client, standin):
    """Reset: the connection is aborted without a response (httpx.TransportError)."""
    standin.set_fault("theme_prompts", Reset())
    with pytest.raises(httpx.TransportError):
        await client.table("theme_prompts").select("*").execute()


async def test_delay_fault_then_serves(client, standin):
    """Delay: the answer comes late but complete."""
    standin.set_fault("theme_prompts", Delay(0.2))
    started = time.monotonic()
    resp = await client.table("theme_prompts").select("vertical").execute()
    assert time.monotonic() - started >= 0.2
    assert resp.data == [{"vertical": VERTICAL}]


async def test_unsupported_grammar_is_400(client, standin):
    """or= and embedding are refused with 400 naming the feature, never silently ignored."""
    with pytest.raises(APIError) as caught:
        await client.table("prompts").select("*").or_("node_name.eq.greet,node_name.eq.verify").execute()
    assert "logical operators (or=)" in caught.value.message
    embedded = httpx.get(f"{standin.url}/rest/v1/prompts?select=id,prompt_versions(content)")
    assert embedded.status_code == 400
    assert "embedded" in embedded.json()["message"]


def test_sync_client_reads(standin, seeded):
    """The sync supabase client works against the stand-in too."""
    options = ClientOptions(postgrest_client_retry=False, postgrest_client_timeout=httpx.Timeout(2.0))
    client = create_client(standin.url, TEST_KEY, options)
    try:
        resp = client.table("livekit_available_voices").select("voice_id, model").execute()
    finally:
        client.postgrest.session.close()
    assert resp.data == [{"voice_id": "EXAVITQu4vr4xnSDxMaL", "model": "eleven_turbo_v2_5"}]
