"""Reading the real database through the real supabase client and the PostgREST stand-in."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

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
    """One request per table group, five in all, with exactly these URLs (a client upgrade changing them fails)."""
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


def _cli_json(seeded: SeededDatabase, tmp_path, *extra: str, **variables: str) -> tuple[dict, str, float]:  # noqa: ANN001
    import json
    import os
    import subprocess
    import sys
    import time

    env = {
        **os.environ,
        "SUPABASE_URL": seeded.url,
        "SUPABASE_SERVICE_KEY": seeded.key,
        "LIVEKIT_FALLBACK_CACHE_DIR": str(tmp_path),
        **variables,
    }
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "livekit_fallback.cli", "resolve", "--vertical", "reverse_mortgage", "--json", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr, time.perf_counter() - started


def _sources(data: dict) -> set[tuple[str, str | None]]:
    components = [data["theme"], *data["nodes"].values(), *data["models"].values()]
    return {(c["source"], c["reason"]) for c in components}


def test_cli_reads_everything_from_a_healthy_database(seeded: SeededDatabase, tmp_path) -> None:  # noqa: ANN001
    """`resolve --json` against the database reports every component as database with a null reason."""
    data, stderr, _ = _cli_json(seeded, tmp_path)
    assert _sources(data) == {("database", None)}
    assert data["models"]["llm"]["value"] == DB_MODELS["livekit"]["llm"] and data["degraded"] is False
    assert "DATABASE FAILURE" not in stderr and seeded.key not in stderr


@pytest.mark.parametrize("callers", [False, True], ids=["deployment-deadline", "shorter-caller-deadline"])
def test_cli_returns_within_the_deadline_when_the_database_hangs(
    seeded: SeededDatabase, tmp_path, callers: bool
) -> None:  # noqa: ANN001
    """With every request hanging, `resolve` answers from the snapshot within its deadline.

    With the deployment's own deadline the hang is bannered; with a shorter
    one chosen on the command line the read did not get the database's time:
    one stall line, no banner.
    """
    from .support.postgrest import Hang

    seeded.standin.set_fault("*", Hang())
    if callers:
        data, stderr, _ = _cli_json(seeded, tmp_path, "--deadline", "0.5")
    else:
        data, stderr, _ = _cli_json(seeded, tmp_path, LIVEKIT_FALLBACK_DEADLINE="0.5")
    assert _sources(data) == {("snapshot", "timeout")}
    assert data["elapsed_ms"] < 500 + 150
    if callers:
        assert "DATABASE FAILURE" not in stderr and stderr.count("RESOLUTION STALLED") == 1, stderr[-2000:]
    else:
        assert stderr.count("DATABASE FAILURE") == 13 and "DATABASE CONNECTION UNREACHABLE" in stderr


@pytest.mark.parametrize("healthy", [True, False])
def test_cli_status_reports_reachability_truthfully(seeded: SeededDatabase, tmp_path, healthy: bool) -> None:  # noqa: ANN001
    """`status` says ok and exits 0 against a healthy database; degraded, unreachable and 3 when it is down."""
    import json
    import os
    import subprocess
    import sys

    url = seeded.url if healthy else "http://127.0.0.1:1"
    env = {
        **os.environ,
        "SUPABASE_URL": url,
        "SUPABASE_SERVICE_KEY": seeded.key,
        "LIVEKIT_FALLBACK_CACHE_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "livekit_fallback.cli", "status", "--vertical", "reverse_mortgage"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    report = json.loads(result.stdout)
    assert result.returncode == (0 if healthy else 3)
    assert report["status"] == ("ok" if healthy else "degraded")
    assert report["database"]["reachable"] is healthy and report["database"]["since"]
    components = report["degraded"]["reverse_mortgage/livekit"]
    assert components == {} if healthy else len(components) == 13
    if not healthy:
        assert "ConnectError" in report["database"]["last_error"] and seeded.key not in result.stdout
