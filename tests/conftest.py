"""Shared fixtures: a real PostgreSQL with the schema, the PostgREST stand-in, seeded data.

The database copy of the configuration deliberately differs from the shipped
snapshot (models, and a marker in every prompt), so a test can tell from the
value alone which source a component came from.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from livekit_fallback import Resolver, SnapshotSource, SupabaseSource
from livekit_fallback.config.sources.snapshot import default_snapshot_dir
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.sqlite import SqliteStorage
from livekit_fallback.config.state.state import forget_process_state
from livekit_fallback.config.state.storage import StateStorage

from .support.postgrest import PostgrestStandIn
from .support.seed import reset_database, seed_vertical

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytest_plugins = ["tests.support.fixtures"]

VERTICAL = "reverse_mortgage"
TEST_KEY = "test-service-key-not-a-secret"
DB_MARKER = "(database copy)"
DB_MODELS = {
    "livekit": {
        "stt": "deepgram/nova-3:en",
        "llm": "openai/gpt-4.1",
        "tts": "elevenlabs/eleven_flash_v2_5:21m00Tcm4TlvDq8ikWAM",
    },
    "signalwire": {"stt": "deepgram:nova-2", "llm": "gpt-4.1-nano", "tts": "elevenlabs.josh"},
}
"""Active models in the seeded database; all differ from the snapshot's."""


def shipped_snapshot() -> dict[str, Any]:
    """The parsed shipped snapshot file."""
    with open(default_snapshot_dir() / f"{VERTICAL}.toml", "rb") as fh:
        return tomllib.load(fh)


def database_copy() -> dict[str, Any]:
    """The snapshot with every prompt marked and every model changed: what the database holds."""
    data = copy.deepcopy(shipped_snapshot())
    data["theme"]["identity"] += f" {DB_MARKER}"
    for node in data["nodes"].values():
        node["instructions"] += f" {DB_MARKER}"
    data["models"] = copy.deepcopy(DB_MODELS)
    return data


@dataclass(frozen=True)
class SeededDatabase:
    """The seeded test database and how to reach it.

    Attributes:
        dsn: Direct PostgreSQL URL (for test mutations).
        url: SUPABASE_URL of the PostgREST stand-in.
        key: The key the client sends.
        standin: The stand-in (for faults and recorded requests).
    """

    dsn: str
    url: str
    key: str
    standin: PostgrestStandIn


@pytest.fixture
def seeded(database_dsn: str, standin: PostgrestStandIn) -> SeededDatabase:
    """The database reset and holding :func:`database_copy` for the reverse_mortgage vertical."""
    reset_database(database_dsn)
    seed_vertical(database_dsn, database_copy())
    return SeededDatabase(dsn=database_dsn, url=standin.url, key=TEST_KEY, standin=standin)


STORAGES = ("sqlite", "memory")
"""The two storages of the resolution state; the machine-wide file is the default."""


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> StateStorage:
    """Each storage of the resolution state in turn: the machine's SQLite file (default), then memory."""
    if request.param == "sqlite":
        return SqliteStorage(tmp_path_factory.mktemp("state"))
    return MemoryStorage()


@pytest.fixture(params=STORAGES)
def each_storage(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test once per storage, chosen as users choose it (``LIVEKIT_FALLBACK_SHARED_STATE``)."""
    monkeypatch.setenv("LIVEKIT_FALLBACK_SHARED_STATE", "1" if request.param == "sqlite" else "0")
    return str(request.param)


@pytest.fixture
async def db_resolver(seeded: SeededDatabase) -> AsyncIterator[Resolver]:
    """A resolver as production builds one (machine-wide state), over the seeded database (cool-down 0.3 s)."""
    async with Resolver(
        database=SupabaseSource(seeded.url, seeded.key), snapshots=SnapshotSource(), cool_down=0.3
    ) as resolver:
        yield resolver


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own cache directory and an empty process memory: no state leaks between tests."""
    monkeypatch.setenv("LIVEKIT_FALLBACK_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    forget_process_state()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No SUPABASE_* or LIVEKIT_FALLBACK_* variables leak in from the developer's shell.

    The test's own cache directory (set for every test) stays.
    """
    import os

    for name in list(os.environ):
        if name.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_")) and name != "LIVEKIT_FALLBACK_CACHE_DIR":
            monkeypatch.delenv(name)
    yield
