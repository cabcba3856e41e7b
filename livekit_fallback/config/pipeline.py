"""One fresh resolution: ordered sources within a deadline, per-component fallback.

Each component (the theme, every node, each model) is taken whole from the
first source that yields a valid value: the database, then the last-known-good
copy, then the snapshot. The database is skipped when the circuit breaker is
open. Local sources always run, even after the deadline: they are the floor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import ConfigUnavailableError
from .alarms import FallbackEvent
from .breaker import CircuitBreaker
from .model import AgentConfig, Models, Platform, Provenance, Reason, Source, component_keys
from .sources.base import ConfigSource, Failure, FetchRequest, Found, Outcome, format_exception
from .sources.supabase import location_of

__all__ = ["ConfigUnavailableError", "Resolution", "run_pipeline"]

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
    """

    config: AgentConfig
    events: tuple[FallbackEvent, ...]
    database_ok: bool | None
    healthy: tuple[str, ...]


async def run_pipeline(
    *,
    vertical: str,
    platform: Platform,
    node_names: Sequence[str],
    database: ConfigSource | None,
    local_sources: Sequence[ConfigSource],
    breaker: CircuitBreaker | None,
    deadline_seconds: float,
    snapshot_taken_at: datetime | None = None,
) -> Resolution:
    """Resolve every component once, in source order, within the deadline.

    A cached copy older than ``snapshot_taken_at`` is not used: a snapshot
    pulled after the cache was written is the newer known-good copy.

    Raises:
        ConfigUnavailableError: A component is in no source at all.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    pending = component_keys(node_names)
    found: dict[str, tuple[Found, Source]] = {}
    failures: dict[str, list[Failure]] = {}
    database_ok: bool | None = None
    if database is None:
        skipped = Failure(Reason.NOT_CONFIGURED, "no database configured (snapshot mode)", "database")
        failures = {key: [skipped] for key in pending}
    elif breaker is not None and not breaker.allow():
        failures = {
            key: [Failure(Reason.CIRCUIT_OPEN, breaker.describe(), location_of(key, platform))] for key in pending
        }
    else:
        budget_end = deadline - LOCAL_RESERVE * deadline_seconds
        request = FetchRequest(vertical, platform, tuple(pending), tuple(node_names), budget_end)
        try:
            # The source returns by budget_end itself; the outer timeout is only a backstop.
            slack = max(0.05, 0.1 * deadline_seconds)
            outcomes = await _fetch(database, request, timeout=max(0.0, budget_end - loop.time()) + slack)
        except BaseException:
            if breaker is not None:
                breaker.release_probe()
            raise
        database_ok = _absorb(outcomes, pending, database.source, found, failures)
        if breaker is not None:
            _record(breaker, database_ok, outcomes)
        pending = [key for key in pending if key not in found]
    for source in local_sources:
        if not pending:
            break
        request = FetchRequest(vertical, platform, tuple(pending), tuple(node_names), deadline, snapshot_taken_at)
        outcomes = await _fetch(source, request, timeout=None)
        _absorb(outcomes, pending, source.source, found, failures)
        pending = [key for key in pending if key not in found]
    if pending:
        raise ConfigUnavailableError(vertical, platform, {k: failures.get(k, []) for k in pending})
    return _assemble(vertical, platform, node_names, found, failures, database_ok)


async def _fetch(source: ConfigSource, request: FetchRequest, timeout: float | None) -> dict[str, Outcome]:
    try:
        return await asyncio.wait_for(source.fetch(request), timeout)
    except asyncio.TimeoutError:
        reason, detail, exc = Reason.TIMEOUT, f"{source.source.value} source did not return within the deadline", None
    except Exception as exc_:  # a source must never take the caller down
        reason, detail, exc = Reason.BAD_RESPONSE, format_exception(exc_), exc_
    return {key: Failure(reason, detail, location_of(key, request.platform), exc) for key in request.keys}


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


def _record(breaker: CircuitBreaker, ok: bool, outcomes: dict[str, Outcome]) -> None:
    if ok:
        breaker.record_success()
        return
    errors = [o for o in outcomes.values() if isinstance(o, Failure)]
    detail = errors[0].detail if errors else "unknown error"
    breaker.record_failure(detail, timed_out=any(f.reason is Reason.TIMEOUT for f in errors))


def _assemble(
    vertical: str,
    platform: Platform,
    node_names: Sequence[str],
    found: dict[str, tuple[Found, Source]],
    failures: dict[str, list[Failure]],
    database_ok: bool | None,
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
    value = lambda key: found[key][0].value  # noqa: E731
    config = AgentConfig(
        vertical=vertical,
        platform=platform,
        theme=value("theme"),
        nodes={name: value(f"nodes.{name}") for name in node_names},
        models=Models(stt=value("models.stt"), llm=value("models.llm"), tts=value("models.tts")),
        provenance=provenance,
        resolved_at=now,
    )
    events = tuple(
        FallbackEvent(key, vertical, platform, failures[key][0], outcome, source, now)
        for key, (outcome, source) in found.items()
        if source is not Source.DATABASE
    )
    healthy = tuple(key for key, (_, source) in found.items() if source is Source.DATABASE)
    return Resolution(config, events, database_ok, healthy)
