"""The benchmark runs in quick mode, so it cannot rot. No assertion on absolute times: machines are noisy."""

from __future__ import annotations

import math

import pytest

from benchmarks.baseline import requests_per_resolution, requests_until_crash
from benchmarks.report import PAGE_INTRO, page, render, targets
from benchmarks.run import run_benchmarks
from benchmarks.scenarios import (
    BASELINE,
    COLD,
    FRESH,
    HANG_FIRST,
    HANG_OPEN,
    HEALTHY_0,
    HEALTHY_20,
    OPEN_CACHED,
    OPEN_FRESH,
    REFUSED,
    WARM,
    Report,
)

EXPECTED_ROWS = {
    (HEALTHY_0, BASELINE),
    (HEALTHY_0, COLD),
    (HEALTHY_0, FRESH),
    (HEALTHY_0, WARM),
    (HEALTHY_20, BASELINE),
    (HEALTHY_20, COLD),
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


@pytest.fixture(scope="module")
def report() -> Report:
    return run_benchmarks(quick=True)


def test_every_scenario_and_reader_is_measured(report: Report) -> None:
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
        assert set(requests[scenario, COLD]) == {5}
        assert set(requests[scenario, FRESH]) == {5}
        assert set(requests[scenario, WARM]) == {0}
    assert set(requests[REFUSED, COLD]) == {0}
    assert set(requests[HANG_FIRST, COLD]) == {5}  # connections to the hung proxy, one request each
    assert set(requests[HANG_OPEN, OPEN_FRESH]) == set(requests[HANG_OPEN, OPEN_CACHED]) == {0}


def test_baseline_outage_figures_are_derived_from_the_client_defaults(report: Report) -> None:
    refused = report.row(REFUSED, BASELINE).derived
    hung = report.row(HANG_FIRST, BASELINE).derived
    assert refused is not None and hung is not None
    assert refused.per_request == 7.0 and refused.wall == 7.0 * requests_until_crash()
    assert hung.per_request == 120.0 and hung.wall == 120.0 * requests_until_crash()
    assert refused.measured_stall > 0 and hung.measured_stall > 0  # the sync client blocked the loop
    assert report.row(HANG_OPEN, BASELINE).derived == hung


def test_report_renders_the_table_ratios_and_extras(report: Report) -> None:
    assert report.warm_rate > 0
    assert set(report.peak_memory) == {BASELINE, COLD, FRESH} and all(v > 0 for v in report.peak_memory.values())
    text = render(report)
    for scenario, reader in EXPECTED_ROWS:
        assert f"| {scenario} | {reader} |" in text
    assert "| scenario | baseline / package (median wall) |" in text
    assert text.count("×") >= 5
    assert "resolutions/s" in text and "KiB" in text
    assert len([line for line in text.splitlines() if line.startswith(("- met:", "- MISSED:"))]) == len(targets(report))


def test_page_is_the_fixed_text_then_the_run(report: Report) -> None:
    """The published page is the fixed text followed by this run's figures, stamped with machine and date."""
    text = page(report)
    figures = render(report).split("\n", 1)[1]  # below the first line, which carries the minute of rendering
    assert text.startswith(PAGE_INTRO) and text.endswith(figures)
    assert text.removeprefix(PAGE_INTRO).startswith("Benchmark run ")
    assert " UTC, quick mode, " in text and "CPUs" in text and "Python " in text
