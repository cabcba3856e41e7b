"""Refreshes that outlive nothing: short-lived processes (a script, a cron check) sharing one cache directory.

Each process resolves through ``resolve_agent_config`` under ``asyncio.run``
and exits at once, cancelling any refresh it started. The database answers in
0.3 s, past the pickup budget, as a remote one does.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import DB_MODELS, SeededDatabase
from .support.proxy import FaultProxy
from .support.seed import set_active_model
from .test_pickups import BANNER, LLM_TABLE, _env, _run

pytestmark = pytest.mark.integration

TTL = 2.0
LATENCY = 0.3
EDITED = "openai/gpt-4.1-mini"

SCRIPT = r"""
import asyncio, json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from livekit_fallback import resolve_agent_config

config = asyncio.run(resolve_agent_config("reverse_mortgage"))
sources = sorted({p.source.value for p in config.provenance.values()})
print(json.dumps({"llm": config.models.llm.value, "sources": sources}), flush=True)
"""


def test_an_edit_shows_within_the_ttl_and_a_few_seconds_when_every_process_exits_at_once(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Processes every 0.5 s across an edit: the edit is served within TTL + lease + a process's life."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL=str(TTL))
    first, _ = _run(SCRIPT, env)
    assert first["llm"] == DB_MODELS["livekit"]["llm"]
    fault_proxy.set_mode("delay", seconds=LATENCY)
    set_active_model(seeded.dsn, LLM_TABLE, EDITED)
    edited = time.monotonic()
    seen = None
    while time.monotonic() - edited < 30:
        result, _ = _run(SCRIPT, env)
        if result["llm"] == EDITED:
            seen = time.monotonic() - edited
            break
        time.sleep(0.5)
    assert seen is not None and seen < TTL + 3.0 + 3.0, seen  # TTL, one lease, a few processes


def test_an_outage_while_every_process_exits_at_once_is_bannered(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Processes every 0.5 s into a hang: the outage is bannered, not hidden behind a copy labelled database."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL=str(TTL))
    first, _ = _run(SCRIPT, env)
    assert first["sources"] == ["database"]
    fault_proxy.set_mode("hang")
    started, logs, results = time.monotonic(), [], []
    while time.monotonic() - started < 10:
        at = time.monotonic() - started
        result, log = _run(SCRIPT, env)
        results.append((at, result))
        logs.append(log)
        time.sleep(0.5)
    seen = [(round(at, 1), r["sources"]) for at, r in results]
    assert "".join(logs).count(BANNER) >= 1, seen
    # The copy is labelled database only within the TTL, one lease (3 s at a 1 s deadline) and one process's life.
    assert all(r["sources"] != ["database"] for at, r in results if at > TTL + 3.0 + 1.0), str(seen)
    assert all(r["llm"] == DB_MODELS["livekit"]["llm"] for _, r in results), "the copy keeps the database's models"
