"""One fresh resolution: ordered sources within a deadline, per-component fallback.

Each component (the theme, every node, each model) is taken whole from the
first source that yields a valid value: the database, then the last-known-good
copy, then the snapshot. The database is skipped when the state says so (the
breaker is open, or another call is reading it). Local sources always run,
even after the deadline: they are the floor.

The database is blamed only for what it did. A deadline that this process's
own event loop reached late (a busy, paused or starved call process) gives the
read a short grace to take in an answer that had arrived
(:mod:`~livekit_fallback.config.deadline`); only a read still unanswered
after it has timed out.

The pipeline knows no table names. Where the database reads a component is
the database source's to say: through ``location(key, platform)`` when it has
one (:class:`~livekit_fallback.config.seams.LocatedSource`), else as it
reported in its own latest outcomes for that component (:class:`Locations`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ..errors import ConfigUnavailableError
from .alarms import FallbackEvent
from .deadline import wait_until
from .keys import MODEL_KINDS, ComponentKey, ModelKind, Platform, component_keys
from .model import AgentConfig, ModelChoice, Models, Provenance, Reason, Source
from .seams import LocatedSource
from .sources.base import ConfigSource, Failure, FetchRequest, Found, Outcome, format_exception
from .state.policy import Verdict

__all__ = ["Backups", "ConfigUnavailableError", "Locations", "Resolution", "Skip", "run_pipeline"]

Backups = Mapping[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]]
"""Per model kind, the ordered backup choices and where each came from (see ``AgentConfig.backups``)."""

LOCAL_RESERVE = 0.05
"""Fraction of the deadline kept for local sources after the database."""


_SERVER_LEVEL = {Reason.UNREACHABLE, Reason.TIMEOUT, Reason.HTTP_ERROR, Reason.AUTH, Reason.BAD_RESPONSE}


@dataclass(frozen=True)
class Resolution:
    """A fresh resolution: the config, its fallback events, and what the database did.

    Attributes:
        config: The validated config.
        events: One event per component not served from the database.
        database_ok: True if the database answered, False if it failed at the
            connection or server level, None if it was not asked.
        healthy: Component keys served from the database.
        verdict: What the read says about the database (``None``: not asked,
            or a stall, which says nothing about it).
        stalled: The read failed for a reason that is not the database's (see
            ``excuse``): no verdict is recorded and no banner is logged.
        excuse: Why the database is not blamed, for the log (with ``stalled``).
    """

    config: AgentConfig
    events: tuple[FallbackEvent, ...]
    database_ok: bool | None
    healthy: tuple[str, ...]
    verdict: Verdict | None = None
    stalled: bool = False
    excuse: str = ""


@dataclass(frozen=True)
class Skip:
    """Why the database is not asked in this resolution (the state's decision).

    Attributes:
        detail: The fallback reason, e.g. the open breaker's last error.
    """

    detail: str


class Locations:
    """Where a source reads each component, in the source's own words.

    Args:
        source: The source (usually the database) whose locations are wanted.
    """

    def __init__(self, source: ConfigSource) -> None:
        self._name = source.source.value
        self._ask = source.location if isinstance(source, LocatedSource) else None  # checked once: it is slow
        self._seen: dict[tuple[Platform, str], str] = {}

    def of(self, key: str, platform: Platform) -> str:
        """The table(s) or file ``key`` is read from; the source's name when it never said."""
        if self._ask is not None:
            return self._ask(key, platform)
        return self._seen.get((platform, key), self._name)

    def learn(self, platform: Platform, outcomes: Mapping[str, Outcome]) -> None:
        """Remember the locations the source reported in its outcomes."""
        for key, outcome in outcomes.items():
            if outcome.location:
                self._seen[(platform, key)] = outcome.location


async def run_pipeline(
    *,
    vertical: str,
    platform: Platform,
    node_names: Sequence[str],
    database: ConfigSource | None,
    local_sources: Sequence[ConfigSource],
    deadline_seconds: float,
    skip: Skip | None = None,
    snapshot_taken_at: datetime | None = None,
    locations: Locations | None = None,
    backups: Backups | None = None,
) -> Resolution:
    """Resolve every component once, in source order, within the deadline.

    A cached copy older than ``snapshot_taken_at`` is not used: a snapshot
    pulled after the cache was written is the newer known-good copy.

    Args:
        vertical: The business vertical.
        platform: ``livekit`` or ``signalwire``.
        node_names: The vertical's node names, in order.
        database: The database source, or ``None`` in snapshot mode.
        local_sources: The sources after the database, in order (the last one is the floor).
        deadline_seconds: The total time the resolution may take.
        skip: Do not ask the database, and why (the breaker is open).
        snapshot_taken_at: When the snapshot was taken (older cached copies are skipped).
        locations: Where the database reads each component (kept across
            resolutions, so a skipped database is still named by table).
        backups: The backup model choices the config carries.

    Raises:
        ConfigUnavailableError: A component is in no source at all.
    """
    loop = asyncio.get_running_loop()
    if database is not None and skip is None:
        # A cold process's imports and TLS are its own work, not the database's: done before the deadline starts.
        await _prepare(database, loop.time() + deadline_seconds)
    deadline = loop.time() + deadline_seconds
    pending = [str(key) for key in component_keys(node_names)]
    found: dict[str, tuple[Found, Source]] = {}
    failures: dict[str, list[Failure]] = {}
    database_ok: bool | None = None
    verdict: Verdict | None = None
    stalled = False
    if database is None:
        skipped = Failure(Reason.NOT_CONFIGURED, "no database configured (snapshot mode)", "database")
        failures = {key: [skipped] for key in pending}
    elif skip is not None:
        where = locations if locations is not None else Locations(database)
        failures = {key: [Failure(Reason.CIRCUIT_OPEN, skip.detail, where.of(key, platform))] for key in pending}
    else:
        where = locations if locations is not None else Locations(database)
        budget_end = deadline - LOCAL_RESERVE * deadline_seconds
        given = max(0.0, budget_end - loop.time())
        request = FetchRequest(vertical, platform, tuple(pending), tuple(node_names), budget_end)
        # The source returns by budget_end itself; the outer timeout is only a backstop.
        slack = max(0.05, 0.1 * deadline_seconds)
        outcomes = await _fetch(database, request, where, timeout=max(0.0, budget_end - loop.time()) + slack)
        where.learn(platform, outcomes)
        database_ok = _absorb(outcomes, pending, database.source, found, failures)
        verdict = replace(_verdict(database_ok, outcomes), given=given)
        pending = [key for key in pending if key not in found]
    for source in local_sources:
        if not pending:
            break
        request = FetchRequest(vertical, platform, tuple(pending), tuple(node_names), deadline, snapshot_taken_at)
        outcomes = await _fetch(source, request, Locations(source), timeout=None)
        _absorb(outcomes, pending, source.source, found, failures)
        pending = [key for key in pending if key not in found]
    if pending:
        raise ConfigUnavailableError(vertical, platform, {k: failures.get(k, []) for k in pending})
    resolution = _assemble(vertical, platform, node_names, found, failures, database_ok, backups or {})
    return replace(resolution, verdict=verdict, stalled=stalled)


async def _fetch(
    source: ConfigSource, request: FetchRequest, where: Locations, timeout: float | None
) -> dict[str, Outcome]:
    task = asyncio.ensure_future(source.fetch(request))
    try:
        if timeout is None:
            return await task
        done, _ = await wait_until([task], timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    except Exception as exc_:  # a source must never take the caller down
        return _failed(request, where, Reason.BAD_RESPONSE, format_exception(exc_), exc_)
    if not done:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        detail = f"{source.source.value} source did not return within the deadline"
        return _failed(request, where, Reason.TIMEOUT, detail, None)
    exc = task.exception()
    if exc is not None:
        return _failed(request, where, Reason.BAD_RESPONSE, format_exception(exc), exc)
    return task.result()


async def _prepare(database: ConfigSource, until: float) -> None:
    """Let the database source set itself up (build its client), waiting at most until ``until``.

    Called before a read's deadline starts: the time it takes is the
    process's, not the database's (the prewarm step does it before a call).
    """
    prepare = getattr(database, "prepare", None)
    if prepare is None:
        return
    task = asyncio.ensure_future(prepare())
    try:
        await wait_until([task], max(0.0, until - asyncio.get_running_loop().time()))
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task.done() and not task.cancelled():
        task.exception()  # seen: the read itself reports why the source cannot be used


def _failed(
    request: FetchRequest, where: Locations, reason: Reason, detail: str, exc: BaseException | None
) -> dict[str, Outcome]:
    return {key: Failure(reason, detail, where.of(key, request.platform), exc) for key in request.keys}


def _absorb(
    outcomes: dict[str, Outcome],
    pending: Sequence[str],
    source: Source,
    found: dict[str, tuple[Found, Source]],
    failures: dict[str, list[Failure]],
) -> bool:
    """Take found values, record failures; True if the source answered at least once."""
    answered = False
    for key in pending:
        outcome = outcomes.get(key) or Failure(Reason.BAD_RESPONSE, "source returned no outcome", "?")
        if isinstance(outcome, Found):
            found[key] = (outcome, source)
            answered = True
        else:
            failures.setdefault(key, []).append(outcome)
            answered = answered or outcome.reason not in _SERVER_LEVEL
    return answered


def _verdict(ok: bool, outcomes: dict[str, Outcome]) -> Verdict:
    """What the read says about the database; ``timed_out`` also when only some requests ran out of time."""
    errors = [o for o in outcomes.values() if isinstance(o, Failure)]
    timed_out = any(f.reason is Reason.TIMEOUT for f in errors)
    if ok:
        return Verdict(True, timed_out=timed_out)
    detail = errors[0].detail if errors else "unknown error"
    return Verdict(False, detail, timed_out=timed_out)


def _assemble(
    vertical: str,
    platform: Platform,
    node_names: Sequence[str],
    found: dict[str, tuple[Found, Source]],
    failures: dict[str, list[Failure]],
    database_ok: bool | None,
    backups: Backups,
) -> Resolution:
    now = datetime.now(timezone.utc)
    provenance: dict[str, Provenance] = {}
    for key, (outcome, source) in found.items():
        first = failures[key][0] if source is not Source.DATABASE else None
        provenance[key] = Provenance(
            source=source,
            reason=first.reason if first else None,
            detail=first.detail if first else None,
            taken_at=outcome.taken_at,
            location=outcome.location,
        )

    def value(key: ComponentKey) -> Any:
        return found[str(key)][0].value

    config = AgentConfig(
        vertical=vertical,
        platform=platform,
        theme=value(ComponentKey.theme()),
        nodes={name: value(ComponentKey.node(name)) for name in node_names},
        models=Models(**{kind: value(ComponentKey.model(kind)) for kind in MODEL_KINDS}),
        provenance=provenance,
        resolved_at=now,
        backups=dict(backups),
    )
    events = tuple(
        FallbackEvent(key, vertical, platform, failures[key][0], outcome, source, now)
        for key, (outcome, source) in found.items()
        if source is not Source.DATABASE
    )
    healthy = tuple(key for key, (_, source) in found.items() if source is Source.DATABASE)
    return Resolution(config, events, database_ok, healthy)
