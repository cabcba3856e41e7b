"""The status page: the machine's view as one server-rendered HTML page, readable on a phone.

Served at ``/status`` by the SignalWire server and by ``livekit-fallback
status --serve`` (for LiveKit hosts, which run no HTTP server of ours). It is
built from :class:`~livekit_fallback.config.machine_status.MachineStatus`, so
it shows what every process of the machine resolved, not one process's
memory, each deployment (database) apart: per component the source, reason and age; the breaker and when it
will let a probe through; open incidents and outages and the recent ended
ones, with durations and fallback counts; the snapshot and last-known-good
ages; the node graph with degraded nodes marked (an SVG drawn by Graphviz
when ``dot`` is installed, else the Mermaid text).

Plain HTML and CSS, no JavaScript; it reloads itself every
:data:`REFRESH_SECONDS`. The public page (no authentication) leaves out every
free-text error detail, exactly as ``/healthz`` does; no secret is ever on it.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path

from .config.machine_status import (
    ConfigView,
    DeploymentStatus,
    MachineStatus,
    OutageView,
    export_ages,
    read_machine_status,
)
from .config.resolver import Resolver
from .config.state.state import default_storage
from .config.state.storage import StateStorage
from .snapshots.graph import FlowGraph, to_dot, to_mermaid

__all__ = [
    "CONTENT_TYPE",
    "REFRESH_SECONDS",
    "build_status_page",
    "format_seconds",
    "machine_storage",
    "render_graph_html",
    "render_status_page",
]

CONTENT_TYPE = "text/html; charset=utf-8"
REFRESH_SECONDS = 15
"""The page reloads itself this often (a meta refresh, no script)."""
DOT_TIMEOUT = 5.0
"""Seconds Graphviz may take to draw one graph before the Mermaid text is shown instead."""

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:0 .75rem 2rem;
color:#212529;background:#f8f9fa;line-height:1.4}
header{padding:.75rem 0}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}h3{font-size:1rem;margin:1rem 0 .3rem}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:700;color:#fff}
.ok{background:#198754}.degraded{background:#fd7e14}.unavailable,.open{background:#b02a37}
.half_open{background:#b58100}.closed{background:#198754}
.wrap{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92rem}
th,td{text-align:left;padding:.3rem .45rem;border-bottom:1px solid #dee2e6;vertical-align:top}
th{background:#e9ecef}
tr.fallback td{background:#ffe5d0}
.muted{color:#6c757d}.detail{font-family:ui-monospace,monospace;font-size:.85rem;word-break:break-word}
.graph{background:#fff;border:1px solid #dee2e6;padding:.5rem;overflow-x:auto}
.graph svg{max-width:100%;height:auto}
pre{white-space:pre-wrap;word-break:break-word;font-size:.8rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .8rem;margin:.3rem 0}dt{font-weight:600}dd{margin:0}
"""


def machine_storage(resolver: Resolver | None = None) -> StateStorage:
    """The state a resolver uses (the production default without a resolver): what the page shows."""
    return resolver.state.storage if resolver is not None else default_storage()


async def build_status_page(
    where: Path | StateStorage,
    *,
    public: bool,
    snapshot_dirs: Sequence[Path] = (),
    title: str = "livekit-fallback status",
) -> str:
    """Read the machine's view, refresh the age gauges, and render the page (Graphviz off the event loop)."""
    status = await read_machine_status(where, snapshot_dirs=snapshot_dirs)
    export_ages(status)
    return await asyncio.to_thread(render_status_page, status, public=public, title=title)


def format_seconds(seconds: float | None) -> str:
    """A duration for people: ``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``4 d 3 h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def render_status_page(status: MachineStatus, *, public: bool, title: str = "livekit-fallback status") -> str:
    """The whole page as HTML.

    Runs Graphviz (a subprocess) when it is installed: call it off the event loop.

    Args:
        status: The machine's view.
        public: For unauthenticated readers: no error details, no file paths.
        title: The page title.
    """
    overall = "unavailable" if status.problem else "ok" if status.healthy else "degraded"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        f"<title>{escape(title)}: {overall.upper()}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header>",
        f'<h1>{escape(title)} <span class="badge {overall}">{overall.upper()}</span></h1>',
        f'<div class="muted">The whole machine\'s view, read {escape(_clock(status.now))}; '
        f"reloads every {REFRESH_SECONDS} s.</div>",
        "</header>",
    ]
    if status.problem:
        problem = "the machine-wide state could not be read" if public else status.problem
        parts.append(f'<p><span class="badge unavailable">STATE UNAVAILABLE</span> {escape(problem)}</p>')
    parts += _ages(status)
    for deployment in status.deployments:
        parts += _deployment(deployment, public)
    if not any(d.configs for d in status.deployments) and not status.problem:
        parts.append("<p>No process of this machine has resolved a configuration yet.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_graph_html(config: ConfigView) -> str:
    """The config's node graph: an inline SVG from Graphviz, or the Mermaid text when ``dot`` is missing or fails."""
    graph = FlowGraph.from_config(config.config)
    dot = shutil.which("dot")
    if dot is not None:
        try:
            done = subprocess.run(
                [dot, "-Tsvg"], input=to_dot(graph).encode(), capture_output=True, timeout=DOT_TIMEOUT, check=True
            )
            svg = done.stdout.decode("utf-8", "replace")
            start = svg.find("<svg")
            if start >= 0:
                return f'<div class="graph" role="img" aria-label="node graph">{svg[start:]}</div>'
        except (OSError, subprocess.SubprocessError):
            pass
    return (
        '<div class="graph"><div class="muted">Graphviz (dot) is not installed: the graph in Mermaid.</div>'
        f"<pre>{escape(to_mermaid(graph))}</pre></div>"
    )


