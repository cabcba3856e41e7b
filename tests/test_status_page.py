"""The status page during a real outage and after recovery, opened in headless Chromium.

The database is the test PostgreSQL behind the PostgREST stand-in, reached
through the fault proxy; the resolver uses the machine-wide store, so the page
(served by the SignalWire server at ``/status`` and by ``livekit-fallback
status --serve``) shows what the store says. Chromium renders the page, takes
a screenshot, and dumps the DOM whose text is checked. Chromium and Graphviz
must be installed (``.ci/run`` installs them): a missing tool fails the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from livekit_fallback.config.resolver import Resolver
from livekit_fallback.config.sources.snapshot import SnapshotSource
from livekit_fallback.config.sources.supabase import SupabaseSource
from swaig_fallback import create_app, run_server
from tests.conftest import TEST_KEY, SeededDatabase
from tests.support.proxy import FaultProxy

pytestmark = pytest.mark.integration

USER = "signalwire"
PASSWORD = "status-page-pass-w0rd"
COOL_DOWN = 0.4


def chromium() -> str:
    """The Chromium binary; the test fails (never skips) without it."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed (Debian package 'chromium'; .ci/run installs it)"
    return found


async def browse(url: str, profile: Path, *, screenshot: Path | None = None) -> str:
    """Open ``url`` in headless Chromium; the DOM after rendering (and a screenshot when asked)."""
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}"]
    if screenshot is not None:
        shot = await asyncio.create_subprocess_exec(
            *base,
            f"--screenshot={screenshot}",
            "--window-size=412,1600",
            "--hide-scrollbars",
            url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await asyncio.wait_for(shot.wait(), 60) == 0
    dump = await asyncio.create_subprocess_exec(
        *base, "--dump-dom", url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await asyncio.wait_for(dump.communicate(), 60)
    assert dump.returncode == 0
    return out.decode()


def text_of(dom: str) -> str:
    """The visible text of a DOM dump: tags and styles removed, whitespace collapsed."""
    dom = re.sub(r"<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


@contextlib.asynccontextmanager
async def outage_resolver(seeded: SeededDatabase, proxy: FaultProxy) -> AsyncIterator[Resolver]:
    """A resolver as production builds one: the database through the proxy, the machine-wide state."""
    async with Resolver(
        database=SupabaseSource(proxy.url, seeded.key, timeout=1.0),
        snapshots=SnapshotSource(),
        cool_down=COOL_DOWN,
        deadline=1.0,
        ttl=0.0,
    ) as resolver:
        yield resolver


@contextlib.asynccontextmanager
async def swaig_server(resolver: Resolver) -> AsyncIterator[str]:
    """The SignalWire server on 127.0.0.1 with basic auth; its base URL; stopped afterwards."""
    app = create_app(resolver, None, username=USER, password=PASSWORD)
    bound: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_server(app, host="127.0.0.1", port=0, ready=bound.set_result))
    try:
        yield f"http://127.0.0.1:{await asyncio.wait_for(asyncio.shield(bound), 10)}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def fetch(url: str, *, auth: bool) -> tuple[int, str]:
    """GET ``url``, with the server's basic auth or without."""
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as reply:
        return reply.status, await reply.text()


async def test_status_page_in_a_browser_during_an_outage_and_after_recovery(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """During an outage the page names the degraded components, open breaker and incident; later the ended outage."""
    assert shutil.which("dot"), "graphviz is not installed (Debian package 'graphviz'; .ci/run installs it)"
    async with outage_resolver(seeded, fault_proxy) as resolver, swaig_server(resolver) as base:
        assert not (await resolver.resolve("reverse_mortgage", "signalwire")).is_degraded
        await asyncio.sleep(0.3)  # the last-known-good copy is written in the background
        fault_proxy.set_mode("refuse")
        for _ in range(3):
            config = await resolver.resolve("reverse_mortgage", "signalwire", fresh=True)
        assert config.is_degraded

        shot = tmp_path / "outage.png"
        dom = await browse(f"{base}/status", tmp_path / "profile", screenshot=shot)
        page = text_of(dom)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
        assert "DEGRADED" in page and "reverse_mortgage / signalwire DEGRADED: 13 of 13" in page
        assert re.search(r"nodes\.greet last_known_good unreachable \d+ s", page)
        assert "State open" in page and "Next probe" in page
        assert "Open in reverse_mortgage/signalwire" in page and "Open outages" in page and "ongoing" in page
        assert re.search(r"nodes\.verify unreachable \S+ \d+ s 3 ", page)  # three fallbacks since it started
        assert "snapshot of reverse_mortgage" in page and "last-known-good copy of reverse_mortgage/signalwire" in page
        assert "<svg" in dom and "served from last_known_good" in page  # the graph, degraded nodes marked
        for secret in (TEST_KEY, PASSWORD, f"127.0.0.1:{fault_proxy.port}", "ConnectError", "Last error"):
            assert secret not in dom

        status, private = await fetch(f"{base}/status", auth=True)
        assert status == 200 and "Last error" in private and "ConnectError: All connection attempts failed" in private
        assert TEST_KEY not in private and PASSWORD not in private

        fault_proxy.set_mode("pass")
        await asyncio.sleep(COOL_DOWN + 0.1)
        assert not (await resolver.resolve("reverse_mortgage", "signalwire", fresh=True)).is_degraded
        page = text_of(await browse(f"{base}/status", tmp_path / "profile"))
        assert "OK" in page and "ALL FROM DATABASE" in page and "State closed" in page
        assert "Open outages" not in page and "Open in" not in page
        ended = re.search(r"Recent, ended .*? reverse_mortgage/signalwire \S+ \S+ \d+ s (\d+)", page)
        assert ended and int(ended[1]) == 3, page  # the three degraded resolutions of the outage


async def test_status_serve_shows_the_machine_to_a_browser(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """`status --serve`, a separate process, shows another process's outage on 127.0.0.1 and stops on SIGTERM."""
    async with outage_resolver(seeded, fault_proxy) as resolver:
        fault_proxy.set_mode("refuse")
        assert (await resolver.resolve("reverse_mortgage", "livekit")).is_degraded
    env = {**os.environ, "SUPABASE_URL": fault_proxy.url, "SUPABASE_SERVICE_KEY": TEST_KEY}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livekit_fallback.cli",
        "status",
        "--serve",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), 30)).decode()
        match = re.fullmatch(r"status page: (http://127\.0\.0\.1:\d+)/status\n", line)
        assert match, line
        page = text_of(await browse(f"{match[1]}/status", tmp_path / "profile"))
        assert "reverse_mortgage / livekit DEGRADED: 13 of 13" in page
        assert re.search(r"models\.llm snapshot unreachable", page)
        assert TEST_KEY not in page and "ConnectError" not in page
        _, metrics = await fetch(f"{match[1]}/metrics", auth=False)
        assert re.search(r'livekit_fallback_snapshot_age_seconds\{vertical="reverse_mortgage"\} \d', metrics)
    finally:
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 10) == 0
