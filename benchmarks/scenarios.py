"""The benchmark scenarios: each reader in each database condition, measured the same way."""

from __future__ import annotations

import statistics
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from postgrest._sync.request_builder import get_retry_delay
from postgrest.base_request_builder import MAX_RETRIES
from postgrest.constants import DEFAULT_POSTGREST_CLIENT_TIMEOUT

from livekit_fallback import Resolver, SupabaseSource
from livekit_fallback.config.state.memory import MemoryStorage
from supabase import Client

from . import baseline
from .infra import VERTICAL, Infra
from .measure import Cleanup, Runs, Ticker, UnclosedSockets, measure
from .processes import ProcessRow, healthy_processes, outage_processes

HEALTHY_0 = "healthy, +0 ms"
HEALTHY_20 = "healthy, +20 ms"
REFUSED = "connection refused"
HANG_FIRST = "hanging, first call"
HANG_OPEN = "hanging, breaker open"
SCENARIOS = (HEALTHY_0, HEALTHY_20, REFUSED, HANG_FIRST, HANG_OPEN)
HANGING = "hanging"
PROCESS_SCENARIOS = (HEALTHY_0, HEALTHY_20, REFUSED, HANGING)

BASELINE = "baseline: sync client, N+1"
COLD = "package, cold (new resolver)"
COLD_HTTP1 = "package, cold, HTTP/1.1 client (before)"
FRESH = "package, fresh read (pooled)"
WARM = "package, warm (TTL hit)"
OPEN_FRESH = "package, fresh=True"
OPEN_CACHED = "package, cached"

DEADLINE = 1.0
"""The package's resolution deadline in every scenario (its default)."""


@dataclass(frozen=True)
class Plan:
    """How many runs of each kind: the full plan takes about 4 min here, the quick one about 40 s."""

    name: str
    baseline_runs: dict[float, int]
    cold_runs: int
    fresh_runs: int
    warm_runs: int
    refused_runs: int
    hang_first_runs: int
    open_runs: int
    warm_rate_calls: int
    refused_cap: float | None
    hang_cap: float
    process_runs: int
    outage_processes: int


FULL = Plan(
    "full",
    {0.0: 100, 0.02: 40},
    cold_runs=100,
    fresh_runs=200,
    warm_runs=2000,
    refused_runs=100,
    hang_first_runs=8,
    open_runs=500,
    warm_rate_calls=300_000,
    refused_cap=None,
    hang_cap=3.0,
    process_runs=10,
    outage_processes=10,
)
QUICK = Plan(
    "quick",
    {0.0: 5, 0.02: 2},
    cold_runs=5,
    fresh_runs=5,
    warm_runs=200,
    refused_runs=5,
    hang_first_runs=2,
    open_runs=50,
    warm_rate_calls=20_000,
    refused_cap=0.3,
    hang_cap=0.3,
    process_runs=1,
    outage_processes=3,
)


@dataclass(frozen=True)
class Derived:
    """A baseline outage figure computed from the client's defaults, plus the bounded run that confirms it.

    Attributes:
        wall: Derived wall time of one resolution (the loop is blocked throughout).
        requests: Requests sent before the resolution raises.
        per_request: Derived cost of one request.
        measured_wall: Wall time of one measured request.
        measured_stall: Worst event-loop stall during that request.
        cap: Seconds after which the fault was lifted (None: ran to completion).
        how: One line on how the figure is derived.
    """

    wall: float
    requests: int
    per_request: float
    measured_wall: float
    measured_stall: float
    cap: float | None
    how: str


@dataclass
class Row:
    """One reader in one scenario: measured ``runs``, or for the baseline in an outage, ``derived``."""

    scenario: str
    reader: str
    runs: Runs | None = None
    derived: Derived | None = None

    @property
    def median(self) -> float:
        return self.derived.wall if self.derived else self.runs.median  # type: ignore[union-attr]


@dataclass
class Report:
    """Everything one benchmark run measured."""

    plan: Plan
    rows: list[Row] = field(default_factory=list)
    warm_rate: float = 0.0
    peak_memory: dict[str, int] = field(default_factory=dict)
    processes: list[ProcessRow] = field(default_factory=list)
    hung_sockets: tuple[int, int] = (0, 0)
    """(sockets the collector closed, resolutions that timed out in a TLS handshake) in the hang scenarios."""
    seconds: float = 0.0

    def row(self, scenario: str, reader: str) -> Row:
        return next(r for r in self.rows if r.scenario == scenario and r.reader == reader)

    def process_row(self, scenario: str, reader: str) -> ProcessRow:
        return next(r for r in self.processes if r.scenario == scenario and r.reader == reader)


def _package(infra: Infra, **kwargs: Any) -> Resolver:
    """A resolver with a state of its own: each measurement starts from nothing stored."""
    kwargs.setdefault("state", MemoryStorage())
    return Resolver(database=SupabaseSource(infra.url, infra.key), deadline=DEADLINE, **kwargs)


