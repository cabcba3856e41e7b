"""Snapshot tooling: pull, diff, check, graph and seed snapshot files.

Snapshots are the floor every resolution can fall back to; these tools keep
them from drifting silently away from the database. The command line is
``livekit-fallback snapshot ...`` (see :mod:`livekit_fallback.cli.snapshot`).
"""

from .check import Problem, check_data, check_file
from .diff import ComponentDiff, diff_configs, format_diff
from .graph import FlowGraph, render_graph
from .read import DatabaseConfig, DatabaseReadError, read_active
from .seed import SeedStep, apply_plan, plan_seed
from .write import render_snapshot, snapshot_document, write_atomic

__all__ = [
    "ComponentDiff",
    "DatabaseConfig",
    "DatabaseReadError",
    "FlowGraph",
    "Problem",
    "SeedStep",
    "apply_plan",
    "check_data",
    "check_file",
    "diff_configs",
    "format_diff",
    "plan_seed",
    "read_active",
    "render_graph",
    "render_snapshot",
    "snapshot_document",
    "write_atomic",
]
