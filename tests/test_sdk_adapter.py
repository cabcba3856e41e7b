"""The SignalWire Agents SDK adapter end to end: swaig-test from the repository root, and the test database.

``swaig-test`` runs as a separate process from the repository root, with no
database (snapshot mode) and with the seeded one. The database tests render
the SWML through the SDK's own app (in process) with a resolver reading the
real test database through the real supabase client.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from livekit_fallback import Resolver, Source, SupabaseSource
from livekit_fallback.config.sources.snapshot import SnapshotSource
from swaig_fallback import HANGUP_FUNCTION, ResolvedAgent

from .conftest import DB_MARKER, DB_MODELS, SeededDatabase, shipped_snapshot
from .support.postgrest import Hang
from .swaig_helpers import swml_errors
from .unit.test_sdk_adapter import CALL, TOOLS, _reference_swml, _structure, ai_verb_of

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = "examples/signalwire_agent.py"
AUTH = ("sw-user", "sw-pass")
DEADLINE = 0.5
MARGIN = 0.5


def _swaig_test(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the SDK's swaig-test from the repository root (no SUPABASE_* unless given)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE_")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [base.get("PYTHONPATH")])])
    script = Path(sys.executable).with_name("swaig-test")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "signalwire.cli.test_swaig"]
    return subprocess.run(
        [*command, EXAMPLE, *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_swaig_test_dumps_the_snapshot_swml_from_the_repository_root() -> None:
    """swaig-test --dump-swml --raw prints only the SWML, structurally build_swml's, with no database configured."""
    result = _swaig_test("--dump-swml", "--raw")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert swml_errors(doc) == []
    reference = await _reference_swml()
    # swaig-test posts a made-up caller, so the caller-dependent parts are compared separately.
    for verb in (ai_verb_of(doc), ai_verb_of(reference)):
        verb.pop("global_data")
        for context in verb["prompt"]["contexts"].values():
            for step in context["steps"]:
                step["text"] = step["text"].split("\n\n# Call context")[0]
    assert _structure(doc) == _structure(reference)
    assert "snapshot mode" in result.stderr


def test_swaig_test_runs_tools() -> None:
    """swaig-test --exec runs an example tool and the hangup function through the adapter."""
    result = _swaig_test("--exec", "search_knowledge", "--query", "what fees are there")
    assert result.returncode == 0, result.stderr
    assert "RESULT:" in result.stdout and "fees" in result.stdout.lower()
    hangup = _swaig_test("--exec", HANGUP_FUNCTION)
    assert hangup.returncode == 0, hangup.stderr
    assert '"hangup": true' in hangup.stdout and "Post-process: True" in hangup.stdout


def test_swaig_test_dumps_the_database_swml(seeded: SeededDatabase) -> None:
    """With the database configured, swaig-test prints SWML built from the database's prompts and models."""
    result = _swaig_test("--dump-swml", "--raw", env={"SUPABASE_URL": seeded.url, "SUPABASE_SERVICE_KEY": seeded.key})
    assert result.returncode == 0, result.stderr
    ai = ai_verb_of(json.loads(result.stdout))
    assert DB_MARKER in ai["prompt"]["text"]
    assert all(DB_MARKER in c["steps"][0]["text"] for c in ai["prompt"]["contexts"].values())
    assert ai["params"]["ai_model"] == DB_MODELS["signalwire"]["llm"]
    assert ai["languages"][0]["voice"] == DB_MODELS["signalwire"]["tts"]


def _agent(seeded: SeededDatabase) -> ResolvedAgent:
    def resolver() -> Resolver:
        return Resolver(
            database=SupabaseSource(seeded.url, seeded.key),
            snapshots=SnapshotSource(),
            cool_down=0.3,
            deadline=DEADLINE,
        )

    registry = TOOLS.build_registry()
    return ResolvedAgent(registry=registry, resolver=resolver, call_state=TOOLS.call_state, basic_auth=AUTH)


@pytest.fixture
def db_agent(seeded: SeededDatabase) -> Iterator[ResolvedAgent]:
    """The example's agent resolving from the seeded test database (deadline 0.5 s)."""
    agent = _agent(seeded)
    try:
        yield agent
    finally:
        agent.close()


def _render(agent: ResolvedAgent) -> tuple[dict[str, Any], float]:
    client = TestClient(agent.get_app())
    started = time.perf_counter()
    response = client.post("/", json=CALL, auth=AUTH)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return response.json(), elapsed


def test_healthy_database_gives_every_component(db_agent: ResolvedAgent) -> None:
    """With a healthy database every component of the SDK's SWML comes from the database."""
    doc, _ = _render(db_agent)
    ai = ai_verb_of(doc)
    assert DB_MARKER in ai["prompt"]["text"]
    assert all(DB_MARKER in c["steps"][0]["text"] for c in ai["prompt"]["contexts"].values())
    assert ai["params"] == {
        "ai_model": DB_MODELS["signalwire"]["llm"],
        "openai_asr_engine": DB_MODELS["signalwire"]["stt"],
    }
    assert ai["languages"][0]["voice"] == DB_MODELS["signalwire"]["tts"]
    provenance = db_agent.resolve().provenance
    assert {p.source for p in provenance.values()} == {Source.DATABASE}
    assert swml_errors(doc) == []


def test_hanging_database_serves_fallback_swml_within_the_deadline(
    seeded: SeededDatabase, db_agent: ResolvedAgent, caplog: pytest.LogCaptureFixture
) -> None:
    """A hanging database: the SDK's SWML comes from the snapshots within the deadline, with the banners."""
    caplog.set_level(logging.WARNING, logger="livekit_fallback")
    seeded.standin.set_fault("*", Hang())
    doc, elapsed = _render(db_agent)
    assert elapsed < DEADLINE + MARGIN
    ai = ai_verb_of(doc)
    assert DB_MARKER not in json.dumps(ai["prompt"])
    assert ai["params"]["ai_model"] == shipped_snapshot()["models"]["signalwire"]["llm"]
    banners = [r for r in caplog.records if getattr(r, "event", None) == "config_fallback"]
    components = {r.component for r in banners}
    assert "theme" in components and "models.llm" in components
    assert {f"nodes.{name}" for name in shipped_snapshot()["nodes"]} <= components
    assert all("DATABASE" in r.getMessage() for r in banners)
    assert swml_errors(doc) == []
