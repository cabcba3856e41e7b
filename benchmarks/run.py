"""Benchmark entry point: ``python -m benchmarks.run [--quick]``.

Starts a throwaway PostgreSQL, the PostgREST stand-in and the fault proxy (the
tests' support code, in a child process), measures every scenario, writes the
Markdown page (a full run rewrites ``docs/benchmarks.md``; a quick run prints it
on stdout), and stops everything. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from livekit_fallback.config.sources import supabase as _supabase

from .infra import Infra
from .measure import quiet_package_logs
from .report import page, progress
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
    with Infra() as infra, trusting(infra.ca_bundle), quiet_package_logs():
        return asyncio.run(run_all(infra, plan, progress))


@contextmanager
def trusting(bundle: str) -> Iterator[None]:
    """Makes this process's clients (and the processes it starts) trust ``bundle``, then restores.

    httpx reads ``SSL_CERT_FILE`` when it builds a TLS context; the package
    builds one per process and keeps it, so it is dropped on entry and on exit
    to be rebuilt with the variable as it then is.
    """
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = bundle
    _supabase._ssl_context.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved
        _supabase._ssl_context.cache_clear()


PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
"""Where a full run publishes its page."""


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the benchmarks and writes the page; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few runs per scenario (seconds, not minutes)")
    parser.add_argument(
        "--out",
        metavar="PATH",
        help=f"where to write the page; '-' for stdout (default: {PAGE.parent.name}/{PAGE.name} for a full run, "
        "stdout for --quick)",
    )
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else ("-" if args.quick else str(PAGE))
    report = run_benchmarks(quick=args.quick, progress=progress)
    text = page(report, PAGE.read_text(encoding="utf-8") if PAGE.exists() else "")
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")
        progress(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
