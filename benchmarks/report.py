"""Render a benchmark :class:`~benchmarks.scenarios.Report` as Markdown, with ratios and target checks.

:func:`render` gives the figures alone; :func:`page` wraps them in the fixed text of
``docs/benchmarks.md`` (what is measured, how, and the limits of the setup), so the
published page is always the output of one run and cannot drift from the code.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import version

from .measure import Runs
from .processes import PROC_BASELINE, PROC_COLD, PROC_FIRST, PROC_LATER, PROC_PREWARMED, PROC_TOGETHER, ProcessRow
from .scenarios import (
    BASELINE,
    COLD,
    COLD_HTTP1,
    DEADLINE,
    FRESH,
    HANG_FIRST,
    HANG_OPEN,
    HANGING,
    HEALTHY_0,
    HEALTHY_20,
    OPEN_CACHED,
    OPEN_FRESH,
    PROCESS_SCENARIOS,
    REFUSED,
    SCENARIOS,
    WARM,
    Report,
    Row,
)

ROUND_TRIP = 0.020
"""The latency added per request in the +20 ms scenario."""


def duration(seconds: float) -> str:
    """A compact human duration: µs, ms, s or min."""
    if seconds >= 600:
        return f"{seconds / 60:.0f} min"
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 0.001:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def stall(seconds: float) -> str:
    """A loop stall; below the 1 ms ticker's resolution it reads ``< 1 ms``."""
    return "< 1 ms" if seconds < 0.001 else duration(seconds)


def _ratio(value: float) -> str:
    return f"{value:,.0f}×" if value >= 100 else f"{value:.1f}×"


def _row_cells(row: Row) -> list[str]:
    if row.derived is not None:
        d = row.derived
        return [
            row.scenario,
            row.reader,
            "derived ‡",
            f"{duration(d.wall)} ‡",
            "—",
            f"{d.requests} ‡",
            "—",
            f"{duration(d.wall)} ‡",
            f"{duration(d.wall)} ‡",
        ]
    runs = row.runs
    assert runs is not None
    per = f"{runs.requests_per_resolution:g}" + (" conn." if runs.counted == "connections" else "")
    return [
        row.scenario,
        row.reader,
        str(runs.n),
        duration(runs.median),
        duration(runs.p99),
        per,
        f"{runs.handshakes_per_resolution:g}",
        stall(runs.median_stall),
        stall(runs.worst_stall),
    ]


