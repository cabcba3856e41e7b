"""Benchmark entry point: ``python -m benchmarks.run [--quick]``.

Starts a throwaway PostgreSQL, the PostgREST stand-in and the fault proxy (the
tests' support code, in a child process), measures every scenario, prints a
Markdown report on stdout (progress goes to stderr), and stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence

from .infra import Infra
from .measure import quiet_package_logs
from .report import progress, render
from .scenarios import FULL, QUICK, Report, run_all


def run_benchmarks(*, quick: bool = False, progress: Callable[[str], None] = lambda _: None) -> Report:
    """Runs every scenario against a fresh database and returns the measurements.

    Args:
        quick: A handful of runs per scenario and short caps (a few seconds in all),
            for the test suite; the figures are then too few to quote.
        progress: Called with a short message before each step.
    """
    plan = QUICK if quick else FULL
    progress("starting PostgreSQL, the PostgREST stand-in and the fault proxy")
    with Infra() as infra, quiet_package_logs():
        return asyncio.run(run_all(infra, plan, progress))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few runs per scenario (seconds, not minutes)")
    args = parser.parse_args(argv)
    report = run_benchmarks(quick=args.quick, progress=progress)
    sys.stdout.write(render(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