def _deployment(deployment: DeploymentStatus, public: bool) -> list[str]:
    """One deployment apart: its breaker, incidents, copies and configs."""
    state = "ok" if deployment.healthy else "degraded"
    name = deployment.label(public=public)
    parts = [
        f'<section class="deployment"><h2>Deployment {escape(name)} '
        f'<span class="badge {state}">{state.upper()}</span></h2>'
    ]
    parts += _breaker(deployment, public)
    parts += _incidents(deployment)
    copies = [(f"last-known-good copy of {k}", format_seconds(a)) for k, a in deployment.last_known_good_ages.items()]
    if copies:
        parts += ["<h3>Last-known-good copies</h3>", _table(("Copy", "Age"), copies)]
    for config in deployment.configs:
        parts += _config(config, public)
    parts.append("</section>")
    return parts


def _breaker(status: DeploymentStatus, public: bool) -> list[str]:
    breaker = status.breaker
    rows = [
        ("State", f'<span class="badge {escape(breaker.state)}">{escape(breaker.state.replace("_", "-"))}</span>'),
        ("Consecutive failures", str(breaker.failures)),
    ]
    if breaker.opened_at is not None and breaker.state != "closed":
        rows.append(("Opened", f"{_clock(breaker.opened_at)} ({format_seconds(status.now - breaker.opened_at)} ago)"))
    if status.probe_at is not None:
        wait = status.probe_at - status.now
        when = f"in {format_seconds(wait)}" if wait > 0 else "now (the next resolution probes the database)"
        rows.append(("Next probe", f"{_clock(status.probe_at)}, {when}"))
    if not public and breaker.last_error:
        rows.append(("Last error", f'<span class="detail">{escape(breaker.last_error)}</span>'))
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return ["<h3>Database circuit breaker</h3>", f"<dl>{items}</dl>"]


def _incidents(status: DeploymentStatus) -> list[str]:
    parts = ["<h3>Incidents</h3>"]
    configs = sorted({(i.vertical, i.platform) for i in status.incidents})
    for vertical, platform in configs:
        rows = [
            (i.component, i.reason, _time(i.started_at), format_seconds(i.seconds), str(i.fallbacks))
            for i in status.incidents
            if (i.vertical, i.platform) == (vertical, platform)
        ]
        parts.append(f"<h4>Open in {escape(vertical)}/{escape(platform)}</h4>")
        parts.append(_table(("Component", "Reason", "Since", "Lasting", "Fallbacks"), rows))
    if status.outages:
        parts.append("<h4>Open outages</h4>")
        parts.append(_outage_table(status.outages))
    if status.history:
        parts.append("<h4>Recent, ended</h4>")
        parts.append(_outage_table(status.history))
    if len(parts) == 1:
        parts.append("<p>No incident: every component comes from the database.</p>")
    return parts


def _outage_table(outages: tuple[OutageView, ...]) -> str:
    rows = [
        (
            f"{o.vertical}/{o.platform}",
            _time(o.started_at),
            "ongoing" if o.ended_at is None else _time(o.ended_at),
            format_seconds(o.seconds),
            str(o.resolutions),
        )
        for o in outages
    ]
    return _table(("Config", "Started", "Ended", "Duration", "Degraded resolutions"), rows)


def _ages(status: MachineStatus) -> list[str]:
    rows = [(f"snapshot of {v}", format_seconds(age)) for v, age in status.snapshot_ages.items()]
    if not rows:
        return []
    return ["<h2>Snapshots</h2>", _table(("Copy", "Age"), rows)]


def _config(config: ConfigView, public: bool) -> list[str]:
    label = f"{config.vertical} / {config.platform}"
    fallbacks = [c for c in config.components if c.degraded]
    badge = (
        f'<span class="badge degraded">DEGRADED: {len(fallbacks)} of {len(config.components)}</span>'
        if fallbacks
        else '<span class="badge ok">ALL FROM DATABASE</span>'
    )
    parts = [
        f"<h3>{escape(label)} {badge}</h3>",
        f'<div class="muted">Resolved {format_seconds(config.resolved_seconds_ago)} ago by a process of this machine.'
        "</div>",
    ]
    header = ("Component", "Source", "Reason", "Age") + (() if public else ("Detail",))
    body = []
    for comp in config.components:
        cells = [escape(comp.key), escape(comp.source), escape(comp.reason or "-"), format_seconds(comp.age_seconds)]
        if not public:
            cells.append(f'<span class="detail">{escape(comp.detail or "")}</span>')
        row_class = ' class="fallback"' if comp.degraded else ""
        body.append(f"<tr{row_class}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in header)
    parts.append(f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')
    parts.append("<h4>Node graph</h4>")
    parts.append(render_graph_html(config))
    return parts


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _time(timestamp: float) -> str:
    """Time of day, with the date when it is not today."""
    moment = datetime.fromtimestamp(timestamp).astimezone()
    if moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
