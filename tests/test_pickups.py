"""Pickups in real call processes sharing one cache directory: budgets, probes, stalls and model alarms.

Each "call" is a fresh Python process configured only through the
environment (``Resolver.from_settings``), as LiveKit runs each job, against
the test database behind the fault proxy.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import DB_MODELS, SeededDatabase
from .support.proxy import FaultProxy
from .support.seed import set_active_model, set_backups

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
BANNER = "🚨🚨🚨"
BUDGET = 0.15
LLM_TABLE = "livekit_available_llm_models"

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
        if sys.argv[1:] == ["block"]:
            time.sleep(1.5)  # a busy job process: its loop is blocked while the refresh is in flight
        sources = sorted({p.source.value for p in config.provenance.values()})
        print(json.dumps({"seconds": seconds, "llm": config.models.llm.value, "sources": sources}), flush=True)

asyncio.run(main())
"""

BUILD = r"""
import asyncio, json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from livekit_fallback import Resolver
from livekit_fallback.config.resolver import default_resolver
from livekit_fallback.metrics import REGISTRY
from livekit_fallback.providers import build_llm

def gauge():
    labels = {"vertical": "reverse_mortgage", "platform": "livekit", "component": "models.llm"}
    return REGISTRY.get_sample_value("livekit_fallback_degraded", labels)

async def main():
    resolver = default_resolver()
    config = await resolver.resolve("reverse_mortgage")
    llm = build_llm(config, env={"OPENAI_API_KEY": "sk-test-not-a-key"})
    await asyncio.sleep(0.5)  # the call goes on; the model report is written meanwhile
    after_build = gauge()
    await resolver.resolve("reverse_mortgage", fresh=True)  # a fresh read sets every degraded gauge again
    print(json.dumps({"llm": llm.model, "after_build": after_build, "after_read": gauge()}), flush=True)
    await resolver.aclose()

asyncio.run(main())
"""


def _env(url: str, key: str, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_", "LIVEKIT_"))}
    env.update(
        SUPABASE_URL=url,
        SUPABASE_SERVICE_KEY=key,
        LIVEKIT_FALLBACK_CACHE_DIR=str(cache),
        LIVEKIT_FALLBACK_DEADLINE="1.0",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


def _run(script: str, env: dict[str, str], *args: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_no_pickup_waits_on_a_hanging_database_when_the_machine_has_a_copy(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """After a healthy read the database hangs; calls spaced past the TTL and the cool-down wait at most the budget."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="0.3", LIVEKIT_FALLBACK_COOL_DOWN="1.0")
    first, _ = _run(CALL, env)
    assert first["sources"] == ["database"]
    fault_proxy.set_mode("hang")
    fault_proxy.reset_counters()
    started = time.monotonic()
    results, logs = [], []
    for _ in range(6):
        time.sleep(0.5)  # past the TTL; with the process's own life, calls are ~1.3 s apart
        result, log = _run(CALL, env)
        results.append(result)
        logs.append(log)
    elapsed = time.monotonic() - started
    assert max(r["seconds"] for r in results) < BUDGET + 0.1, [round(r["seconds"], 3) for r in results]
    assert all(r["llm"] == DB_MODELS["livekit"]["llm"] for r in results), "every call keeps the database's copy"
    # One probe per cool-down: a probe takes the deadline (1 s), then the breaker cools down for 1 s.
    probes = math.ceil(elapsed / 2.0) + 1
    assert 1 <= fault_proxy.connections <= 5 * probes, (fault_proxy.connections, elapsed)
    assert "".join(logs).count(BANNER) >= 13, "the outage is bannered (once per component)"


def test_a_stalled_refresh_is_not_an_outage(seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path) -> None:
    """A call process blocking its loop 1.5 s during its refresh of a healthy database: no breaker, no banner."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="0.2")
    first, _ = _run(CALL, env)
    assert first["sources"] == ["database"]
    time.sleep(0.3)
    fault_proxy.set_mode("delay", seconds=0.3)  # the refresh outlasts the pickup budget: the loop blocks mid-read
    stalled, log = _run(CALL, env, "block")
    assert stalled["sources"] == ["database"] and stalled["seconds"] < BUDGET + 0.1
    assert BANNER not in log
    fault_proxy.set_mode("pass")
    for _ in range(3):
        time.sleep(0.3)
        result, log = _run(CALL, env)
        assert result["sources"] == ["database"] and BANNER not in log, log[-2000:]


def test_an_unbuildable_model_is_bannered_once_for_five_call_processes(seeded: SeededDatabase, tmp_path: Path) -> None:
    """The database names an LLM no call process can build: one MODEL UNAVAILABLE banner; the gauge stays 1."""
    set_active_model(seeded.dsn, LLM_TABLE, "groq/llama-3.3-70b")
    set_backups(seeded.dsn, LLM_TABLE, ["openai/gpt-4.1-mini"])
    env = _env(seeded.url, seeded.key, tmp_path)
    results, logs = [], []
    for _ in range(5):
        result, log = _run(BUILD, env)
        results.append(result)
        logs.append(log)
    assert {r["llm"] for r in results} == {"gpt-4.1-mini"}, "every call runs on the database's backup"
    text = "".join(logs)
    assert text.count("MODEL UNAVAILABLE: LLM MODEL") == 1, text[-3000:]
    assert text.count("Traceback") <= 1
    assert all(r["after_build"] == 1.0 and r["after_read"] == 1.0 for r in results), results
