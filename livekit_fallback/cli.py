"""The ``livekit-fallback`` command.

``resolve`` prints where each component of an agent's config comes from right
now, as a table or as JSON. Logs (including fallback banners) go to stderr;
results go to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .config.resolver import ConfigUnavailableError, Resolver
from .config.settings import Settings, SettingsError
from .report import provenance_json, provenance_table

__all__ = ["main"]

EXIT_OK = 0
EXIT_UNAVAILABLE = 1
EXIT_USAGE = 2


def _add_resolution_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vertical", required=True, help="business vertical, e.g. reverse_mortgage")
    parser.add_argument("--snapshot-dir", type=Path, help="directory searched before the packaged snapshots")
    parser.add_argument("--deadline", type=float, help="seconds a resolution may take (default 1.0)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="livekit-fallback",
        description="Resolve voice-agent configuration from Supabase with per-component fallback.",
    )
    parser.add_argument("--log-level", default="WARNING", help="stderr log level (default WARNING)")
    commands = parser.add_subparsers(dest="command", required=True)
    resolve = commands.add_parser("resolve", help="resolve a config and show each component's source")
    _add_resolution_options(resolve)
    resolve.add_argument("--platform", choices=["livekit", "signalwire"], default="livekit")
    resolve.add_argument("--json", action="store_true", help="print the machine-readable record")
    return parser


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


async def _resolve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(snapshot_dir=args.snapshot_dir, deadline=args.deadline)
    async with Resolver.from_settings(settings) as resolver:
        started = time.perf_counter()
        config = await resolver.resolve(args.vertical, args.platform)
        elapsed_ms = (time.perf_counter() - started) * 1000
    if args.json:
        print(json.dumps(provenance_json(config, elapsed_ms), indent=2))
    else:
        print(provenance_table(config, elapsed_ms))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _configure_logging(args.log_level)
    except ValueError:
        parser.error(f"unknown log level {args.log_level!r}")
    handlers = {"resolve": _resolve}
    try:
        return asyncio.run(handlers[args.command](args))
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
