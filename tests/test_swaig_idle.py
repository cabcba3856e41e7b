"""Idle and half-sent connections are closed and capped, so /healthz keeps answering under a low file limit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FILE_LIMIT = 256
IDLE_CLIENTS = 400

SERVER = f"""
import asyncio, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, ({FILE_LIMIT}, {FILE_LIMIT}))
from livekit_fallback.config.resolver import Resolver
from swaig_fallback import create_app, run_server

async def main():
    async with Resolver() as resolver:
        app = create_app(resolver, None, username=None, password=None, local_only=True)
        task = asyncio.create_task(run_server(
            app, host="127.0.0.1", port=0, idle_timeout=1.0,
            ready=lambda port: print(port, flush=True),
        ))
        await asyncio.wait([task], timeout=40)  # SIGTERM ends it; it stops itself even if the test dies
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

asyncio.run(main())
"""


async def _health(port: int) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.") else 0


@pytest.mark.integration
async def test_idle_connections_are_closed_and_health_answers() -> None:
    """400 idle or half-sent connections against a 256-file limit: health still answers and they get closed."""
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env = {k: v for k, v in env.items() if not k.startswith("SUPABASE_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO_ROOT
    )
    clients: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        port = int(line)
        for index in range(IDLE_CLIENTS):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if index % 2:
                writer.write(b"POST /swaig HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half-sent headers
            clients.append((reader, writer))
        probes = [await _health(port) for _ in range(7)]
        assert probes == [200] * 7
        started = time.monotonic()
        closed = 0
        for reader, _ in clients:
            left = max(0.1, 10 - (time.monotonic() - started))
            try:
                data = await asyncio.wait_for(reader.read(), left)
            except (asyncio.TimeoutError, ConnectionError):
                continue
            closed += data == b"" or data.startswith(b"HTTP/1.1 503")
        assert closed == IDLE_CLIENTS
        assert await _health(port) == 200
    finally:
        for _, writer in clients:
            writer.close()
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert len(stderr) < 200_000
    assert b"Traceback" not in stderr
