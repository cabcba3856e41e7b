"""The benchmark runs in quick mode, so it cannot rot. No assertion on absolute times: machines are noisy."""

from __future__ import annotations

import math

import pytest

from benchmarks.baseline import requests_per_resolution, requests_until_crash
from benchmarks.processes import PROC_BASELINE, PROC_COLD, PROC_FIRST, PROC_LATER, PROC_PREWARMED, PROC_TOGETHER
from benchmarks.report import PAGE_INTRO, page, render, targets
from benchmarks.run import run_benchmarks
from benchmarks.scenarios import (
    BASELINE,
    COLD,
    COLD_HTTP1,
    FRESH,
    HANG_FIRST,
    HANG_OPEN,
    HANGING,
    HEALTHY_0,
    HEALTHY_20,
    OPEN_CACHED,
    OPEN_FRESH,
    QUICK,
    REFUSED,
    WARM,
    Report,
)

COMPONENTS = 13  # theme, 9 nodes, 3 models: one banner each per incident per machine
EXPECTED_ROWS = {
    (HEALTHY_0, BASELINE),
    (HEALTHY_0, COLD),
    (HEALTHY_0, COLD_HTTP1),
    (HEALTHY_0, FRESH),
    (HEALTHY_0, WARM),
    (HEALTHY_20, BASELINE),
    (HEALTHY_20, COLD),
    (HEALTHY_20, COLD_HTTP1),
    (HEALTHY_20, FRESH),
    (HEALTHY_20, WARM),
    (REFUSED, BASELINE),
    (REFUSED, COLD),
    (HANG_FIRST, BASELINE),
    (HANG_FIRST, COLD),
    (HANG_OPEN, BASELINE),
    (HANG_OPEN, OPEN_FRESH),
    (HANG_OPEN, OPEN_CACHED),
}
EXPECTED_PROCESS_ROWS = {
    *(
        (scenario, reader)
        for scenario in (HEALTHY_0, HEALTHY_20)
        for reader in (PROC_BASELINE, PROC_COLD, PROC_PREWARMED)
    ),
    *((scenario, reader) for scenario in (REFUSED, HANGING) for reader in (PROC_FIRST, PROC_LATER, PROC_TOGETHER)),
}


@pytest.fixture(scope="module")
def report() -> Report:
    return run_benchmarks(quick=True)


def test_every_scenario_and_reader_is_measured(report: Report) -> None:
    """Every scenario and reader has a row with finite, positive times; outage baselines are derived."""
    assert {(r.scenario, r.reader) for r in report.rows} == EXPECTED_ROWS
    for row in report.rows:
        if row.reader == BASELINE and row.scenario not in (HEALTHY_0, HEALTHY_20):
            assert row.derived is not None and row.runs is None
            continue
        runs = row.runs
        assert runs is not None and runs.n >= 2
        assert len(runs.walls) == len(runs.stalls) == len(runs.requests) == runs.n
        assert all(math.isfinite(w) and w > 0 for w in runs.walls)
        assert all(math.isfinite(s) and s >= 0 for s in runs.stalls)
        assert 0 < runs.median <= runs.p99


def test_database_requests_per_resolution(report: Report) -> None:
    """The N+1 baseline makes 22 round trips, the package 5, a cache hit none; outages send nothing more."""
    requests = {(r.scenario, r.reader): r.runs.requests for r in report.rows if r.runs is not None}
    for scenario in (HEALTHY_0, HEALTHY_20):
        assert set(requests[scenario, BASELINE]) == {requests_per_resolution()} == {22}
        assert set(requests[scenario, COLD]) == set(requests[scenario, COLD_HTTP1]) == {5}
        assert set(requests[scenario, FRESH]) == {5}
        assert set(requests[scenario, WARM]) == {0}
    assert set(requests[REFUSED, COLD]) == {0}
    assert set(requests[HANG_FIRST, COLD]) == {1}  # HTTP/2: the five requests wait on one hung connection
    assert set(requests[HANG_OPEN, OPEN_FRESH]) == set(requests[HANG_OPEN, OPEN_CACHED]) == {0}


def test_a_cold_read_costs_one_tls_handshake_not_five(report: Report) -> None:
    """Over TLS with HTTP/2 offered, the package's cold read opens one connection; an HTTP/1.1 client opens five."""
    handshakes = {(r.scenario, r.reader): r.runs.handshakes for r in report.rows if r.runs is not None}
    for scenario in (HEALTHY_0, HEALTHY_20):
        assert set(handshakes[scenario, COLD]) == {1}
        assert set(handshakes[scenario, COLD_HTTP1]) == {5}
        assert set(handshakes[scenario, FRESH]) == set(handshakes[scenario, WARM]) == {0}


