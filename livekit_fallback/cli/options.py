"""Command-line options shared by several subcommands, defined once.

Every resolving command (``resolve``, ``status``, ``swml``, ``serve``,
``snapshot graph``) spells ``--vertical``, ``--snapshot-dir``, ``--deadline``
and ``--platform`` the same way; the snapshot database commands share
``--timeout``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config.keys import PLATFORMS
from ..config.settings import Settings
from ..snapshots.read import DEFAULT_TIMEOUT

__all__ = [
    "add_deadline",
    "add_platform",
    "add_resolution_options",
    "add_snapshot_dir",
    "add_timeout",
    "add_vertical",
    "settings_from_args",
]

VERTICAL_HELP = "business vertical, e.g. reverse_mortgage"


def add_vertical(parser: argparse.ArgumentParser) -> None:
    """``--vertical``, required."""
    parser.add_argument("--vertical", required=True, help=VERTICAL_HELP)


def add_snapshot_dir(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """``--snapshot-dir``: searched before the packaged snapshots."""
    parser.add_argument(
        "--snapshot-dir", type=Path, help=help_text or "directory searched before the packaged snapshots"
    )


def add_deadline(parser: argparse.ArgumentParser) -> None:
    """``--deadline``: how long one resolution may take."""
    parser.add_argument("--deadline", type=float, help="seconds a resolution may take (default 1.0)")


def add_platform(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    """``--platform``: whose models and tool names to resolve (default livekit)."""
    parser.add_argument("--platform", choices=list(PLATFORMS), default="livekit", help=help_text)


def add_timeout(parser: argparse.ArgumentParser) -> None:
    """``--timeout``: how long the snapshot commands' database work may take."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds the database work may take (default {DEFAULT_TIMEOUT:g})",
    )


def add_resolution_options(parser: argparse.ArgumentParser) -> None:
    """Options every resolving command shares: vertical, snapshot directory, deadline."""
    add_vertical(parser)
    add_snapshot_dir(parser)
    add_deadline(parser)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Environment settings with command-line overrides applied.

    Raises:
        SettingsError: An environment variable is missing or malformed.
    """
    return Settings.from_env(snapshot_dir=getattr(args, "snapshot_dir", None), deadline=getattr(args, "deadline", None))
