"""The ``livekit-fallback snapshot ...`` subcommand handlers.

Each handler is ``async def (args) -> int``. Results go to stdout, failures to
stderr as one line; expected failures never show a traceback, and the
database key is never printed. Exit codes (:class:`~.exit_codes.ExitCode`):
OK success (or no drift), PROBLEMS the command's verdict is negative
(problems, drift, refused), USAGE the command line or the settings name
nothing usable (missing path, no database settings, bad vertical name),
FAILED the command could not run (database unreachable, unreadable
snapshot, unwritable file, unexpected error).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..config.model import check_vertical
from ..config.resolver import Resolver
from ..config.settings import Settings, SettingsError, snapshot_dir_from_env
from ..config.sources.base import format_exception
from ..config.sources.snapshot import Snapshot, SnapshotError, SnapshotSource, default_snapshot_dir, load_snapshot
from ..snapshots.check import Problem, check_data, check_file, snapshot_files
from ..snapshots.content import BACKUP_PREFIX, KINDS, PLATFORMS, node_order
from ..snapshots.diff import diff_configs, format_diff, snapshot_components
from ..snapshots.graph import FlowGraph, render_graph
from ..snapshots.read import DatabaseConfig, DatabaseReadError, database_label, open_client, read_active
from ..snapshots.seed import apply_plan, plan_seed
from ..snapshots.write import format_timestamp, render_snapshot, snapshot_document, write_atomic
from .exit_codes import ExitCode

__all__ = ["check", "diff", "graph", "pull", "seed"]


class _Fail(Exception):
    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def _command(name: str) -> Callable[[Callable[[argparse.Namespace], Awaitable[int]]], Callable[..., Awaitable[int]]]:
    def wrap(handler: Callable[[argparse.Namespace], Awaitable[int]]) -> Callable[..., Awaitable[int]]:
        @functools.wraps(handler)
        async def run(args: argparse.Namespace) -> int:
            try:
                return await handler(args)
            except _Fail as exc:
                print(f"livekit-fallback snapshot {name}: {exc}", file=sys.stderr)
                return exc.code
            except DatabaseReadError as exc:
                print(f"livekit-fallback snapshot {name}: database unreachable or unusable: {exc}", file=sys.stderr)
                return ExitCode.FAILED
            except SettingsError:
                raise  # the CLI reports settings errors itself (USAGE)
            except Exception as exc:  # never let an unexpected error read as "drift" (PROBLEMS)
                print(f"livekit-fallback snapshot {name}: unexpected error: {format_exception(exc)}", file=sys.stderr)
                return ExitCode.FAILED

        return run

    return wrap


@_command("pull")
async def pull(args: argparse.Namespace) -> int:
    """Read the vertical's active config and write ``<out>/<vertical>.toml`` if it validates."""
    from .. import __version__

    url, key = _database()
    _check_vertical_name(args.vertical)
    out = args.out or snapshot_dir_from_env() or Path("snapshots")
    path = out / f"{args.vertical}.toml"
    db = await read_active(url, key, args.vertical, timeout=args.timeout)
    previous = _try_load(path)
    names = node_order([*db.nodes, *_problem_nodes(db)], previous.node_names if previous else ())
    problems = _pull_problems(db, names)
    errors = [p for p in problems if p.severity == "error"]
    for problem in problems:
        print(problem, file=sys.stderr if errors else sys.stdout)
    if errors:
        raise _Fail(
            ExitCode.PROBLEMS,
            f"refusing to write {path}: the database copy has {len(errors)} problem(s) listed above; nothing written",
        )
    if previous is not None and not args.restamp and _same(previous, db, names):
        print(f"{path} is up to date with {database_label(url)} (unchanged; taken_at {_stamp(previous)} kept)")
        return ExitCode.OK
    document = snapshot_document(
        vertical=args.vertical,
        taken_at=format_timestamp(db.read_at),
        source=f"{database_label(url)} (pulled by livekit-fallback {__version__})",
        theme=db.theme or {},
        nodes={name: db.nodes[name] for name in names},
        models={p: {k: db.models[(p, k)] for k in KINDS} for p in PLATFORMS},
        backups={p: {k: db.backups.get((p, k), []) for k in KINDS} for p in PLATFORMS},
    )
    try:
        write_atomic(path, render_snapshot(document))
    except OSError as exc:
        raise _Fail(ExitCode.FAILED, f"cannot write {path}: {exc.strerror or exc}") from None
    print(
        f"wrote {path}: theme, {len(names)} nodes, 6 models from {database_label(url)}, taken_at {document['taken_at']}"
    )
    return ExitCode.OK


@_command("diff")
async def diff(args: argparse.Namespace) -> int:
    """Compare the database with the snapshot; OK equal, PROBLEMS drift, FAILED comparison impossible."""
    url, key = _database()
    snapshot = _load(args.vertical, args.snapshot_dir)
    db = await read_active(url, key, args.vertical, timeout=args.timeout)
    diffs, compared = diff_configs(snapshot, db)
    print(
        format_diff(
            diffs,
            compared,
            snapshot_label=f"snapshot {snapshot.path} (taken {_stamp(snapshot)})",
            database_label=database_label(url),
        )
    )
    return ExitCode.PROBLEMS if diffs else ExitCode.OK


