"""``livekit-fallback resolve`` and ``status``: where each component of a config comes from right now.

``status --machine`` and ``status --serve`` show the whole machine's view
instead (:mod:`.status_machine`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ..config.resolver import Resolver
from .exit_codes import ExitCode
from .options import (
    VERTICAL_HELP,
    add_deadline,
    add_platform,
    add_resolution_options,
    add_snapshot_dir,
    settings_from_args,
)
from .report import provenance_json, provenance_table
from .status_machine import add_status_options, run_machine, serve_status

__all__ = ["register", "run", "run_status"]


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``resolve`` and ``status`` subcommands."""
    parser = commands.add_parser("resolve", help="resolve a config and show each component's source")
    add_resolution_options(parser)
    add_platform(parser)
    parser.add_argument("--json", action="store_true", help="print the machine-readable record")
    parser.set_defaults(handler=run)
    status = commands.add_parser(
        "status",
        help="resolve once and print the health record (exit 0 healthy, 3 degraded); "
        "--machine / --serve: the whole machine's view",
    )
    status.add_argument("--vertical", help=f"{VERTICAL_HELP} (required unless --machine or --serve)")
    add_snapshot_dir(status)
    add_deadline(status)
    add_platform(status)
    add_status_options(status)
    status.set_defaults(handler=run_status)


async def run_status(args: argparse.Namespace) -> int:
    """Resolve once, print the health record (:meth:`Status.to_json`); exit DEGRADED (3) when anything is degraded.

    With ``--serve``, serve the machine's status page; with ``--machine``, print the machine's view.
    """
    if args.serve:
        return await serve_status(args)
    if args.machine:
        return await run_machine(args)
    if not args.vertical:
        print("livekit-fallback status: --vertical is required (or use --machine / --serve)", file=sys.stderr)
        return ExitCode.USAGE
    async with Resolver.from_settings(settings_from_args(args)) as resolver:
        await resolver.resolve(args.vertical, args.platform)
        status = resolver.status()
    print(json.dumps(status.to_json(), indent=2))
    return ExitCode.OK if status.healthy else ExitCode.DEGRADED


async def run(args: argparse.Namespace) -> int:
    """Resolve once and print the provenance table, or the JSON record with the health record under ``health``."""
    async with Resolver.from_settings(settings_from_args(args)) as resolver:
        started = time.perf_counter()
        config = await resolver.resolve(args.vertical, args.platform)
        elapsed_ms = (time.perf_counter() - started) * 1000
        health = resolver.status()
    if args.json:
        print(json.dumps({**provenance_json(config, elapsed_ms), "health": health.to_json()}, indent=2))
    else:
        print(provenance_table(config, elapsed_ms))
    return ExitCode.OK
