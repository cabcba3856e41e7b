"""The machine's SQLite file: schema v2 keyed by deployment, old files dropped, unusable files survived."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from livekit_fallback import Resolver, SnapshotSource
from livekit_fallback.config.state import sqlite as sqlite_module
from livekit_fallback.config.state.policy import Verdict
from livekit_fallback.config.state.sqlite import STATE_FILE, SqliteStorage
from livekit_fallback.config.state.state import ResolutionState, process_memory
from livekit_fallback.errors import StoreUnavailable

from .conftest import DEPLOYMENT, POLICY
from .fakes import DB_LLM, VERTICAL, FakeClock, FakeDatabase

pytestmark = pytest.mark.unit

V, P = VERTICAL, "livekit"

_V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE configs (vertical TEXT NOT NULL, platform TEXT NOT NULL, payload TEXT NOT NULL,
    read_at REAL NOT NULL, degraded INTEGER NOT NULL, PRIMARY KEY (vertical, platform));
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL);
CREATE TABLE breaker (name TEXT PRIMARY KEY, state TEXT NOT NULL, failures INTEGER NOT NULL,
    opened_at REAL, last_error TEXT);
CREATE TABLE last_known_good (vertical TEXT NOT NULL, platform TEXT NOT NULL, component TEXT NOT NULL,
    value TEXT NOT NULL, read_at TEXT NOT NULL, PRIMARY KEY (vertical, platform, component));
CREATE TABLE notices (key TEXT PRIMARY KEY, at REAL NOT NULL);
INSERT INTO meta VALUES ('schema', '1');
INSERT INTO configs VALUES ('reverse_mortgage', 'livekit', '{"someone": "else"}', 1e12, 0);
INSERT INTO breaker VALUES ('database', 'open', 3, 1e12, 'old');
INSERT INTO last_known_good VALUES ('reverse_mortgage', 'livekit', 'theme', '"other"', '2026-01-01T00:00:00');
INSERT INTO notices VALUES ('x', 1.0);
"""


def _events(caplog: pytest.LogCaptureFixture, prefix: str) -> list[str]:
    return [r.event for r in caplog.records if str(getattr(r, "event", "")).startswith(prefix)]  # type: ignore[attr-defined]


async def test_a_file_of_the_previous_version_is_dropped_once_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows that cannot say which database they came from are never served: dropped, said once."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    old = sqlite3.connect(tmp_path / STATE_FILE)
    old.executescript(_V1_SCHEMA)
    old.close()
    for _ in range(2):
        storage = SqliteStorage(tmp_path)
        state = ResolutionState(storage, DEPLOYMENT, POLICY)
        assert await state.config(V, P) is None and await state.last_known_good(V, P) == {}
        assert (await state.breaker()).state == "closed"
        storage.close()
    assert _events(caplog, "store_") == ["store_migrated"]
    tables = {row[0] for row in sqlite3.connect(tmp_path / STATE_FILE).execute("SELECT name FROM sqlite_master")}
    assert "notices" not in tables and "configs" in tables


def _directory_at_the_path(directory: Path) -> Path:
    (directory / STATE_FILE).mkdir()
    return directory


def _corrupt(directory: Path) -> Path:
    (directory / STATE_FILE).write_bytes(b"this is not a database" * 100)
    return directory


def _fifo(directory: Path) -> Path:
    os.mkfifo(directory / STATE_FILE)
    return directory


def _not_a_directory(directory: Path) -> Path:
    (directory / "file").write_text("x")
    return directory / "file"


def _read_only_directory(directory: Path) -> Path:
    if os.geteuid() == 0:  # root writes anywhere on a normal file system; no process creates files here
        return Path("/proc/self")
    directory.chmod(0o555)
    return directory


UNUSABLE: list[tuple[Callable[[Path], Path], str]] = [
    (_directory_at_the_path, "not a regular file"),
    (_corrupt, "not a database"),
    (_fifo, "not a regular file"),
    (_not_a_directory, "Not a directory"),
    (_read_only_directory, "unable to open database file|Permission denied|readonly"),
]


