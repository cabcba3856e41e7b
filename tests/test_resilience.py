"""Resilience under real faults: breaker, single flight, TTL, alarm dedup, recovery, metrics, status."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request

import pytest

from livekit_fallback import Reason, Resolver, Source, SupabaseSource
from livekit_fallback.metrics import REGISTRY, start_metrics_server

from .conftest import DB_MODELS, SeededDatabase
from .support.proxy import FaultProxy
from .support.seed import set_active_model

pytestmark = pytest.mark.usefixtures("each_storage")

N = 1000


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


async def test_outage_under_1000_concurrent_calls(
    seeded: SeededDatabase, fault_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 calls in a hang, then 1,000 with the breaker open: all complete, few requests, bounded logs, counted."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    before_timeout = _sample(
        "livekit_fallback_fallbacks_total",
        component="nodes.verify",
        platform="livekit",
        source="snapshot",
        reason="timeout",
    )
    before_open = _sample(
        "livekit_fallback_fallbacks_total",
        component="nodes.verify",
        platform="livekit",
        source="snapshot",
        reason="circuit_open",
    )
    async with Resolver(database=SupabaseSource(fault_proxy.url, seeded.key), deadline=0.5) as resolver:
        fault_proxy.set_mode("hang")
        fault_proxy.reset_counters()
        started = time.perf_counter()
        first = await asyncio.gather(*(resolver.resolve("reverse_mortgage") for _ in range(N)))
        first_wave = time.perf_counter() - started
        started = time.perf_counter()
        second = await asyncio.gather(*(resolver.resolve("reverse_mortgage", fresh=True) for _ in range(N)))
        second_wave = time.perf_counter() - started
        assert (await resolver.state.breaker()).state == "open"
    assert first_wave < 0.5 + 0.5
    assert second_wave < 1.0
    for config in (*first, *second):
        assert len(config.nodes) == 9 and {p.source for p in config.provenance.values()} == {Source.SNAPSHOT}
    assert {p.reason for p in second[0].provenance.values()} == {Reason.CIRCUIT_OPEN}
    assert fault_proxy.connections <= 5
    banners = _events(caplog, "config_fallback")
    assert len(banners) == 13 and len({r.component for r in banners}) == 13
    assert len(_events(caplog, "config_fallback_repeat")) == 0
    assert sum(r.levelno >= logging.ERROR for r in caplog.records) == 13
    assert (
        _sample(
            "livekit_fallback_fallbacks_total",
            component="nodes.verify",
            platform="livekit",
            source="snapshot",
            reason="timeout",
        )
        - before_timeout
        == N
    )
    assert (
        _sample(
            "livekit_fallback_fallbacks_total",
            component="nodes.verify",
            platform="livekit",
            source="snapshot",
            reason="circuit_open",
        )
        - before_open
        == N
    )


async def test_recovery_within_one_cool_down_is_logged_once(
    seeded: SeededDatabase, fault_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    """After consecutive refusals the breaker opens; once the database is back, one cool-down later it is read again."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    now = [1_000_000.0]
    async with Resolver(
        database=SupabaseSource(fault_proxy.url, seeded.key), cool_down=30.0, deadline=0.5, clock=lambda: now[0]
    ) as r:
        fault_proxy.set_mode("refuse")
        for _ in range(3):
            down = await r.resolve("reverse_mortgage", fresh=True)
        assert (await r.state.breaker()).state == "open" and down.is_degraded
        status = r.status()
        assert status.database_reachable is False and status.since is not None
        assert set(status.degraded["reverse_mortgage/livekit"]) == set(down.provenance)
        fault_proxy.set_mode("pass")
        fault_proxy.reset_counters()
        still_open = await r.resolve("reverse_mortgage")
        assert fault_proxy.connections == 0 and still_open.provenance["theme"].source is Source.SNAPSHOT
        now[0] += 29.9
        assert (await r.resolve("reverse_mortgage", fresh=True)).is_degraded and fault_proxy.connections == 0
        now[0] += 0.1  # the cool-down is over: one probe reaches the database (in the pickup budget)
        up = await r.resolve("reverse_mortgage")
        assert {p.source for p in up.provenance.values()} == {Source.DATABASE}
        assert up.models.llm.value == DB_MODELS["livekit"]["llm"]
        assert r.status().healthy and r.status().database_reachable is True
    recovered = _events(caplog, "config_recovered")
    assert len(recovered) == 1
    assert recovered[0].degraded_resolutions == 5 and "DATABASE RECOVERED" in recovered[0].getMessage()


