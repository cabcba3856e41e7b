"""One outage, one wait, one alarm per machine: real call processes sharing one cache directory.

Each "call" is a fresh Python process (as LiveKit runs each job), resolving
through ``Resolver.from_settings`` against the test database behind the fault
proxy, with every process pointing at the same cache directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from livekit_fallback.config.machine_status import read_machine_status
from livekit_fallback.config.state.sqlite import SqliteStorage
from tests.conftest import DB_MODELS, SeededDatabase
from tests.support.proxy import FaultProxy
from tests.support.seed import set_active_model

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
CALL = r"""
import asyncio, json, logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from livekit_fallback import Resolver

async def main():
    async with Resolver.from_settings() as resolver:
        if resolver.database is not None:
            await resolver.database.prepare()  # the job's prewarm: imports and TLS before the call arrives
        started = time.perf_counter()
        config = await resolver.resolve("reverse_mortgage")
        seconds = time.perf_counter() - started
    reasons = sorted({p.reason.value for p in config.provenance.values() if p.reason})
    sources = sorted({p.source.value for p in config.provenance.values()})
    print(json.dumps({"seconds": seconds, "llm": config.models.llm.value, "reasons": reasons, "sources": sources}))

asyncio.run(main())
"""
BANNER = "🚨🚨🚨 DATABASE FAILURE"
COMPONENTS = 13  # theme, nine nodes, three models


def _env(url: str, key: str, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_"))}
    env.update(
        SUPABASE_URL=url,
        SUPABASE_SERVICE_KEY=key,
        LIVEKIT_FALLBACK_CACHE_DIR=str(cache),
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.setdefault("LIVEKIT_FALLBACK_DEADLINE", "1.0")
    env.update(extra)
    return env


def _call(env: dict[str, str]) -> tuple[dict[str, Any], str]:
    done = subprocess.run([sys.executable, "-c", CALL], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _breaker(cache: Path, url: str) -> tuple[str, int]:
    """The breaker of the deployment at ``url``, as the machine's state holds it."""
    status = asyncio.run(read_machine_status(SqliteStorage(cache)))
    (deployment,) = [d for d in status.deployments if d.deployment == url]
    return deployment.breaker.state, deployment.breaker.failures


def _calls(env: dict[str, str], count: int, *, at_once: bool) -> tuple[list[dict[str, Any]], str]:
    if at_once:
        with ThreadPoolExecutor(count) as pool:
            results = list(pool.map(lambda _: _call(env), range(count)))
    else:
        results = [_call(env) for _ in range(count)]
    return [r for r, _ in results], "".join(log for _, log in results)


@pytest.mark.parametrize("at_once", [False, True], ids=["one-after-another", "at-once"])
def test_a_hanging_database_costs_one_wait_and_one_set_of_banners(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path, at_once: bool
) -> None:
    """With the database hanging, the first call pays the deadline; the others do not touch it; 13 banners."""
    fault_proxy.set_mode("hang")
    fault_proxy.reset_counters()
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_COOL_DOWN="120")
    results, log = _calls(env, 10, at_once=at_once)
    assert all(r["sources"] == ["snapshot"] for r in results)
    slow = [r for r in results if r["seconds"] > 0.5]
    assert len(slow) <= (10 if at_once else 1), "later calls never wait on the database"
    assert all(r["seconds"] < 1.5 for r in results), "nobody waits past the deadline"
    assert fault_proxy.connections <= 5, "one read's worth of connections for the whole machine"
    assert log.count(BANNER) == COMPONENTS
    if not at_once:
        assert max(r["seconds"] for r in results[1:]) < 0.25
    assert _breaker(tmp_path, fault_proxy.url)[0] == "open"


