"""SWAIG function calls do not wait on config resolution during a database hang.

A function call needs the config only to check a move against the node
graph; the server routes with the config it holds when a new resolution is
not quick.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from livekit_fallback.config.resolver import Resolver
from livekit_fallback.config.sources.snapshot import SnapshotSource
from livekit_fallback.config.sources.supabase import SupabaseSource
from livekit_fallback.config.state.sqlite import SqliteStorage
from tests.support.postgrest import Hang
from tests.swaig_helpers import build_registry
from tests.test_swaig_server import documented_payload, serving

pytestmark = pytest.mark.integration


async def test_function_calls_answer_at_once_while_the_database_hangs(seeded, tmp_path: Path) -> None:
    """With a config held from /swml, 5 function calls during a hang each answer well inside the deadline."""
    resolver = Resolver(
        database=SupabaseSource(seeded.url, seeded.key),
        snapshots=SnapshotSource(),
        ttl=0,  # every resolution reads the database: the case where a call would wait the deadline
        deadline=1.0,
        state=SqliteStorage(tmp_path),
    )
    async with resolver, serving(resolver, build_registry()) as srv:
        status, _, _ = await srv.get("/swml")
        assert status == 200
        seeded.standin.set_fault("*", Hang())
        waits = []
        for _ in range(5):
            started = time.monotonic()
            status, body, _ = await srv.post("/swaig", documented_payload("search_knowledge", {"query": "fees"}))
            waits.append(time.monotonic() - started)
            assert status == 200 and "response" in body
        seeded.standin.clear_faults()
    assert max(waits) < 0.3, waits
