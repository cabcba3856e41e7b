"""The database is blamed only for what it did: real processes sharing one cache directory.

A caller's short deadline, a paused process holding the refresh lease, and a
slow store under CPU load are not database failures: no banner, the breaker
stays closed, and the next calls are served from the database.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import SeededDatabase
from .support.proxy import FaultProxy
from .test_pickups import BANNER, CALL, _env, _run

pytestmark = pytest.mark.integration

HOLD = r"""
import asyncio, json, os, sys
from livekit_fallback import Resolver

async def main():
    async with Resolver.from_settings() as resolver:
        print("ready", flush=True)
        sys.stdin.readline()
        await resolver.resolve("reverse_mortgage")
        print(json.dumps({"done": True}), flush=True)

asyncio.run(main())
"""


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "livekit_fallback", "resolve", "--vertical", "reverse_mortgage", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def _followers(env: dict[str, str], count: int) -> tuple[list[dict[str, object]], str]:
    results, logs = [], []
    for _ in range(count):
        result, log = _run(CALL, env)
        results.append(result)
        logs.append(log)
    return results, "".join(logs)


def test_a_short_caller_deadline_does_not_blame_the_database(seeded: SeededDatabase, tmp_path: Path) -> None:
    """``resolve --deadline 0.05`` against a healthy database: no banner, the next calls read the database."""
    env = _env(seeded.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="0")
    checks = [_cli(env, "--deadline", "0.05") for _ in range(3)]
    text = "".join(c.stdout + c.stderr for c in checks)
    assert all(c.returncode in (0, 1) for c in checks), text[-2000:]
    assert BANNER not in text, text[-3000:]
    results, logs = _followers(env, 6)
    assert all(r["sources"] == ["database"] for r in results), results
    assert BANNER not in logs, logs[-3000:]


def test_a_paused_lease_holder_does_not_blame_the_database(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """A call process stopped (SIGSTOP) 1.5 s while it holds the refresh lease: no banner anywhere, no breaker."""
    env = _env(fault_proxy.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="0.2")
    first, _ = _run(CALL, env)
    assert first["sources"] == ["database"]
    time.sleep(0.3)
    fault_proxy.set_mode("delay", seconds=0.3)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        holder.stdin.write("go\n")
        holder.stdin.flush()
        time.sleep(0.15)  # its refresh is in flight, the lease is held
        os.kill(holder.pid, signal.SIGSTOP)
        fault_proxy.set_mode("pass")
        paused_results, paused_logs = _followers(env, 2)
        time.sleep(max(0.0, 1.5 - 0.1))
        os.kill(holder.pid, signal.SIGCONT)
        out, err = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
            holder.wait()
    assert BANNER not in err + paused_logs, (err + paused_logs)[-3000:]
    results, logs = _followers(env, 4)
    assert all(r["sources"] == ["database"] for r in results), results
    assert BANNER not in logs, logs[-3000:]


WAVE = 50


def test_a_wave_of_call_processes_under_cpu_load_blames_nothing(seeded: SeededDatabase, tmp_path: Path) -> None:
    """50 call processes at once with every core busy: no database banner, no store banner, every call answered.

    The calls run at a lower priority than the test's database, as a call
    machine does beside a database elsewhere: the calls are starved of CPU,
    the database is not.
    """
    env = _env(seeded.url, seeded.key, tmp_path, LIVEKIT_FALLBACK_TTL="5")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        calls = [
            subprocess.Popen(
                [sys.executable, "-c", CALL], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(WAVE)
        ]
        finished = [call.communicate(timeout=600) for call in calls]
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    logs = "".join(err for _, err in finished)
    assert all(call.returncode == 0 for call in calls), logs[-3000:]
    assert logs.count(BANNER) == 0, (logs.count(BANNER), logs.count("UNAVAILABLE"), logs[-3000:])
    assert "MACHINE-WIDE STATE UNAVAILABLE" not in logs
