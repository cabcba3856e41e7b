"""``livekit-fallback snapshot ...``: pull, diff, check, graph and seed snapshot files.

Argument wiring only; the work is in :mod:`livekit_fallback.snapshots`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..snapshots.graph import FORMATS
from . import snapshot_handlers as handlers
from .options import add_platform, add_snapshot_dir, add_timeout, add_vertical

__all__ = ["register"]


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``snapshot`` command and its subcommands."""
    parser = commands.add_parser("snapshot", help="pull, diff, check, graph and seed snapshot files")
    actions = parser.add_subparsers(dest="snapshot_command", required=True)

    pull = actions.add_parser("pull", help="write the database's active config as a snapshot file")
    _vertical(pull)
    pull.add_argument(
        "--out",
        type=Path,
        help="directory to write <vertical>.toml into (default: $LIVEKIT_FALLBACK_SNAPSHOT_DIR, else ./snapshots)",
    )
    pull.add_argument("--restamp", action="store_true", help="rewrite the file even when nothing changed")
    _timeout(pull)
    pull.set_defaults(handler=handlers.pull)

    diff = actions.add_parser("diff", help="compare the database with the snapshot (exit 0 equal, 1 drift, 4 error)")
    _vertical(diff)
    _snapshot_dir(diff)
    _timeout(diff)
    diff.set_defaults(handler=handlers.diff)

    check = actions.add_parser("check", help="validate snapshot files (exit 0 valid, 1 problems)")
    check.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="DIR",
        help="snapshot directories or files (default: $LIVEKIT_FALLBACK_SNAPSHOT_DIR, else the packaged snapshots)",
    )
    check.add_argument("--strict", action="store_true", help="fail on warnings (unreachable or dead-end nodes) too")
    check.set_defaults(handler=handlers.check)

    graph = actions.add_parser("graph", help="draw the node flow as Mermaid or Graphviz DOT")
    _vertical(graph)
    _snapshot_dir(graph)
    graph.add_argument("--format", choices=FORMATS, default="mermaid")
    add_platform(graph, "whose tool names to show (default livekit)")
    graph.add_argument(
        "--live", action="store_true", help="resolve now (database first) and mark nodes served from a fallback"
    )
    graph.set_defaults(handler=handlers.graph)

    seed = actions.add_parser("seed", help="write the snapshot into the database as active rows")
    _vertical(seed)
    _snapshot_dir(seed)
    seed.add_argument("--force", action="store_true", help="replace active rows that differ from the snapshot")
    seed.add_argument("--dry-run", action="store_true", help="show what would be written, write nothing")
    _timeout(seed)
    seed.set_defaults(handler=handlers.seed)


def _vertical(parser: argparse.ArgumentParser) -> None:
    add_vertical(parser)


def _snapshot_dir(parser: argparse.ArgumentParser) -> None:
    add_snapshot_dir(
        parser, "directory searched before the packaged snapshots (default: $LIVEKIT_FALLBACK_SNAPSHOT_DIR)"
    )


def _timeout(parser: argparse.ArgumentParser) -> None:
    add_timeout(parser)
