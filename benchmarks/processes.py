"""Per-process scenarios: a new process per call pickup, sharing the machine-wide store as LiveKit's calls do.

Each pickup is :mod:`benchmarks.pickup` in a new interpreter, configured only
through the environment (``Resolver.from_settings``) with a cache directory
shared by the processes of one series. The processes are started and import
the package first; the measured resolutions then start on a signal, one after
another or all at once. The database side counts connections, TLS handshakes
and requests over the whole series; each process counts its log records.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .infra import KEY, REPO_ROOT, VERTICAL, Infra
from .measure import percentile

__all__ = [
    "PROC_BASELINE",
    "PROC_COLD",
    "PROC_FIRST",
    "PROC_LATER",
    "PROC_PREWARMED",
    "PROC_TOGETHER",
    "Pickup",
    "ProcessRow",
    "healthy_processes",
    "outage_processes",
]

PROC_BASELINE = "baseline, new process"
PROC_COLD = "process, no prewarm (empty store)"
PROC_PREWARMED = "process, after prewarm (store hit)"
PROC_FIRST = "process, first of a series"
PROC_LATER = "processes 2-N, one after another"
PROC_TOGETHER = "N processes at once"

PREWARM_TTL = 60.0
"""TTL for the prewarmed rows, so a slow machine cannot let the prewarmed copy expire before the pickup."""


@dataclass(frozen=True)
class Pickup:
    """One process's report (see :mod:`benchmarks.pickup`)."""

    wall: float
    imported: float
    degraded: bool
    records: int
    banners: int
    lines: int


@dataclass
class ProcessRow:
    """Processes of one kind in one scenario, and the database traffic they caused together.

    Attributes:
        scenario: The database condition.
        reader: Which processes (one of the ``PROC_*`` names).
        pickups: Each process's report, in start order.
        requests: HTTP requests the stand-in received from these processes.
        connections: TCP connections the proxy accepted from them.
        handshakes: TLS handshakes the front completed for them.
    """

    scenario: str
    reader: str
    pickups: list[Pickup] = field(default_factory=list)
    requests: int = 0
    connections: int = 0
    handshakes: int = 0

    @property
    def n(self) -> int:
        return len(self.pickups)

    @property
    def walls(self) -> list[float]:
        return [p.wall for p in self.pickups]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def p99(self) -> float:
        return percentile(self.walls, 99)

    @property
    def import_median(self) -> float:
        return statistics.median(p.imported for p in self.pickups)

    @property
    def banners(self) -> int:
        return sum(p.banners for p in self.pickups)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.pickups)

    @property
    def lines(self) -> int:
        return sum(p.lines for p in self.pickups)