def cpu_model() -> str:
    """The processor's model name where the system tells it (Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def header(report: Report) -> list[str]:
    now = datetime.now(timezone.utc)
    cpu = cpu_model()
    return [
        f"Benchmark run {now:%Y-%m-%d %H:%M} UTC, {report.plan.name} mode, {report.seconds:.0f} s; "
        f"Python {platform.python_version()}, supabase {version('supabase')}, httpx {version('httpx')}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs" + (f" ({cpu})." if cpu else "."),
        "Database: throwaway PostgreSQL behind the PostgREST stand-in, in a separate process, reached through "
        "the tests' fault proxy on 127.0.0.1. Package deadline "
        f"{DEADLINE:g} s.",
    ]


def table(report: Report) -> list[str]:
    lines = [
        "| scenario | reader | runs | wall, median | wall, p99 | DB requests / resolution "
        "| TLS handshakes / resolution | loop stall, median | loop stall, worst |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines += ["| " + " | ".join(_row_cells(row)) + " |" for row in ordered(report)]
    return lines


def process_table(report: Report) -> list[str]:
    """The per-process rows: one pickup per new process, the database traffic of all of them."""
    lines = [
        "| scenario | processes | n | resolve, median | resolve, p99 | import, median | DB requests "
        "| connections | TLS handshakes | banners | log records | log lines |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in ordered_processes(report):
        lines.append(
            f"| {row.scenario} | {row.reader} | {row.n} | {duration(row.median)} | {duration(row.p99)} "
            f"| {duration(row.import_median)} | {row.requests} | {row.connections} | {row.handshakes} "
            f"| {row.banners} | {row.records} | {row.lines} |"
        )
    return lines


_PROCESS_ORDER = (PROC_BASELINE, PROC_COLD, PROC_PREWARMED, PROC_FIRST, PROC_LATER, PROC_TOGETHER)


def ordered_processes(report: Report) -> list[ProcessRow]:
    """Per-process rows grouped by scenario, in :data:`PROCESS_SCENARIOS` order."""
    return sorted(report.processes, key=lambda r: (PROCESS_SCENARIOS.index(r.scenario), _PROCESS_ORDER.index(r.reader)))


def ordered(report: Report) -> list[Row]:
    """Rows grouped by scenario (in :data:`SCENARIOS` order), the baseline first in each."""
    return sorted(report.rows, key=lambda r: (SCENARIOS.index(r.scenario), r.reader != BASELINE))


def ratios(report: Report) -> list[str]:
    lines = ["| scenario | baseline / package (median wall) |", "|---|---|"]
    for row in ordered(report):
        if row.reader != BASELINE:
            continue
        base = row.median
        parts = [
            f"{r.reader.removeprefix('package, ')}: {_ratio(base / r.median)}"
            for r in report.rows
            if r.scenario == row.scenario and r.reader != BASELINE
        ]
        mark = " (baseline derived ‡)" if row.derived else ""
        lines.append(f"| {row.scenario} | {'; '.join(parts)}{mark} |")
    return lines


def extras(report: Report) -> list[str]:
    mem = report.peak_memory
    return [
        f"- Warm path (TTL hit, back to back): **{report.warm_rate:,.0f} resolutions/s** "
        f"({1e6 / report.warm_rate:.1f} µs each).",
        "- Peak Python heap of one resolution (tracemalloc; OpenSSL's own allocations are not counted): "
        + "; ".join(f"{reader} = {value / 1024:,.0f} KiB" for reader, value in mem.items())
        + ".",
        f"- Sockets left open by a TLS handshake the deadline cancelled (closed later by the garbage collector, "
        f"with a `ResourceWarning`): {report.hung_sockets[0]} after {report.hung_sockets[1]} resolutions against "
        "the hanging database.",
    ]


@dataclass(frozen=True)
class Target:
    what: str
    met: bool
    value: str


def _stall(runs: Runs) -> str:
    text = f"worst {stall(runs.worst_stall)}, median {stall(runs.median_stall)}"
    pause = runs.gc_pause_of_worst_stall
    if pause >= 0.001 and pause >= runs.worst_stall / 2:
        text += f" (the worst run included a {duration(pause)} garbage-collector pause)"
    return text


def targets(report: Report) -> list[Target]:
    """The issue's targets, checked against the measurements."""

    def runs(scenario: str, reader: str) -> Runs:
        measured = report.row(scenario, reader).runs
        assert measured is not None
        return measured

    base20 = report.row(HEALTHY_20, BASELINE).median
    out: list[Target] = []
    for reader in (COLD, FRESH):
        row = runs(HEALTHY_20, reader)
        out.append(
            Target(
                f"+20 ms, {reader}: >= 10x faster than the baseline",
                base20 / row.median >= 10,
                _ratio(base20 / row.median),
            )
        )
        out.append(
            Target(
                f"+20 ms, {reader}: median within 2 round trips ({duration(2 * ROUND_TRIP)})",
                row.median <= 2 * ROUND_TRIP,
                f"median {duration(row.median)}, p99 {duration(row.p99)}",
            )
        )
    refused = runs(REFUSED, COLD)
    out.append(Target("refused: under 50 ms at p99", refused.p99 < 0.050, duration(refused.p99)))
    first = runs(HANG_FIRST, COLD)
    out.append(
        Target(
            f"hanging, first call: within the {DEADLINE:g} s deadline at p99",
            first.p99 <= DEADLINE,
            duration(first.p99),
        )
    )
    for reader in (OPEN_FRESH, OPEN_CACHED):
        row = runs(HANG_OPEN, reader)
        out.append(Target(f"hanging, breaker open, {reader}: under 5 ms at p99", row.p99 < 0.005, duration(row.p99)))
    for each in ordered(report):
        if each.runs is not None and each.reader != BASELINE:
            out.append(
                Target(
                    f"loop stall < 5 ms: {each.scenario}, {each.reader}",
                    each.runs.worst_stall < 0.005,
                    _stall(each.runs),
                )
            )
    out.append(
        Target("warm path: over 100,000 resolutions/s", report.warm_rate > 100_000, f"{report.warm_rate:,.0f}/s")
    )
    out += process_targets(report, base20)
    return out