def test_a_refused_database_opens_the_breaker_for_the_machine(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Refused connections: three calls try, then every later call skips the database; one set of banners."""
    fault_proxy.set_mode("refuse")
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_COOL_DOWN="120")
    results, log = _calls(env, 10, at_once=False)
    assert _breaker(tmp_path, fault_proxy.url) == ("open", 3), "three failed reads on the machine, then none"
    assert all(r["sources"] == ["snapshot"] and r["reasons"] == ["unreachable"] for r in results)
    assert log.count(BANNER) == COMPONENTS
    assert "DATABASE FAILURE continues" not in log  # within the minute: counted, not repeated


def test_recovery_is_logged_once_for_the_machine(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """After the outage, the first call to reach the database again logs the one recovery line."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_COOL_DOWN="0.5", LIVEKIT_FALLBACK_TTL="0")
    fault_proxy.set_mode("hang")
    _, outage_log = _calls(env, 2, at_once=False)
    fault_proxy.set_mode("pass")
    time.sleep(0.6)
    results, log = _calls(env, 3, at_once=False)
    assert all(r["llm"] == DB_MODELS["livekit"]["llm"] and r["sources"] == ["database"] for r in results)
    assert (outage_log + log).count("DATABASE RECOVERED") == 1


def test_healthy_calls_share_one_read_within_the_ttl(seeded: SeededDatabase, tmp_path: Path) -> None:
    """Ten calls one after another within the TTL read the database once for the machine."""
    env = _env(seeded.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="60")
    results, _ = _calls(env, 10, at_once=False)
    assert all(r["llm"] == DB_MODELS["livekit"]["llm"] for r in results)
    assert len(seeded.standin.requests) == 5


def test_a_burst_of_calls_makes_one_read_and_all_get_the_database(seeded: SeededDatabase, tmp_path: Path) -> None:
    """Twenty calls started at once make one database read (the lease); all get the database's config."""
    # Twenty interpreters starting at once on a small machine: the deadline is not what this test is about.
    env = _env(seeded.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="60", LIVEKIT_FALLBACK_DEADLINE="5")
    results, _ = _calls(env, 20, at_once=True)
    assert all(r["llm"] == DB_MODELS["livekit"]["llm"] and r["sources"] == ["database"] for r in results)
    assert len(seeded.standin.requests) == 5


def test_a_database_edit_shows_up_after_the_ttl(seeded: SeededDatabase, tmp_path: Path) -> None:
    """An edit is not read within the TTL; after it, the next call refreshes and the one after sees it."""
    env = _env(seeded.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="1")
    first, _ = _call(env)
    set_active_model(seeded.dsn, "livekit_available_llm_models", "openai/gpt-4o")
    within, _ = _call(env)
    assert first["llm"] == within["llm"] == DB_MODELS["livekit"]["llm"]
    time.sleep(1.1)
    later = [_call(env)[0]["llm"] for _ in range(2)]
    assert later[-1] == "openai/gpt-4o"


def _corrupt(cache: Path) -> None:
    cache.mkdir()
    (cache / "state.sqlite3").write_bytes(b"not a database" * 64)


def _fifo(cache: Path) -> None:
    cache.mkdir()
    os.mkfifo(cache / "state.sqlite3")


def _not_a_directory(cache: Path) -> None:
    cache.write_text("a file where the cache directory should be")


@pytest.mark.parametrize(
    ("break_it", "limit_file_size"),
    [
        (_corrupt, False),
        (_fifo, False),
        (_not_a_directory, False),
        (lambda cache: cache.mkdir(), True),
    ],
    ids=["corrupt-file", "fifo", "not-a-directory", "full-file-system"],
)
def test_a_broken_store_never_fails_a_call(
    seeded: SeededDatabase, tmp_path: Path, break_it: Any, limit_file_size: bool
) -> None:
    """Whatever is wrong with the state file, calls resolve from the database in time and the problem is logged once."""
    cache = tmp_path / "cache"
    break_it(cache)
    env = _env(seeded.url, seeded.key, cache)

    def limits() -> None:
        if limit_file_size:  # a full disk: writes fail with EFBIG instead of killing the process
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

    code = CALL + "\nasyncio.run(main())\n"  # two calls in one process: the problem is said once
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, preexec_fn=limits
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert len(results) == 2
    assert all(r["sources"] == ["database"] and r["seconds"] < 1.0 for r in results)
    assert done.stderr.count("MACHINE-WIDE STATE UNAVAILABLE") == 1