@pytest.mark.parametrize(
    ("break_it", "expected"), UNUSABLE, ids=["directory", "corrupt", "fifo", "not-a-directory", "read-only"]
)
async def test_an_unusable_file_is_said_once_and_the_state_continues_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, break_it: Callable[[Path], Path], expected: str
) -> None:
    """StoreUnavailable fast, one loud line naming the problem, and the same rules running over memory."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    storage = SqliteStorage(break_it(tmp_path), op_timeout=0.5)
    try:
        for _ in range(2):
            with pytest.raises(StoreUnavailable, match=expected):
                await storage.run(DEPLOYMENT, lambda tx: tx.breaker())
        assert not storage.usable and storage.problem is not None
        state = ResolutionState(storage, DEPLOYMENT, POLICY, clock=FakeClock())
        plan = await state.plan(V, P, holder=state.new_holder())
        await state.finish(V, P, holder=plan.holder, payload="{}", degraded=False, verdict=Verdict(True), probe=False)
        assert (await state.plan(V, P, holder=state.new_holder())).cache == "hit"
        assert state.in_use is process_memory()
        assert process_memory().run_now(DEPLOYMENT, lambda tx: tx.config(V, P)) is not None
    finally:
        tmp_path.chmod(0o755)
        storage.close()
    lines = [r for r in caplog.records if getattr(r, "event", None) == "store_unavailable"]
    assert len(lines) == 1 and "MACHINE-WIDE STATE UNAVAILABLE" in lines[0].getMessage()


async def test_a_repaired_file_is_used_again_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the broken file is gone and the retry time has passed, the file is used again, with one line."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    monkeypatch.setattr(sqlite_module, "RETRY_AFTER", 0.0)
    (tmp_path / STATE_FILE).mkdir()
    storage = SqliteStorage(tmp_path, op_timeout=0.5)
    with pytest.raises(StoreUnavailable):
        await storage.run(DEPLOYMENT, lambda tx: tx.breaker())
    (tmp_path / STATE_FILE).rmdir()
    assert (await storage.run(DEPLOYMENT, lambda tx: tx.breaker())).state == "closed"
    await storage.run(DEPLOYMENT, lambda tx: tx.breaker())
    storage.close()
    assert storage.problem is None and _events(caplog, "store_") == ["store_unavailable", "store_restored"]


async def test_a_lock_held_past_the_limit_is_a_timeout_not_a_hang(tmp_path: Path) -> None:
    """Another process holding the write lock makes an operation give up within op_timeout."""
    storage = SqliteStorage(tmp_path, op_timeout=0.2)
    await storage.run(DEPLOYMENT, lambda tx: tx.breaker())
    holder = sqlite3.connect(tmp_path / STATE_FILE, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        loop_time = asyncio.get_running_loop().time
        started = loop_time()
        with pytest.raises(StoreUnavailable):
            await storage.run(DEPLOYMENT, lambda tx: tx.breaker())
        assert loop_time() - started < 0.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        storage.close()


async def test_a_resolver_on_an_unusable_file_still_reads_the_database_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a corrupt state file calls are answered from the database, reused from memory, and the file named once."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    _corrupt(tmp_path)
    database = FakeDatabase()
    storage = SqliteStorage(tmp_path, op_timeout=0.5)
    async with Resolver(database=database, snapshots=SnapshotSource(), state=storage, deadline=0.5) as resolver:
        configs = [await resolver.resolve(V) for _ in range(3)]
    storage.close()
    assert all(c.models.llm.value == DB_LLM for c in configs) and len(database.reads) == 1
    assert _events(caplog, "store_") == ["store_unavailable"]


async def test_an_empty_file_has_no_rows(tmp_path: Path) -> None:
    """A new file holds no deployment until one resolves."""
    storage = SqliteStorage(tmp_path)
    assert await storage.rows(10) == []
    storage.close()


async def test_a_held_lock_is_slowness_counted_not_an_unusable_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding the write lock: one wait in the limit, then memory for a moment; counted, no banner."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    monkeypatch.setattr(sqlite_module, "SLOW_BACKOFF", 0.3)
    storage = SqliteStorage(tmp_path, op_timeout=0.1)
    state = ResolutionState(storage, DEPLOYMENT, POLICY, clock=FakeClock())
    assert await state.config(V, P) is None  # the file exists, with its schema
    holder = sqlite3.connect(tmp_path / STATE_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    loop = asyncio.get_running_loop()
    try:
        for _ in range(2):
            started = loop.time()
            with pytest.raises(StoreUnavailable):
                await storage.run(DEPLOYMENT, lambda tx: tx.breaker())
            assert loop.time() - started < 0.3
            started = loop.time()
            assert (await state.breaker()).state == "closed"  # memory, at once
            assert loop.time() - started < 0.05 and not storage.usable
            await asyncio.sleep(0.35)
        assert storage.usable and storage.problem is None and storage.slow_operations == 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        storage.close()
    assert _events(caplog, "store_") == ["store_slow"]


def _remove(path: Path) -> None:
    path.unlink()


def _truncate(path: Path) -> None:
    os.truncate(path, 0)


def _replace(path: Path) -> None:
    other = path.with_name("other.sqlite3")
    sqlite3.connect(other).execute("CREATE TABLE unrelated (x)").connection.commit()
    os.replace(other, path)


@pytest.mark.parametrize("change", [_remove, _truncate, _replace], ids=["removed", "truncated", "replaced"])
async def test_a_running_process_notices_its_file_changed_says_so_once_and_reopens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, change: Callable[[Path], None]
) -> None:
    """A file removed, truncated or replaced under a running server: one line, then the file in place is used."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    storage = SqliteStorage(tmp_path, op_timeout=2.0)
    state = ResolutionState(storage, DEPLOYMENT, POLICY, clock=FakeClock())
    try:
        await state.store_last_known_good(V, P, {"theme": ('"x"', "2026-01-01T00:00:00+00:00")})
        change(tmp_path / STATE_FILE)
        for _ in range(3):
            assert (await storage.run(DEPLOYMENT, lambda tx: tx.breaker())).state == "closed"
        assert storage.usable and storage.problem is None
        other = SqliteStorage(tmp_path, op_timeout=2.0)  # a new process opens the same file and sees this one's rows
        await storage.run(DEPLOYMENT, lambda tx: tx.put_lease("probe", "me", 1e12))
        assert await other.run(DEPLOYMENT, lambda tx: tx.lease("probe")) == ("me", 1e12)
        other.close()
    finally:
        storage.close()
    assert _events(caplog, "store_") == ["store_reopened"]