def test_per_process_rows_are_measured(report: Report) -> None:
    """Every per-process row has one finite resolution time and import time per process."""
    assert {(r.scenario, r.reader) for r in report.processes} == EXPECTED_PROCESS_ROWS
    for row in report.processes:
        assert row.n == {PROC_FIRST: 1, PROC_LATER: QUICK.outage_processes - 1}.get(
            row.reader, QUICK.outage_processes if row.reader == PROC_TOGETHER else QUICK.process_runs
        )
        assert all(math.isfinite(p.wall) and p.wall > 0 and p.imported > 0 for p in row.pickups)
        assert f"| {row.scenario} | {row.reader} | {row.n} |" in render(report)


def test_a_process_after_prewarm_is_served_from_the_machine_store(report: Report) -> None:
    """A new process after a prewarm reads nothing from the database; one without reads once over one connection."""
    for scenario in (HEALTHY_0, HEALTHY_20):
        warm = report.process_row(scenario, PROC_PREWARMED)
        assert (warm.requests, warm.connections, warm.handshakes, warm.records) == (0, 0, 0, 0)
        cold = report.process_row(scenario, PROC_COLD)
        assert (cold.requests, cold.connections, cold.handshakes) == (5 * cold.n, cold.n, cold.n)
        base = report.process_row(scenario, PROC_BASELINE)
        assert base.requests == requests_per_resolution() * base.n and base.handshakes == base.n


def test_an_outage_is_announced_once_per_machine(report: Report) -> None:
    """An outage gets one banner per component per machine, in a row and at once; later processes skip the database."""
    for scenario in (REFUSED, HANGING):
        first = report.process_row(scenario, PROC_FIRST)
        later = report.process_row(scenario, PROC_LATER)
        together = report.process_row(scenario, PROC_TOGETHER)
        assert first.banners == COMPONENTS and later.banners == 0
        # At once: one set, plus one per process whose store operation timed out in the burst (it then reads alone).
        assert together.banners >= COMPONENTS and together.banners % COMPONENTS == 0
        assert all(p.degraded for row in (first, later, together) for p in row.pickups)
        assert first.requests == later.requests == together.requests == 0
    assert report.process_row(REFUSED, PROC_FIRST).connections == 0  # nothing listens
    assert report.process_row(HANGING, PROC_FIRST).connections == 1  # one connection, hung in its handshake
    assert report.process_row(HANGING, PROC_LATER).connections == 0  # the machine's breaker is open
    assert report.process_row(HANGING, PROC_TOGETHER).connections >= 1  # one process reads, the others wait for it


def test_baseline_outage_figures_are_derived_from_the_client_defaults(report: Report) -> None:
    """The baseline's outage figures are its client's retry sleeps and read timeout times the requests it sends."""
    refused = report.row(REFUSED, BASELINE).derived
    hung = report.row(HANG_FIRST, BASELINE).derived
    assert refused is not None and hung is not None
    assert refused.per_request == 7.0 and refused.wall == 7.0 * requests_until_crash()
    assert hung.per_request == 120.0 and hung.wall == 120.0 * requests_until_crash()
    assert refused.measured_stall > 0 and hung.measured_stall > 0  # the sync client blocked the loop
    assert report.row(HANG_OPEN, BASELINE).derived == hung


def test_report_renders_the_table_ratios_and_extras(report: Report) -> None:
    """The rendered figures hold every row, the ratios, the extras and one line per target."""
    assert report.warm_rate > 0
    assert set(report.peak_memory) == {BASELINE, COLD, FRESH} and all(v > 0 for v in report.peak_memory.values())
    text = render(report)
    for scenario, reader in EXPECTED_ROWS:
        assert f"| {scenario} | {reader} |" in text
    assert "| scenario | baseline / package (median wall) |" in text
    assert text.count("×") >= 5
    assert "resolutions/s" in text and "KiB" in text and "Sockets left open" in text
    assert len([line for line in text.splitlines() if line.startswith(("- met:", "- MISSED:"))]) == len(targets(report))


def test_page_is_the_fixed_text_then_the_run(report: Report) -> None:
    """The published page is the fixed text followed by this run's figures, stamped with machine and date."""
    text = page(report)
    figures = render(report).split("\n", 1)[1]  # below the first line, which carries the minute of rendering
    assert text.startswith(PAGE_INTRO) and text.endswith(figures)
    assert text.removeprefix(PAGE_INTRO).startswith("Benchmark run ")
    assert " UTC, quick mode, " in text and "CPUs" in text and "Python " in text
