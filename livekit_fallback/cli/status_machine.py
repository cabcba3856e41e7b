"""``livekit-fallback status --machine`` and ``status --serve``: the whole machine's view.

``--machine`` prints what the machine-wide store says (every process's latest
resolution, the breaker, incidents, fallback ages) as a table, or as JSON with
``--json``, without resolving anything or touching the database. ``--serve``
serves the same view as the status page (``/status``), with ``/status.json``
and ``/metrics`` beside it, for LiveKit hosts, which run no HTTP server of
ours; it binds 127.0.0.1 unless told otherwise and never shows error details.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from ..config.machine_status import DeploymentStatus, MachineStatus, export_ages, read_machine_status
from ..metrics import CONTENT_TYPE, render
from ..status_page import build_status_page, format_seconds, machine_storage
from .exit_codes import ExitCode

__all__ = ["DEFAULT_PORT", "add_status_options", "machine_table", "run_machine", "serve_status"]

DEFAULT_PORT = 9465
"""``status --serve``'s default port (next to the metrics exporter's usual 9464)."""


def add_status_options(parser: argparse.ArgumentParser) -> None:
    """``--machine``, ``--json``, ``--serve``, ``--host``, ``--port`` for ``status``."""
    parser.add_argument(
        "--machine",
        action="store_true",
        help="show the whole machine's view from the shared store (every process) as a table; resolves nothing",
    )
    parser.add_argument("--json", action="store_true", help="with --machine: print the view as JSON")
    parser.add_argument(
        "--serve", action="store_true", help="serve the status page at /status (and /status.json, /metrics)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="with --serve: address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"with --serve: port (default {DEFAULT_PORT}; 0 picks one)"
    )


def _snapshot_dirs(args: argparse.Namespace) -> list[Path]:
    return [args.snapshot_dir] if getattr(args, "snapshot_dir", None) else []


async def run_machine(args: argparse.Namespace) -> int:
    """Print the machine's view; exit 0 healthy, 3 degraded, 4 when the store cannot be read."""
    status = await read_machine_status(machine_storage(), snapshot_dirs=_snapshot_dirs(args))
    export_ages(status)
    if args.json:
        print(json.dumps(status.to_json(), indent=2))
    else:
        print(machine_table(status))
    if status.problem:
        return ExitCode.FAILED
    return ExitCode.OK if status.healthy else ExitCode.DEGRADED


def machine_table(status: MachineStatus) -> str:
    """The machine's view as text tables: the same facts as the status page (with error details)."""
    overall = "UNAVAILABLE" if status.problem else "OK" if status.healthy else "DEGRADED"
    lines = [f"machine status: {overall}  (store {status.store})"]
    if status.problem:
        lines.append(f"  the machine-wide state could not be read: {status.problem}")
        return "\n".join(lines)
    for deployment in status.deployments:
        lines += ["", *_deployment_lines(deployment)]
    if not any(d.configs for d in status.deployments):
        lines += ["", "no process of this machine has resolved a configuration yet"]
    ages = [(f"snapshot of {v}", format_seconds(a)) for v, a in status.snapshot_ages.items()]
    if ages:
        lines += ["", "snapshots:"]
        lines += _rows([("COPY", "AGE"), *ages])
    return "\n".join(line.rstrip() for line in lines)


def _deployment_lines(status: DeploymentStatus) -> list[str]:
    """One deployment apart: breaker, configs, incidents, outages, copies."""
    lines = [f"deployment {status.label(public=False)}: {'OK' if status.healthy else 'DEGRADED'}"]
    breaker = status.breaker
    text = f"breaker: {breaker.state.replace('_', '-')}, {breaker.failures} consecutive failure(s)"
    if breaker.opened_at is not None and breaker.state != "closed":
        text += f", opened {format_seconds(status.now - breaker.opened_at)} ago"
    if status.probe_at is not None:
        wait = status.probe_at - status.now
        text += f", next probe in {format_seconds(wait)}" if wait > 0 else ", next resolution probes"
    lines.append(text)
    if breaker.last_error and breaker.state != "closed":
        lines.append(f"  last error: {breaker.last_error}")
    for config in status.configs:
        degraded = sum(c.degraded for c in config.components)
        state = f"DEGRADED: {degraded} of {len(config.components)}" if degraded else "all from database"
        lines += [
            "",
            f"{config.vertical}/{config.platform}: {state}, resolved {format_seconds(config.resolved_seconds_ago)} ago",
        ]
        rows: list[tuple[str, ...]] = [("COMPONENT", "SOURCE", "REASON", "AGE", "DETAIL")]
        rows += [
            (c.key, c.source, c.reason or "-", format_seconds(c.age_seconds), c.detail or "") for c in config.components
        ]
        lines += _rows(rows)
    if status.incidents:
        lines += ["", "open incidents:"]
        rows = [("CONFIG", "COMPONENT", "REASON", "LASTING", "FALLBACKS")]
        rows += [
            (f"{i.vertical}/{i.platform}", i.component, i.reason, format_seconds(i.seconds), str(i.fallbacks))
            for i in status.incidents
        ]
        lines += _rows(rows)
    outages = [*status.outages, *status.history]
    if outages:
        lines += ["", "outages (open, then recent ended):"]
        rows = [("CONFIG", "STATE", "DURATION", "DEGRADED RESOLUTIONS")]
        rows += [
            (
                f"{o.vertical}/{o.platform}",
                "ongoing" if o.ended_at is None else "ended",
                format_seconds(o.seconds),
                str(o.resolutions),
            )
            for o in outages
        ]
        lines += _rows(rows)
    copies = [(f"last-known-good copy of {k}", format_seconds(a)) for k, a in status.last_known_good_ages.items()]
    if copies:
        lines += ["", "last-known-good copies:"]
        lines += _rows([("COPY", "AGE"), *copies])
    return lines


def _rows(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1] for row in rows]


def status_app(snapshot_dirs: list[Path]) -> web.Application:
    """The status page server: ``/status``, ``/status.json`` (public view), ``/metrics``; ``/`` redirects."""
    directory = machine_storage()

    async def page(request: web.Request) -> web.StreamResponse:
        html = await build_status_page(directory, public=True, snapshot_dirs=snapshot_dirs)
        return web.Response(text=html, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"})

    async def page_json(request: web.Request) -> web.StreamResponse:
        status = await read_machine_status(directory, snapshot_dirs=snapshot_dirs)
        export_ages(status)
        return web.json_response(status.to_json(public=True))

    async def metrics(request: web.Request) -> web.StreamResponse:
        export_ages(await read_machine_status(directory, snapshot_dirs=snapshot_dirs))
        return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE})

    async def root(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/status")

    app = web.Application()
    app.router.add_get("/", root)
    app.router.add_get("/status", page)
    app.router.add_get("/status.json", page_json)
    app.router.add_get("/metrics", metrics)
    return app


async def serve_status(args: argparse.Namespace) -> int:
    """Serve the status page until SIGINT or SIGTERM; prints the URL on stdout once listening."""
    runner = web.AppRunner(status_app(_snapshot_dirs(args)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        print(f"livekit-fallback: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.FAILED
    addresses = runner.addresses  # the bound port, when 0 was asked for
    port = addresses[0][1] if addresses else args.port
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"status page: http://{host}:{port}/status", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
    return ExitCode.OK
