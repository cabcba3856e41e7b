"""The ``livekit-fallback`` command.

Logs (including fallback banners) go to stderr; results go to stdout. Each
subcommand lives in its own module (see ``COMMAND_MODULES``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Sequence

from ..config.resolver import ConfigUnavailableError
from ..config.settings import SettingsError

__all__ = ["COMMAND_MODULES", "main"]

COMMAND_MODULES = (
    "livekit_fallback.commands.resolve",
    "livekit_fallback.commands.snapshot",
    "livekit_fallback.cli.swaig",
)
"""Modules contributing subcommands; a missing module is skipped."""

EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="livekit-fallback",
        description="Resolve voice-agent configuration from Supabase with per-component fallback.",
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(commands)
    return parser


class _CliHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The command's stderr handler; marked so repeated ``main()`` calls add it once."""


def _configure_logging(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in root.handlers:
        if isinstance(handler, _CliHandler):
            handler.setStream(sys.stderr)
            return
    handler = _CliHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _configure_logging(args.log_level)
    except ValueError:
        parser.error(f"unknown log level {args.log_level!r}")
    try:
        return asyncio.run(args.handler(args))
    except SettingsError as exc:
        print(f"livekit-fallback: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigUnavailableError as exc:
        print(f"livekit-fallback: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
