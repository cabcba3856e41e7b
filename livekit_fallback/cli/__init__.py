"""The ``livekit-fallback`` command.

Logs (including fallback banners) go to stderr; results go to stdout. The
command sits above both platform edges: one module per command group
(:mod:`.resolve` for ``resolve``/``status``, :mod:`.snapshot` for
``snapshot ...``, :mod:`.swaig` for ``swml``/``serve``), each imported
statically and registered here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from ..config.resolver import ConfigUnavailableError
from ..config.settings import SettingsError
from . import resolve, snapshot, swaig
from .exit_codes import EXIT_CODES_EPILOG, ExitCode
from .log_handler import configure_logging

__all__ = ["ExitCode", "build_parser", "main"]

COMMAND_GROUPS = (resolve, snapshot, swaig)
"""Modules contributing subcommands, in ``--help`` order."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="livekit-fallback",
        description="Resolve voice-agent configuration from Supabase with per-component fallback.",
        epilog=EXIT_CODES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (an :class:`ExitCode`).

    Args:
        argv: The arguments after the program name; ``None`` reads ``sys.argv``.
            Tests call ``main([...])`` in-process.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
    except ValueError:
        parser.error(f"unknown log level {args.log_level!r}")
    try:
        code: int = asyncio.run(args.handler(args))
    except SettingsError as exc:
        print(f"livekit-fallback: configuration error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except ConfigUnavailableError as exc:
        print(f"livekit-fallback: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED
    return code