def _check(config: Any, *, degraded: bool) -> None:
    if config.is_degraded != degraded:
        state = "degraded" if config.is_degraded else "healthy"
        raise RuntimeError(
            f"benchmark invalid: expected a {'degraded' if degraded else 'healthy'} "
            f"resolution, got a {state} one ({sorted(config.degraded)})"
        )


def _cold(infra: Infra, *, degraded: bool, http1: bool = False) -> Callable[[], Awaitable[Cleanup]]:
    context = httpx.create_ssl_context()  # once, as the package keeps one per process

    async def once() -> Cleanup:
        if http1:  # the client as built before it asked for HTTP/2: one connection per concurrent request
            transport = httpx.AsyncHTTPTransport(
                verify=context,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
            )
            source = SupabaseSource(infra.url, infra.key, transport=transport)
            resolver = Resolver(database=source, deadline=DEADLINE, state=MemoryStorage())
        else:
            resolver = _package(infra)
        _check(await resolver.resolve(VERTICAL), degraded=degraded)
        return resolver.aclose

    return once


def _resolve(resolver: Resolver, *, fresh: bool, degraded: bool) -> Callable[[], Awaitable[Cleanup]]:
    async def once() -> Cleanup:
        _check(await resolver.resolve(VERTICAL, fresh=fresh), degraded=degraded)
        return None

    return once


def _baseline(client: Client) -> Callable[[], Awaitable[Cleanup]]:
    async def once() -> Cleanup:
        config = await baseline.baseline_resolve(client, VERTICAL)
        if len(config["nodes"]) != 9 or not all(config["models"].values()):
            raise RuntimeError("benchmark invalid: the baseline read an incomplete config")
        return None

    return once


async def healthy(
    report: Report, infra: Infra, client: Client, latency: float, progress: Callable[[str], None]
) -> None:
    """Baseline, cold, fresh and warm resolutions with ``latency`` added to every request."""
    plan = report.plan
    scenario = HEALTHY_20 if latency else HEALTHY_0
    if latency:
        infra.set_mode("delay", latency)
    else:
        infra.set_mode("pass")
    progress(f"{scenario}: baseline")
    report.rows.append(Row(scenario, BASELINE, await measure(infra, _baseline(client), plan.baseline_runs[latency])))
    progress(f"{scenario}: package cold")
    report.rows.append(Row(scenario, COLD, await measure(infra, _cold(infra, degraded=False), plan.cold_runs)))
    progress(f"{scenario}: package cold, HTTP/1.1 client")
    report.rows.append(
        Row(scenario, COLD_HTTP1, await measure(infra, _cold(infra, degraded=False, http1=True), plan.cold_runs))
    )
    progress(f"{scenario}: package fresh and warm")
    async with _package(infra, ttl=3600.0) as resolver:
        report.rows.append(
            Row(scenario, FRESH, await measure(infra, _resolve(resolver, fresh=True, degraded=False), plan.fresh_runs))
        )
        report.rows.append(
            Row(scenario, WARM, await measure(infra, _resolve(resolver, fresh=False, degraded=False), plan.warm_runs))
        )


