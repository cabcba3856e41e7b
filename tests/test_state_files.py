"""The last-known-good copy survives the state file's troubles: real processes, one cache directory.

The case every Dockerfile meets: ``download-files`` (or a first call) runs as
root and creates the state file; the worker runs as another user.
"""

from __future__ import annotations

import asyncio
import io
import logging
import multiprocessing
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from livekit_fallback import Resolver, SupabaseSource

from .conftest import DB_MODELS, SeededDatabase
from .support.proxy import FaultProxy
from .test_pickups import CALL, _env, _run

pytestmark = pytest.mark.integration

as_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as two users")

STATE_FILE = "state.sqlite3"


@pytest.fixture
def cache_dir() -> Iterator[Path]:
    """A cache directory other users can reach (pytest's own temporary tree is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="lkfb-cache-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _as_nobody(env: dict[str, str]) -> tuple[dict[str, object], str]:
    """One call in a process of the user ``nobody``, with ``env``; its result and its log.

    The process is a fork of this one, so it runs with every module already
    imported: ``nobody`` may not read the interpreter's site-packages (they can
    live in root's home), and a call needs no import it has not done here.
    """
    _import_the_database_client()
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_call_as_nobody, args=(env, sender))
    process.start()
    sender.close()
    try:
        if not receiver.poll(60):
            raise AssertionError("the call as nobody did not answer within 60 s")
        result, log = receiver.recv()
    finally:
        process.join(10)
        if process.is_alive():
            process.kill()
    assert result is not None, log[-3000:]
    return result, log


def _import_the_database_client() -> None:
    """Build a database client once in this process: every module a read imports is then loaded."""
    source = SupabaseSource("http://127.0.0.1:9", "key-for-imports-only")
    asyncio.run(source.prepare())


def _call_as_nobody(env: dict[str, str], sender: Any) -> None:
    """In the forked process: become ``nobody``, resolve once, send ``(result, log)``."""
    stream = io.StringIO()
    result: dict[str, object] | None = None
    try:
        nobody = pwd.getpwnam("nobody")
        os.setgroups([])
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
        os.chdir("/")
        os.environ.clear()
        os.environ.update(env)
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        package = logging.getLogger("livekit_fallback")
        package.handlers[:] = [handler]
        package.setLevel(logging.INFO)
        package.propagate = False

        async def call() -> dict[str, object]:
            async with Resolver.from_settings() as resolver:
                started = time.perf_counter()
                config = await resolver.resolve("reverse_mortgage")
                seconds = time.perf_counter() - started
            sources = sorted({p.source.value for p in config.provenance.values()})
            return {"seconds": seconds, "llm": config.models.llm.value, "sources": sources}

        result = asyncio.run(call())
    except BaseException:
        stream.write(traceback.format_exc())
    finally:
        sender.send((result, stream.getvalue()))
        sender.close()
        os._exit(0)


@as_root
def test_a_store_created_by_root_still_serves_its_copy_to_another_user(
    seeded: SeededDatabase, fault_proxy: FaultProxy, cache_dir: Path
) -> None:
    """Root made the directory and the file; a worker running as nobody during an outage gets the copy, one line."""
    env = _env(fault_proxy.url, seeded.key, cache_dir, LIVEKIT_FALLBACK_TTL="0.2")
    first, _ = _run(CALL, env)
    assert first["sources"] == ["database"]
    assert (cache_dir / STATE_FILE).stat().st_uid == 0
    fault_proxy.set_mode("hang")
    result, log = _as_nobody(env)
    assert result["llm"] == DB_MODELS["livekit"]["llm"], "the copy in the read-only file is served"
    assert result["sources"] == ["last_known_good"], result
    assert log.count("MACHINE-WIDE STATE UNAVAILABLE") == 1 and "chown -R" in log, log[-3000:]
    assert "Traceback" not in log


@as_root
def test_a_store_root_creates_in_the_workers_directory_is_the_workers(seeded: SeededDatabase, cache_dir: Path) -> None:
    """The directory belongs to the worker's user; root's first run leaves a file that user can write."""
    nobody = pwd.getpwnam("nobody")
    os.chown(cache_dir, nobody.pw_uid, nobody.pw_gid)
    env = _env(seeded.url, seeded.key, cache_dir)
    first, _ = _run(CALL, env)
    assert first["sources"] == ["database"]
    assert (cache_dir / STATE_FILE).stat().st_uid == nobody.pw_uid
    result, log = _as_nobody(env)
    assert result["sources"] == ["database"]
    assert "MACHINE-WIDE STATE" not in log, log[-3000:]


def test_a_held_lock_during_an_outage_keeps_calls_within_the_deadline_and_on_the_copy(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Another process holds the write lock while the database hangs: calls stay within the deadline, on the copy."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="0.2")
    first, _ = _run(CALL, env)
    assert first["sources"] == ["database"]
    fault_proxy.set_mode("hang")
    holder = sqlite3.connect(tmp_path / STATE_FILE, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        results = [_run(CALL, env)[0] for _ in range(5)]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    seconds = [float(str(r["seconds"])) for r in results]
    assert max(seconds) < 1.0 + 0.25, seconds  # the client is built before the deadline starts
    assert all(r["llm"] == DB_MODELS["livekit"]["llm"] for r in results), results


SERVER = r"""
import asyncio, json, logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from livekit_fallback import Resolver

async def main():
    async with Resolver.from_settings() as resolver:
        await resolver.resolve("reverse_mortgage")
        print("ready", flush=True)
        ended = time.monotonic() + float(sys.argv[1])
        while time.monotonic() < ended:
            await resolver.resolve("reverse_mortgage")
            await asyncio.sleep(0.2)

asyncio.run(main())
"""


def _truncate(path: Path) -> None:
    os.truncate(path, 0)


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("change", [_truncate, _remove], ids=["truncated", "removed"])
def test_a_running_server_notices_a_damaged_or_removed_file_once_and_shares_the_new_one(
    seeded: SeededDatabase, tmp_path: Path, change: object
) -> None:
    """A file truncated or removed under a running server: one line from it; new processes keep sharing state."""
    env = _env(seeded.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="0.5")
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, "6"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        change(tmp_path / STATE_FILE)  # type: ignore[operator]
        results, logs = [], []
        for _ in range(4):
            result, log = _run(CALL, env)
            results.append(result)
            logs.append(log)
        _, server_log = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert all(r["sources"] == ["database"] for r in results), results
    assert "".join(logs).count("MACHINE-WIDE STATE UNAVAILABLE") == 0, "".join(logs)[-3000:]
    assert server_log.count("MACHINE-WIDE STATE FILE") == 1, server_log[-3000:]
    assert "UNAVAILABLE" not in server_log and "locked" not in server_log, server_log[-3000:]