def process_targets(report: Report, base20: float) -> list[Target]:
    """The per-process targets: pickup after prewarm, later processes in an outage, handshakes per cold read."""
    out: list[Target] = []
    for scenario in (HEALTHY_0, HEALTHY_20):
        row = report.process_row(scenario, PROC_PREWARMED)
        out.append(
            Target(
                f"{scenario}, {PROC_PREWARMED}: pickup under 5 ms at p99",
                row.p99 < 0.005,
                f"median {duration(row.median)}, p99 {duration(row.p99)}",
            )
        )
    for scenario in (REFUSED, HANGING):
        row = report.process_row(scenario, PROC_LATER)
        out.append(
            Target(
                f"{scenario}, {PROC_LATER}: under 20 ms at p99",
                row.p99 < 0.020,
                f"median {duration(row.median)}, p99 {duration(row.p99)}",
            )
        )
    base_process = report.process_row(HEALTHY_20, PROC_BASELINE).median
    for reader in (PROC_COLD, PROC_PREWARMED):
        row = report.process_row(HEALTHY_20, reader)
        out.append(
            Target(
                f"+20 ms, {reader}: >= 10x faster than the baseline",
                base20 / row.median >= 10,
                f"{_ratio(base20 / row.median)} against the baseline's resolution in its warmed-up process, "
                f"{_ratio(base_process / row.median)} against {PROC_BASELINE}",
            )
        )
    for scenario in (HEALTHY_0, HEALTHY_20):
        measured = report.row(scenario, COLD).runs
        assert measured is not None
        out.append(
            Target(
                f"{scenario}, {COLD}: one TLS handshake per cold read",
                set(measured.handshakes) == {1},
                f"{measured.handshakes_per_resolution:g} (HTTP/1.1 client: "
                f"{report.row(scenario, COLD_HTTP1).runs.handshakes_per_resolution:g})",  # type: ignore[union-attr]
            )
        )
        cold = report.process_row(scenario, PROC_COLD)
        out.append(
            Target(
                f"{scenario}, {PROC_COLD}: one TLS handshake per process",
                cold.handshakes == cold.n,
                f"{cold.handshakes} for {cold.n} processes",
            )
        )
    return out


def footnotes(report: Report) -> list[str]:
    lines = [
        "- Wall time is what the caller waits for one resolution. p99 is nearest-rank; with fewer than 100 "
        'runs it is the maximum. DB requests counts the HTTP requests the stand-in received; "conn." counts '
        "TCP connections the hung proxy accepted (each carries one request that is never answered).",
        "- Loop stall: the largest lateness of a 1 ms ticker task running on the same event loop during a "
        'resolution, median and worst over the runs; "< 1 ms" is below what the ticker resolves. The worst '
        "includes any garbage-collector pause that happened to fall inside a run.",
        f"- {COLD}: a new `Resolver` per resolution (a worker's first call: new HTTP client, new connections). "
        f"{FRESH}: one resolver, `fresh=True` (connections reused). {WARM}: one resolver, TTL cache hit. "
        "The proxy adds latency to requests, not to TCP connects, and the stand-in speaks plain HTTP, so the "
        "handshakes a cold call pays against a real remote database (TCP, TLS) are not in these figures.",
        f"- Breaker open: one resolver whose first call timed out (breaker cool-down raised to 600 s so no "
        f"probe lands inside the measurement). {OPEN_FRESH} skips the cache and reads the snapshot; "
        f"{OPEN_CACHED} is an ordinary call served the degraded config from the cache.",
    ]
    for row in ordered(report):
        if row.derived is None or row.scenario == HANG_OPEN:
            continue
        d = row.derived
        capped = (
            f"the fault was lifted after {d.cap:g} s (cap) and the client's retry then succeeded"
            if d.cap is not None
            else "it ran to completion"
        )
        lines.append(
            f"- ‡ Baseline, {row.scenario}: {d.how} = {duration(d.wall)} with the event loop blocked throughout. "
            f"Measured: one request took {duration(d.measured_wall)} and stalled the loop for "
            f"{duration(d.measured_stall)}; {capped}."
        )
    lines.append(f"- ‡ Baseline, {HANG_OPEN}: the original has no breaker, so every call waits as the first did.")
    return lines


def render(report: Report) -> str:
    checks = targets(report)
    lines = [
        *header(report),
        "",
        *table(report),
        "",
        *ratios(report),
        "",
        "Per-process pickups (a new process per call, sharing the machine-wide store; see the notes):",
        "",
        *process_table(report),
        "",
        *extras(report),
        "",
        "Targets (informational; never gates CI):",
        "",
    ]
    lines += [f"- {'met' if t.met else 'MISSED'}: {t.what}: {t.value}" for t in checks]
    lines += ["", "Notes:", "", *footnotes(report)]
    return "\n".join(lines) + "\n"