class _Process:
    """A started :mod:`benchmarks.pickup` process that has imported the package and waits for the signal."""

    def __init__(self, cache_dir: str, infra: Infra, ttl: float | None, *, baseline: bool = False) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_FALLBACK_", "SUPABASE_"))}
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
            SUPABASE_URL=infra.url,
            SUPABASE_SERVICE_KEY=KEY,
            LIVEKIT_FALLBACK_CACHE_DIR=cache_dir,
            SSL_CERT_FILE=infra.ca_bundle,
        )
        if ttl is not None:
            env["LIVEKIT_FALLBACK_TTL"] = str(ttl)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.pickup", *(["--baseline"] if baseline else []), VERTICAL],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._line()  # {"ready": true}

    def _line(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"pickup process exited with status {self._proc.wait(timeout=30)} (see stderr)")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def go(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write("go\n")
        self._proc.stdin.flush()

    def result(self) -> Pickup:
        reply = self._line()
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.close()
        self._proc.stdout.close()
        self._proc.wait(timeout=30)
        return Pickup(
            reply["wall"], reply["imported"], reply["degraded"], reply["records"], reply["banners"], reply["lines"]
        )


def _run(
    infra: Infra, cache_dir: str, count: int, *, together: bool, ttl: float | None = None, baseline: bool = False
) -> tuple[list[Pickup], int, int, int]:
    """Starts ``count`` processes, then signals them one after another (or all at once)."""
    procs = [_Process(cache_dir, infra, ttl, baseline=baseline) for _ in range(count)]
    before = infra.counters()
    if together:
        for proc in procs:
            proc.go()
        pickups = [proc.result() for proc in procs]
    else:
        pickups = []
        for proc in procs:
            proc.go()
            pickups.append(proc.result())
    after = infra.counters()
    return (
        pickups,
        after.requests - before.requests,
        after.connections - before.connections,
        after.handshakes - before.handshakes,
    )


def _row(scenario: str, reader: str, measured: tuple[list[Pickup], int, int, int], *, degraded: bool) -> ProcessRow:
    pickups, requests, connections, handshakes = measured
    wrong = [p for p in pickups if p.degraded != degraded]
    if wrong:
        raise RuntimeError(f"benchmark invalid: {scenario}, {reader}: {len(wrong)} process(es) not as expected")
    return ProcessRow(scenario, reader, pickups, requests, connections, handshakes)


def healthy_processes(
    infra: Infra, scenario: str, runs: int, progress: Callable[[str], None], latency: float = 0.0
) -> list[ProcessRow]:
    """A new process per pickup on a healthy database: the original's, and the package's without and after a prewarm."""
    if latency:
        infra.set_mode("delay", latency)
    else:
        infra.set_mode("pass")
    progress(f"{scenario}: baseline processes")
    with tempfile.TemporaryDirectory() as cache_dir:
        base = _row(
            scenario, PROC_BASELINE, _run(infra, cache_dir, runs, together=False, baseline=True), degraded=False
        )
    progress(f"{scenario}: processes without prewarm")
    cold = ProcessRow(scenario, PROC_COLD)
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache_dir:
            one = _row(scenario, PROC_COLD, _run(infra, cache_dir, 1, together=False), degraded=False)
        cold.pickups += one.pickups
        cold.requests += one.requests
        cold.connections += one.connections
        cold.handshakes += one.handshakes
    progress(f"{scenario}: processes after prewarm")
    with tempfile.TemporaryDirectory() as cache_dir:
        _run(infra, cache_dir, 1, together=False, ttl=PREWARM_TTL)  # the prewarm: fills the machine's store
        warm = _row(
            scenario, PROC_PREWARMED, _run(infra, cache_dir, runs, together=False, ttl=PREWARM_TTL), degraded=False
        )
    return [base, cold, warm]


def outage_processes(
    infra: Infra, scenario: str, mode: str, count: int, progress: Callable[[str], None]
) -> list[ProcessRow]:
    """``count`` processes one after another, then ``count`` at once, each series on an empty store."""
    infra.set_mode(mode)
    try:
        progress(f"{scenario}: {count} processes one after another")
        with tempfile.TemporaryDirectory() as cache_dir:
            procs = [_Process(cache_dir, infra, None) for _ in range(count)]
            rows = []
            for index, proc in enumerate(procs):
                before = infra.counters()
                proc.go()
                pickup = proc.result()
                after = infra.counters()
                one = ProcessRow(
                    scenario,
                    PROC_FIRST if index == 0 else PROC_LATER,
                    [pickup],
                    after.requests - before.requests,
                    after.connections - before.connections,
                    after.handshakes - before.handshakes,
                )
                rows.append(one)
        first, later = rows[0], ProcessRow(scenario, PROC_LATER)
        for one in rows[1:]:
            later.pickups += one.pickups
            later.requests += one.requests
            later.connections += one.connections
            later.handshakes += one.handshakes
        progress(f"{scenario}: {count} processes at once")
        with tempfile.TemporaryDirectory() as cache_dir:
            together = _row(scenario, PROC_TOGETHER, _run(infra, cache_dir, count, together=True), degraded=True)
    finally:
        infra.set_mode("pass")
    for row in (first, later):
        if any(not p.degraded for p in row.pickups):
            raise RuntimeError(f"benchmark invalid: {scenario}, {row.reader}: a healthy config in an outage")
    return [first, later, together]
