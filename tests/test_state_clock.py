"""Time-proof state: one process whose clock is an hour ahead (an NTP step after a VM resume), then the real clock.

The fast process runs under libfaketime (Debian package ``faketime``;
``.ci/run`` installs it); every other process reads the real clock. Nothing it
stamped in the future may freeze the machine's state.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from .conftest import DB_MODELS, SeededDatabase
from .support.proxy import FaultProxy
from .support.seed import set_active_model
from .test_pickups import BANNER, LLM_TABLE, _env, _run
from .test_state_refresh import SCRIPT

pytestmark = pytest.mark.integration

TTL = 2.0
EDITED = "openai/gpt-4.1-mini"


def _ahead(env: dict[str, str]) -> dict[str, str]:
    faketime = shutil.which("faketime")
    assert faketime, "faketime is not installed (Debian package 'faketime'; .ci/run installs it)"
    library = next(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"), None)
    assert library is not None, "libfaketime.so.1 not found"
    return {**env, "LD_PRELOAD": str(library), "FAKETIME": "+1h", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _until(env: dict[str, str], wanted: object, key: str, limit: float) -> tuple[float | None, list[object]]:
    started, seen = time.monotonic(), []
    while time.monotonic() - started < limit:
        result, _ = _run(SCRIPT, env)
        seen.append(result[key])
        if result[key] == wanted:
            return time.monotonic() - started, seen
        time.sleep(0.5)
    return None, seen


def test_a_config_read_an_hour_ahead_does_not_hide_an_edit(seeded: SeededDatabase, tmp_path: Path) -> None:
    """The fast process stores the config; after an edit, real-clock processes see it within TTL + a few seconds."""
    env = _env(seeded.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL=str(TTL))
    fast, _ = _run(SCRIPT, _ahead(env))
    assert fast["llm"] == DB_MODELS["livekit"]["llm"]
    set_active_model(seeded.dsn, LLM_TABLE, EDITED)
    took, seen = _until(env, EDITED, "llm", 20)
    assert took is not None and took < TTL + 3.0, seen


def test_a_breaker_opened_an_hour_ahead_is_probed(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The fast process opens the breaker in a hang; once the database is back, real-clock processes read it."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL=str(TTL), LIVEKIT_FALLBACK_COOL_DOWN="1")
    first, _ = _run(SCRIPT, env)
    assert first["sources"] == ["database"]
    fault_proxy.set_mode("hang")
    fast, log = _run(SCRIPT, _ahead({**env, "LIVEKIT_FALLBACK_TTL": "0"}))
    assert fast["sources"] != ["database"] and BANNER in log
    fault_proxy.set_mode("pass")
    took, seen = _until(env, ["database"], "sources", 20)
    assert took is not None and took < 1.0 + 3.0, seen