PAGE_INTRO = """\
# Benchmarks: resolution cost against the original way of reading

What a user of this package waits for at call pickup, and what a database outage does to that wait and to
the event loop that serves every other call on the worker, measured against a reader built the way the
original system read its configuration.

This page is written by `python -m benchmarks.run`: the text around the figures is fixed, the figures,
the machine and the date come from the run shown under [Results](#results). Run the command again to
replace it.

## Run it

```bash
pip install -e ".[test]"                      # psycopg and the test support code are needed
python -m benchmarks.run                      # full run (about a minute or two); rewrites docs/benchmarks.md
python -m benchmarks.run --out -              # full run, the page on stdout instead
python -m benchmarks.run --quick              # a few runs per scenario, seconds; the page on stdout
```

Progress goes to stderr. The quick mode's figures are too few to quote, so it never writes the page unless
`--out` names a file. The command needs the PostgreSQL server binaries
(`apt-get install -y --no-install-recommends postgresql`), as the tests do; `PG_BIN` and
`TEST_DATABASE_URL` work the same way. It starts a throwaway PostgreSQL with the project's migrations,
seeds it from the shipped `reverse_mortgage` snapshot, and serves it with the tests' PostgREST stand-in
behind the tests' fault proxy, all on 127.0.0.1 and in a child process (so their threads do not compete
with the measured event loop for the GIL). Everything is stopped at the end.

The test suite runs the quick mode (`tests/test_benchmarks.py`) and checks that every row is produced and
that the request counts are right (22 per baseline resolution, 5 per package read, 0 per cache hit). It
asserts nothing about times: machines are noisy. The targets are printed, never enforced.

## What is measured

Readers:

- **baseline**: the original's way. One process-wide *synchronous* supabase client with default options
  (built-in retries: 1 + 2 + 4 s of `time.sleep` on a refused connection; 120 s read timeout), called
  directly inside an `async def`. N+1 reads: the theme, then for each of the 9 nodes the node row and the
  theme again, then each model table, 22 requests in all. Theme and node reads fall back on error; model
  reads are outside any `try`, as in the original, so an outage raises. The original fetched a node with
  the `get_node_prompt` RPC; the stand-in serves tables and views, so the baseline reads the same row from
  the `active_node_prompts` view, also one request.
- **package, cold**: a new `Resolver(database=SupabaseSource(url, key), deadline=1.0)` per resolution:
  empty caches, a new HTTP client and new connections, i.e. a worker's first call.
- **package, fresh read**: one resolver, `resolve(..., fresh=True)`: cache bypassed, pooled connections.
  This is the cost of every read after the first (and of a stale-while-revalidate refresh, which callers do
  not wait for).
- **package, warm**: one resolver, TTL cache hit (what almost every call pickup gets).

Scenarios: a healthy database with 0 ms and with 20 ms added per request (the fault proxy's `delay`
mode; a database in another region); connection refused (`refuse`); a hanging database (`hang`): the first
call, and calls while the circuit breaker is open.

Columns: wall time per resolution (median and nearest-rank p99), database requests per resolution (counted
by the stand-in; for the hang, connections the hung proxy accepted), and the event-loop stall: the
lateness of a ticker task sleeping 1 ms on the same loop during each resolution, median and worst. Also:
peak Python heap of one resolution (tracemalloc) and warm-path resolutions per second.

The baseline's outage figures are **derived**, not waited for: 20 requests (until the first model read
raises) times 7 s of retry sleeps (refused) or the 120 s default timeout (hang). One request is measured
to confirm it: under the refused fault it runs to completion, with the loop blocked throughout; under the
hang the fault is lifted after a 3 s cap.

## Reading the figures

- Against the baseline, 22 requests become 5 (one per group, all in flight at once), and a sync client
  that blocks the loop for the whole read becomes a read that leaves the loop free. An outage that would
  block call pickup for minutes (refused) or most of an hour (hang), and then crash on the model read,
  costs one failed connect or one deadline, and well under a millisecond once the breaker is open.
- The hanging database's first call ends just under the deadline: the database gets 95 % of it, the
  rest is kept for the last-known-good copy and the snapshot.
- The first resolution of an outage also formats banner traces on the loop: it logs a banner per
  component, and the trace of each failed request (5 at most: the node banners share one) is formatted by
  whatever handler the worker attached (Python 3.11 re-reads source lines for the caret markers). That is
  most of the stall of the refused row; later resolutions in the same outage log short counted lines.
- **Garbage-collector pauses.** A loop-stall target missed only in the worst case usually falls in a run
  that contained a collection (the target line then names the pause): a full (generation 2) collection of
  the benchmark process takes tens of milliseconds. That is the process, not the resolver, and a real
  worker has a larger heap; `gc.freeze()` after start-up is the usual remedy. Where no pause is named,
  the run does not identify the cause; every figure includes whatever else the machine ran at the time.
- Before the TLS context was built once per process and off the loop, loading the CA bundle blocked the
  loop once per new client: a worker's first call at +20 ms then measured 52-69 ms (7-10x) with a
  20-40 ms stall.

Limits of the setup: the stand-in is a Python PostgREST look-alike, not PostgREST; the proxy delays
requests but not TCP connects, and everything is plain HTTP on loopback, so the TCP and TLS handshakes a
cold call pays against a real remote database are not included; on a shared machine absolute figures
move by tens of percent between runs (ratios and request counts are stable).

## Results

"""


def page(report: Report) -> str:
    """The whole ``docs/benchmarks.md`` page: the fixed text, then this run's figures."""
    return PAGE_INTRO + render(report)


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)
