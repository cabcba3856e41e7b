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
        "Database: throwaway PostgreSQL behind the PostgREST stand-in, in a separate process, reached over HTTPS "
        "(HTTP/2 offered by ALPN, certificate from a CA made for the run) through the tests' fault proxy on "
        f"127.0.0.1. Package deadline {DEADLINE:g} s.",
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
        "TCP connections the hung proxy accepted (each holds a TLS handshake that is never answered). TLS "
        "handshakes are counted by the TLS front when they complete.",
        "- Loop stall: the largest lateness of a 1 ms ticker task running on the same event loop during a "
        'resolution, median and worst over the runs; "< 1 ms" is below what the ticker resolves. The worst '
        "includes any garbage-collector pause that happened to fall inside a run.",
        f"- {COLD}: a new `Resolver` per resolution (a worker's first call: new HTTP client, new connections). "
        f"{FRESH}: one resolver, `fresh=True` (connections reused). {WARM}: one resolver, TTL cache hit. "
        f"{COLD_HTTP1}: as cold, through an HTTP/1.1-only client with the package's other settings, as the "
        "package built it before it asked for HTTP/2.",
        "- Per-process rows: each process is a new interpreter configured only through the environment "
        "(`Resolver.from_settings`, machine-wide store on); resolve is the one `resolve()` call, import is the "
        "interpreter start and the package import. Processes of one row share a cache directory and are "
        "started and imported before the first is signalled. After prewarm: one process resolved first into "
        f"the same directory (TTL raised to 60 s so a slow machine cannot expire it). {PROC_BASELINE}: the "
        "original's client created at import, then one N+1 read. Outage series start on an empty store: "
        "the first process meets the outage, the later ones find the machine's state it left. Banners are "
        "full fallback banners; log records include the counted repeat lines and any notice; log lines count "
        "the formatted text, traces included.",
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
python -m benchmarks.run                      # full run (a few minutes); rewrites docs/benchmarks.md
python -m benchmarks.run --out -              # full run, the page on stdout instead
python -m benchmarks.run --quick              # a few runs per scenario, under a minute; the page on stdout
```

Progress goes to stderr. The quick mode's figures are too few to quote, so it never writes the page unless
`--out` names a file. The command needs the PostgreSQL server binaries
(`apt-get install -y --no-install-recommends postgresql`), as the tests do; `PG_BIN` and
`TEST_DATABASE_URL` work the same way. It starts a throwaway PostgreSQL with the project's migrations,
seeds it from the shipped `reverse_mortgage` snapshot, and serves it with the tests' PostgREST stand-in
behind a TLS front and the tests' fault proxy, all on 127.0.0.1 and in a child process (so their threads do
not compete with the measured event loop for the GIL). Everything is stopped at the end.

The database is reached as a Supabase project is: over HTTPS, with HTTP/2 offered by ALPN. A CA and a
server certificate for 127.0.0.1 are made for each run (the `cryptography` package, a test dependency), and
clients trust it through `SSL_CERT_FILE`, pointed at the usual CA bundle plus that CA (so a client loads
as many certificates as in production). The TLS front (`benchmarks/tls.py`) answers HTTP/2 itself (`h2`)
and relays HTTP/1.1; it counts completed handshakes. The fault proxy's `delay` mode is replaced by a
round-trip model (`benchmarks/latency.py`): every chunk a client sends is delivered the given latency after
it was sent, however many are in flight, and a new connection's first chunk waits one more round trip for
the TCP handshake the kernel has already answered. A new HTTPS connection thus costs TCP 1 + TLS 1.3 1 +
request 1 round trips, as against a remote database.

The test suite runs the quick mode (`tests/test_benchmarks.py`) and checks that every row is produced and
that the request counts are right (22 per baseline resolution, 5 per package read, 0 per cache hit), that
a cold read costs one TLS handshake (five through an HTTP/1.1 client), that a process after prewarm sends
nothing to the database, and that processes meeting an outage one after another log one set of banners per
machine. It asserts nothing about times: machines are noisy. The targets are printed, never enforced.

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
  empty caches, a new HTTP client and a new connection, i.e. a worker's first call. Also measured through
  an HTTP/1.1-only client (the package's client before it asked for HTTP/2): five concurrent requests,
  five connections, five TLS handshakes.
- **package, fresh read**: one resolver, `resolve(..., fresh=True)`: cache bypassed, pooled connections.
  This is the cost of every read after the first (and of a stale-while-revalidate refresh, which callers do
  not wait for).
- **package, warm**: one resolver, TTL cache hit (what almost every call pickup gets).

Per process, as LiveKit runs every call in a process of its own (`benchmarks/pickup.py`): a new
interpreter per pickup, configured only through the environment (`Resolver.from_settings()`, the
machine-wide store in a cache directory the processes of a row share). Rows: the original's reader in a new
process; the package without prewarm (empty store); after prewarm (another process has resolved into the
store; the new process is served from it); and, in each outage, a series of processes on an empty store:
the first, the later ones one after another, and as many again at once. The processes start and import
first, then their resolutions are signalled, so the resolve figure is the `resolve()` call alone; the
import figure (interpreter start plus package import) is shown apart.

Scenarios: a healthy database with 0 ms and with 20 ms round trip (a database in another region);
connection refused (`refuse`); a hanging database (`hang`: connections are accepted, nothing is answered,
not even the TLS handshake): the first call, and calls while the circuit breaker is open.

Columns: wall time per resolution (median and nearest-rank p99), database requests per resolution (counted
by the stand-in; for the hang, connections the hung proxy accepted), TLS handshakes per resolution, and the
event-loop stall: the lateness of a ticker task sleeping 1 ms on the same loop during each resolution,
median and worst. Per process: the resolve and import times, and for the whole row the requests,
connections and handshakes the database side saw and the banners, log records and log lines the processes
wrote. Also: peak Python heap of one resolution (tracemalloc), warm-path resolutions per second, and the
sockets a cancelled TLS handshake left to the garbage collector.

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
- **TLS and HTTP/2.** The package's client asks for HTTP/2 (`http2=True`, as postgrest-py's own default
  client does), so the five requests of a cold read share one connection and one TLS handshake; through an
  HTTP/1.1 client they open five. The gain is handshake CPU on the event loop (the stall columns), four
  sockets fewer per worker, and one hung connection instead of five when the database hangs. The cost, on
  the cold read only: httpcore sends one stream on a new HTTP/2 connection until the server's SETTINGS
  frame arrives, and a server that sends it after the client's Finished (as the front here does) delays
  streams 2-5 by one round trip, so the cold read at +20 ms takes a round trip longer than through five
  parallel HTTP/1.1 connections. Pooled reads are not affected.
- A cold read now pays TCP's and TLS's round trips before its request (three round trips in all), so a
  worker's first call at +20 ms is measured against a baseline whose connection is already open; the fresh
  read (pooled connection) is the like-for-like comparison of the reads themselves.
- **Per process, without prewarm**, the first resolution carries one-time setup: building the HTTP client
  imports httpcore, anyio and h2 on first use and loads the CA bundle (in a thread, off the loop), the
  machine's store file is opened, and the first request runs its code paths for the first time. The
  original-style process creates its client at import, so that part of its cost is in its import column.
  **After prewarm** a new process is served from the machine's store: no connection, a few milliseconds.
- **Outage series.** The breaker is the machine's. A hanging database opens it with one timeout, so the
  processes after the first skip the database. A refused connection fails fast, and the breaker opens after
  three failed reads, so processes 2 and 3 of the series each still pay a cold read in a new process: the
  p99 of the refused row's later processes is theirs. Banners come once per component per incident per
  machine; later processes log nothing until the repeat interval. At once, one process reads and the others
  wait for its result; a process whose store operation exceeds the store's time limit in the burst falls
  back to its in-process path, reads the database itself and logs its own banners (an extra connection
  and an extra set of banners in that row).
- A TLS handshake cancelled by the deadline can leave its socket to the garbage collector (httpx over anyio
  on Python 3.11), which closes it with a `ResourceWarning`; the extras line counts them.

Limits of the setup: the stand-in is a Python PostgREST look-alike, not PostgREST, and the TLS front is a
small Python HTTP/2 server, not Supabase's; the whole round trip is put on the client's way in, and TLS
runs on loopback with a P-256 certificate, so handshake CPU is the client's own and the network's share
is the modelled round trips; on a shared machine absolute figures move by tens of percent between runs
(ratios and request, connection and handshake counts are stable).

## Results

"""


FAILOVER_START = "<!-- failover rows: written by python -m benchmarks.failover -->"
FAILOVER_END = "<!-- end of failover rows -->"


def failover_section(current: str) -> str:
    """The Failover section of the page's current text (measured separately, by ``benchmarks.failover``), or ``""``."""
    if FAILOVER_START in current and FAILOVER_END in current:
        return (
            "\n" + FAILOVER_START + current.split(FAILOVER_START, 1)[1].split(FAILOVER_END, 1)[0] + FAILOVER_END + "\n"
        )
    return ""


def page(report: Report, current: str = "") -> str:
    """The whole ``docs/benchmarks.md`` page: the fixed text, this run's figures, the kept Failover section."""
    return PAGE_INTRO + render(report) + failover_section(current)


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)
