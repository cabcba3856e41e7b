"""Prewarm a LiveKit job process before its call arrives: imports, TLS, the first resolution.

LiveKit Agents starts a process (or thread) per call ahead of time and runs the
server's ``setup_fnc`` in it. :func:`prewarm` is made for that slot::

    from livekit.agents import AgentServer
    from livekit_fallback.call import prewarm, start_call

    server = AgentServer(setup_fnc=prewarm)

It imports the provider plugins (they register on the main thread only),
builds the process's TLS context and a database client with it, and resolves
each vertical once. With a database configured the resolver keeps its cache,
breaker and alarms in the machine-wide store in the cache directory, so this
resolution is a cache hit for the call's ``resolve_agent_config`` in this
process and in every other process of the machine; without one, the snapshot
files are parsed and kept. A failure here is logged and never stops the
process: the call resolves again on its own.

Verticals: ``verticals=`` when called directly, else ``LIVEKIT_FALLBACK_PREWARM_VERTICALS``
(comma-separated), else every vertical with a snapshot file in the search path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import providers as _providers  # noqa: F401  (imports and registers the provider plugins)
from .blocking import run_to_completion
from .config.resolver import Resolver
from .config.settings import Settings, SettingsError
from .config.sources.snapshot import SnapshotSource
from .config.sources.supabase import build_client
from .log import logger

__all__ = ["PREWARM_KEY", "PREWARM_VERTICALS_ENV", "PrewarmReport", "prewarm"]

PREWARM_KEY = "livekit_fallback.prewarm"
"""Key of the :class:`PrewarmReport` in ``JobProcess.userdata``."""

PREWARM_VERTICALS_ENV = "LIVEKIT_FALLBACK_PREWARM_VERTICALS"
"""Comma-separated verticals to resolve in the prewarm (default: every vertical with a snapshot)."""


@dataclass
class PrewarmReport:
    """What a prewarm did, kept in ``proc.userdata[PREWARM_KEY]``.

    Attributes:
        seconds: Wall time of the whole prewarm.
        resolved: Vertical to ``True`` when served healthy, ``False`` when degraded.
        failed: Vertical to why it could not be resolved.
    """

    seconds: float = 0.0
    resolved: dict[str, bool] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def prewarm(proc: Any = None, *, verticals: Sequence[str] | None = None) -> PrewarmReport:
    """Warm this process for a call: plugins, TLS context, database client, one resolution per vertical.

    Use it as LiveKit's ``AgentServer(setup_fnc=prewarm)``; safe to call from a
    thread with a running event loop (the resolution then runs on its own thread).

    Args:
        proc: LiveKit's ``JobProcess`` (its ``userdata`` receives the report), or ``None``.
        verticals: The verticals to resolve (see the module docstring for the default).

    Returns:
        What was done; also stored in ``proc.userdata[PREWARM_KEY]``.
    """
    started = time.perf_counter()
    report = PrewarmReport()
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        logger.error("PREWARM: invalid settings, nothing resolved ahead of the call: %s", exc)
        settings = None
    if settings is not None:
        try:
            _warm_tls(settings)
            names = list(verticals) if verticals is not None else _verticals(settings)
            run_to_completion(_resolve_all(settings, names, report), thread_name="livekit-fallback-prewarm")
        except Exception as exc:  # a prewarm never stops the process: the call resolves on its own
            logger.exception("PREWARM failed; the call will resolve on its own: %s", exc)
    report.seconds = time.perf_counter() - started
    if proc is not None and isinstance(getattr(proc, "userdata", None), dict):
        proc.userdata[PREWARM_KEY] = report
    logger.info(
        "PREWARM: %d vertical(s) resolved in %.0f ms (%s)",
        len(report.resolved),
        report.seconds * 1000,
        ", ".join(f"{v}: {'healthy' if ok else 'degraded'}" for v, ok in report.resolved.items()) or "none",
        extra={"event": "prewarm", "seconds": round(report.seconds, 3), "failed": sorted(report.failed)},
    )
    return report


def _warm_tls(settings: Settings) -> None:
    """Load the CA bundle into the process's one TLS context and build (then drop) a database client."""
    if not settings.database_configured:
        return
    assert settings.supabase_url and settings.supabase_key
    _client, http = build_client(settings.supabase_url, settings.supabase_key, timeout=settings.deadline)
    run_to_completion(http.aclose(), thread_name="livekit-fallback-prewarm")


def _verticals(settings: Settings) -> list[str]:
    listed = [v.strip() for v in os.environ.get(PREWARM_VERTICALS_ENV, "").split(",") if v.strip()]
    if listed:
        return listed
    dirs = [*([settings.snapshot_dir] if settings.snapshot_dir else []), *SnapshotSource().dirs]
    return sorted({path.stem for d in dirs if Path(d).is_dir() for path in Path(d).glob("*.toml")})


async def _resolve_all(settings: Settings, verticals: Sequence[str], report: PrewarmReport) -> None:
    async with Resolver.from_settings(settings) as resolver:
        for vertical in verticals:
            try:
                config = await resolver.resolve(vertical, "livekit")
            except Exception as exc:  # a prewarm never stops the process
                report.failed[vertical] = f"{type(exc).__name__}: {exc}"
                logger.warning("PREWARM: %s could not be resolved ahead of the call: %s", vertical, exc)
            else:
                report.resolved[vertical] = not config.is_degraded