async def warm_rate(infra: Infra, calls: int, batches: int = 5) -> float:
    """Resolutions per second of back-to-back TTL hits (median of ``batches`` batches)."""
    infra.set_mode("pass")
    rates = []
    async with _package(infra, ttl=3600.0) as resolver:
        await resolver.resolve(VERTICAL)
        per_batch = max(1, calls // batches)
        for _ in range(batches):
            started = time.perf_counter()
            for _ in range(per_batch):
                await resolver.resolve(VERTICAL)
            rates.append(per_batch / (time.perf_counter() - started))
    return statistics.median(rates)


async def _peak(work: Callable[[], Awaitable[object]]) -> int:
    tracemalloc.start()
    try:
        await work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def peak_memory(infra: Infra, client: Client) -> dict[str, int]:
    """Peak Python heap (tracemalloc) of one resolution, per reader, on a healthy database."""
    infra.set_mode("pass")
    peaks: dict[str, int] = {}
    await baseline.baseline_resolve(client, VERTICAL)  # connection and imports already warm
    peaks[BASELINE] = await _peak(lambda: baseline.baseline_resolve(client, VERTICAL))
    holder: list[Resolver] = []

    async def cold() -> None:
        holder.append(_package(infra))
        await holder[0].resolve(VERTICAL)

    peaks[COLD] = await _peak(cold)
    resolver = holder[0]
    try:
        peaks[FRESH] = await _peak(lambda: resolver.resolve(VERTICAL, fresh=True))
    finally:
        await resolver.aclose()
    return peaks


async def _baseline_first_request(infra: Infra, client: Client, mode: str, cap: float | None) -> tuple[float, float]:
    """One blocking baseline request under a fault; the fault is lifted after ``cap`` seconds (None: never)."""
    infra.set_mode(mode)
    timer = threading.Timer(cap, infra.set_mode, args=("pass",)) if cap is not None else None
    try:
        async with Ticker() as ticker:
            if timer is not None:
                timer.start()
            started = time.perf_counter()
            baseline.load_theme(client, VERTICAL)  # blocks the loop, as in the original entrypoint
            wall = time.perf_counter() - started
    finally:
        if timer is not None:
            timer.cancel()
            timer.join()
        infra.set_mode("pass")
    return wall, ticker.worst


async def outages(report: Report, infra: Infra, client: Client, progress: Callable[[str], None]) -> None:
    """Refused and hanging database: the package measured, the baseline derived from one bounded request."""
    plan = report.plan
    crash_after = baseline.requests_until_crash()

    progress(f"{REFUSED}: package cold")
    infra.set_mode("refuse")
    report.rows.append(Row(REFUSED, COLD, await measure(infra, _cold(infra, degraded=True), plan.refused_runs)))
    progress(f"{REFUSED}: baseline, one request" + (f" (capped at {plan.refused_cap} s)" if plan.refused_cap else ""))
    retry = float(sum(get_retry_delay(attempt) for attempt in range(MAX_RETRIES)))
    wall, stall = await _baseline_first_request(infra, client, "refuse", plan.refused_cap)
    report.rows.append(
        Row(
            REFUSED,
            BASELINE,
            derived=Derived(
                retry * crash_after,
                0,
                retry,
                wall,
                stall,
                plan.refused_cap,
                f"{crash_after} requests x {retry:.0f} s of built-in retry sleeps each, "
                "then the first model read raises",
            ),
        )
    )

    progress(f"{HANG_FIRST}: package cold")
    infra.set_mode("hang")
    with UnclosedSockets() as leaked:
        report.rows.append(
            Row(
                HANG_FIRST,
                COLD,
                await measure(
                    infra, _cold(infra, degraded=True), plan.hang_first_runs, counted="connections", warmup=0
                ),
            )
        )
        progress(f"{HANG_OPEN}: package")
        # cool-down 600 s: the breaker stays open for the whole measurement; see docs/benchmarks.md
        async with _package(infra, cool_down=600.0) as resolver:
            await resolver.resolve(VERTICAL)  # times out and opens the breaker
            report.rows.append(
                Row(
                    HANG_OPEN,
                    OPEN_FRESH,
                    await measure(
                        infra, _resolve(resolver, fresh=True, degraded=True), plan.open_runs, counted="connections"
                    ),
                )
            )
            report.rows.append(
                Row(
                    HANG_OPEN,
                    OPEN_CACHED,
                    await measure(
                        infra, _resolve(resolver, fresh=False, degraded=True), plan.open_runs, counted="connections"
                    ),
                )
            )
            breaker = await resolver.state.breaker()
            if breaker.state != "open":
                raise RuntimeError(f"benchmark invalid: the breaker is {breaker.state}, expected open")
    report.hung_sockets = (leaked.count, plan.hang_first_runs + 1)
    progress(f"{HANG_FIRST}: baseline, one request (capped at {plan.hang_cap} s)")
    timeout = float(DEFAULT_POSTGREST_CLIENT_TIMEOUT)
    wall, stall = await _baseline_first_request(infra, client, "hang", plan.hang_cap)
    how = f"{crash_after} requests x the {timeout:.0f} s default read timeout, then the first model read raises"
    hung = Derived(timeout * crash_after, crash_after, timeout, wall, stall, plan.hang_cap, how)
    report.rows.append(Row(HANG_FIRST, BASELINE, derived=hung))
    report.rows.append(Row(HANG_OPEN, BASELINE, derived=hung))  # no breaker: every call waits again


async def run_all(infra: Infra, plan: Plan, progress: Callable[[str], None]) -> Report:
    """Every scenario, in an order that leaves the database healthy at the end."""
    report = Report(plan)
    started = time.perf_counter()
    client = baseline.create_baseline_client(infra.url, infra.key)
    try:
        for latency in (0.0, 0.02):
            await healthy(report, infra, client, latency, progress)
            scenario = HEALTHY_20 if latency else HEALTHY_0
            report.processes += healthy_processes(infra, scenario, plan.process_runs, progress, latency)
        progress("warm path throughput and peak memory")
        report.warm_rate = await warm_rate(infra, plan.warm_rate_calls)
        report.peak_memory = await peak_memory(infra, client)
        await outages(report, infra, client, progress)
        for scenario, mode in ((REFUSED, "refuse"), (HANGING, "hang")):
            report.processes += outage_processes(infra, scenario, mode, plan.outage_processes, progress)
    finally:
        infra.set_mode("pass")
        baseline.close_baseline_client(client)
    report.seconds = time.perf_counter() - started
    return report