@_command("check")
async def check(args: argparse.Namespace) -> int:
    """Validate snapshot files; OK valid, PROBLEMS problems (or warnings with ``--strict``), USAGE nothing to check."""
    paths = args.paths or [snapshot_dir_from_env() or default_snapshot_dir()]
    try:
        files = snapshot_files(paths)
    except FileNotFoundError as exc:
        raise _Fail(ExitCode.USAGE, str(exc)) from None
    if not files:
        raise _Fail(ExitCode.USAGE, f"no snapshot files (*.toml) in {', '.join(str(p) for p in paths)}")
    problems = [problem for path in files for problem in check_file(path)]
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    verdict = "OK" if not problems else "INVALID" if errors else "valid with warnings"
    print(f"checked {len(files)} file(s): {errors} error(s), {warnings} warning(s): {verdict}")
    return ExitCode.PROBLEMS if errors or (warnings and args.strict) else ExitCode.OK


@_command("graph")
async def graph(args: argparse.Namespace) -> int:
    """Print the node flow of the snapshot, or of a live resolution with ``--live``."""
    if args.live:
        settings = Settings.from_env(snapshot_dir=args.snapshot_dir)
        async with Resolver.from_settings(settings) as resolver:
            config = await resolver.resolve(args.vertical, args.platform, fresh=True)
        flow = FlowGraph.from_config(config)
    else:
        flow = FlowGraph.from_snapshot(_load(args.vertical, args.snapshot_dir), args.platform)
    print(render_graph(flow, args.format), end="")
    return ExitCode.OK


@_command("seed")
async def seed(args: argparse.Namespace) -> int:
    """Write the snapshot into the database; refuses to replace different active rows unless forced."""
    url, key = _database()
    snapshot = _load(args.vertical, args.snapshot_dir)
    errors = [p for p in check_file(Path(snapshot.path)) if p.severity == "error"]
    if errors:
        for problem in errors:
            print(problem, file=sys.stderr)
        raise _Fail(ExitCode.PROBLEMS, f"refusing to seed from an invalid snapshot ({len(errors)} problem(s) above)")
    async with open_client(url, key, timeout=args.timeout) as client:
        db = await read_active(url, key, args.vertical, timeout=args.timeout, client=client)
        steps = plan_seed(snapshot_components(snapshot), db)
        print(f"seeding {args.vertical} into {database_label(url)} from {snapshot.path} (taken {_stamp(snapshot)}):")
        for step in steps:
            print(f"  {step.action:<8} {step.key}" + (f": {step.detail}" if step.detail else ""))
        extra = sorted(set(db.nodes) - set(snapshot.nodes))
        if extra:
            print(f"  note: the database also has node(s) {extra}, not in the snapshot; left alone")
        conflicts = [s for s in steps if s.action == "conflict"]
        writes = [s for s in steps if s.action != "same"]
        if conflicts and not args.force:
            raise _Fail(
                ExitCode.PROBLEMS,
                f"refused: {len(conflicts)} component(s) already have different active rows "
                "(listed above); nothing written. Pass --force to replace them.",
            )
        if not writes:
            print("nothing to do: the database already holds this snapshot")
            return ExitCode.OK
        if args.dry_run:
            print(f"dry run: would write {len(writes)} component(s)")
            return ExitCode.OK
        summary = f"seeded from snapshot {snapshot.vertical} taken {_stamp(snapshot)}"
        try:
            await asyncio.wait_for(apply_plan(client, writes, db, key=key, summary=summary), args.timeout)
        except asyncio.TimeoutError:
            raise DatabaseReadError(f"seed did not finish within {args.timeout:g} s") from None
    lists = sum(1 for step in writes if step.key.startswith(BACKUP_PREFIX))
    also = f" and {lists} backup list(s)" if lists else ""
    print(f"seeded {len(writes) - lists} component(s){also}; {len(steps) - len(writes)} already up to date")
    return ExitCode.OK


def _database() -> tuple[str, str]:
    settings = Settings.from_env()
    if not settings.database_configured:
        raise _Fail(ExitCode.USAGE, "needs the database: set SUPABASE_URL and SUPABASE_SERVICE_KEY")
    assert settings.supabase_url and settings.supabase_key
    return settings.supabase_url, settings.supabase_key


def _check_vertical_name(vertical: str) -> None:
    try:
        check_vertical(vertical)
    except ValueError as exc:
        raise _Fail(ExitCode.USAGE, str(exc)) from None


def _load(vertical: str, snapshot_dir: Path | None) -> Snapshot:
    directory = snapshot_dir or snapshot_dir_from_env()
    try:
        return SnapshotSource([directory] if directory else []).snapshot(vertical)
    except SnapshotError as exc:
        raise _Fail(ExitCode.FAILED, str(exc)) from None


def _try_load(path: Path) -> Snapshot | None:
    try:
        return load_snapshot(path) if path.is_file() else None
    except SnapshotError:
        return None


def _problem_nodes(db: DatabaseConfig) -> list[str]:
    return [key.split(".", 1)[1] for key in db.problems if key.startswith("nodes.")]


def _pull_problems(db: DatabaseConfig, names: list[str]) -> list[Problem]:
    """The database's row problems plus every validation problem of the config it holds."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "vertical": db.vertical,
        "taken_at": db.read_at,
        "source": "database",
        "nodes": {name: db.nodes[name] for name in names if name in db.nodes},
    }
    if db.theme is not None:
        data["theme"] = db.theme
    data["models"] = {p: {k: db.models[(p, k)] for k in KINDS if (p, k) in db.models} for p in PLATFORMS}
    problems = [Problem("database", key, message) for key, message in db.problems.items()]
    checked = check_data(data, "database")
    return problems + [p for p in checked if p.field not in db.problems]


def _same(previous: Snapshot, db: DatabaseConfig, names: list[str]) -> bool:
    ours = snapshot_components(previous)
    return list(previous.node_names) == names and all(db.value(k) == v for k, v in ours.items())


def _stamp(snapshot: Snapshot) -> str:
    return format_timestamp(snapshot.taken_at)