async def test_ongoing_fallbacks_log_counted_short_lines(
    seeded: SeededDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """While an outage lasts, each component logs one short counted line per interval instead of a banner."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    now = [1_000_000.0]
    async with Resolver(
        database=SupabaseSource("http://127.0.0.1:1", seeded.key),
        repeat_interval=60.0,
        failure_threshold=1000,
        ttl=0,
        clock=lambda: now[0],
    ) as resolver:
        for step in range(10):
            now[0] = 1_000_000.0 + step * 20.0  # 0, 20, ..., 180 s
            await resolver.resolve("reverse_mortgage")
    theme_lines = [r for r in caplog.records if getattr(r, "component", None) == "theme"]
    assert [r.event for r in theme_lines] == [
        "config_fallback",
        "config_fallback_repeat",
        "config_fallback_repeat",
        "config_fallback_repeat",
    ]
    assert [r.count for r in theme_lines[1:]] == [3, 3, 3]
    assert "3 more time(s)" in theme_lines[1].getMessage() and theme_lines[-1].total == 10
    assert theme_lines[1].exc_info is None


async def test_concurrent_callers_share_one_read_and_edits_show_after_the_ttl(seeded: SeededDatabase) -> None:
    """N concurrent callers cause one database read; past the TTL the pickup gets the edit within its budget."""
    now = [1_000_000.0]
    async with Resolver(database=SupabaseSource(seeded.url, seeded.key), ttl=5.0, clock=lambda: now[0]) as resolver:
        configs = await asyncio.gather(*(resolver.resolve("reverse_mortgage") for _ in range(50)))
        assert len(seeded.standin.requests) == 5
        assert {c.models.llm.value for c in configs} == {DB_MODELS["livekit"]["llm"]}
        set_active_model(seeded.dsn, "livekit_available_llm_models", "openai/gpt-4o")
        assert (await resolver.resolve("reverse_mortgage")).models.llm.value == DB_MODELS["livekit"]["llm"]
        assert len(seeded.standin.requests) == 5
        now[0] += 5.0
        refreshed = await resolver.resolve("reverse_mortgage")  # a healthy database answers within the budget
        assert refreshed.models.llm.value == "openai/gpt-4o"
        assert (await resolver.resolve("reverse_mortgage")).models.llm.value == "openai/gpt-4o"
        assert len(seeded.standin.requests) == 10
        set_active_model(seeded.dsn, "livekit_available_llm_models", "openai/gpt-4.1-mini")
        fresh = await resolver.resolve("reverse_mortgage", fresh=True)
        assert fresh.models.llm.value == "openai/gpt-4.1-mini"


async def test_metrics_are_served_for_livekit_workers(seeded: SeededDatabase) -> None:
    """The documented helper serves the package's metrics over HTTP on 127.0.0.1."""
    async with Resolver(database=SupabaseSource("http://127.0.0.1:1", seeded.key)) as resolver:
        await resolver.resolve("reverse_mortgage", "signalwire")
    server = start_metrics_server(port=0)
    try:
        port = server.server_address[1]  # type: ignore[attr-defined]
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        )
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]
    text = body.decode()
    assert 'livekit_fallback_fallbacks_total{component="models.llm",platform="signalwire"' in text
    assert (
        'livekit_fallback_degraded{component="models.llm",platform="signalwire",vertical="reverse_mortgage"} 1.0'
        in text
    )
    assert "livekit_fallback_resolution_seconds_bucket" in text and "livekit_fallback_breaker_state" in text
