"""Loud, structured alarms for every fallback.

Each component that does not come from the database is logged at ERROR with a
banner an operator cannot miss (what failed, why, what the agent uses instead,
what to do), the exception's trace when there was one, and the same facts as
structured ``extra`` fields so JSON log pipelines can alert on them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..log import logger
from .keys import ComponentKey
from .model import ModelChoice, Platform, Reason, Source
from .sources.base import Failure, Found
from .state.records import AlarmDecision, Recovery

__all__ = [
    "BANNER_RULE",
    "Alarms",
    "FallbackEvent",
    "banner",
    "fallback_extra",
    "logger",
    "unavailable_banner",
]


"""The package logger. The package never configures logging; attach handlers in your app."""

BANNER_RULE = "=" * 80

_SOURCE_LABEL = {
    Source.DATABASE: "database",
    Source.LAST_KNOWN_GOOD: "last-known-good",
    Source.SNAPSHOT: "snapshot",
}


@dataclass(frozen=True)
class FallbackEvent:
    """One component served from a fallback copy.

    Attributes:
        component: Component key (``theme``, ``nodes.verify``, ``models.llm``).
        vertical: The business vertical.
        platform: ``livekit`` or ``signalwire``.
        failure: Why the database did not supply it.
        used: The copy used instead.
        used_source: Which source that copy came from.
        now: When the fallback happened (for copy ages).
    """

    component: str
    vertical: str
    platform: Platform
    failure: Failure
    used: Found
    used_source: Source
    now: datetime

    @property
    def key(self) -> ComponentKey:
        """The component's key, parsed."""
        return ComponentKey.parse(self.component)

    @property
    def kind(self) -> str:
        """``theme``, ``node`` or ``model``."""
        return self.key.kind

    @property
    def name(self) -> str:
        """The node name or model kind (``verify``, ``llm``); the vertical for the theme."""
        return self.key.name or self.vertical

    @property
    def copy_description(self) -> str:
        """Which copy is used and how old it is, e.g. ``snapshot taken 2025-11-21``."""
        taken = self.used.taken_at
        if self.used_source is Source.SNAPSHOT:
            date = taken.date().isoformat() if taken else "an unknown date"
            return f"snapshot taken {date}"
        if taken is None:
            return f"{_SOURCE_LABEL[self.used_source]} copy of unknown age"
        if taken.tzinfo is None:
            taken = taken.replace(tzinfo=timezone.utc)
        return f"{_SOURCE_LABEL[self.used_source]} copy read {_age(self.now - taken)} ago ({_stamp(taken)})"

    @property
    def copy_date(self) -> str:
        """The date (snapshot) or time (last-known-good) of the copy used."""
        taken = self.used.taken_at
        if taken is None:
            return "an unknown date"
        return taken.date().isoformat() if self.used_source is Source.SNAPSHOT else _stamp(taken)


def banner(event: FallbackEvent) -> str:
    """Render the multi-line ERROR banner for one fallback, in the documented format."""
    failure = event.failure
    if failure.reason is Reason.UNBUILDABLE:
        return unavailable_banner(event)
    source_label = _SOURCE_LABEL[event.used_source]
    title = _title(event)
    if event.kind == "node":
        facts = [f"Node: {event.name}", f"Vertical: {event.vertical}", f"Tables: {failure.location}"]
        impact = f"Using {source_label} node config '{event.name}' ({event.copy_description})"
        what = "instructions/tools/routing"
        actions = [
            f"Check prompts table for node_name='{event.name}', vertical='{event.vertical}'",
            "Check prompt_versions table for is_active=true",
        ]
    elif event.kind == "theme":
        facts = [f"Vertical: {event.vertical}", f"Table: {failure.location}"]
        impact = f"Using {source_label} theme prompt for '{event.vertical}' ({event.copy_description})"
        what = "theme prompt"
        actions = [f"Check theme_prompts table for vertical='{event.vertical}', is_active=true"]
    else:
        choice = event.used.value
        value = choice.value if isinstance(choice, ModelChoice) else str(choice)
        kind = event.name.upper()
        facts = [f"Platform: {event.platform}", f"Model Type: {kind}", f"Table: {failure.location}"]
        impact = f"Using fallback {kind} model '{value}' from {event.copy_description}"
        what = f"{kind} model"
        actions = [f"Check {failure.location} for exactly one row with is_active=true"]
    actions.append("Verify Supabase connection and credentials")
    if failure.reason is Reason.AUTH:
        actions.append("Check SUPABASE_SERVICE_KEY: the database rejected the key")
    lines = [BANNER_RULE, f"🚨🚨🚨 DATABASE FAILURE: {title} 🚨🚨🚨"]
    if failure.reason.is_connection_level:
        lines.append("⚠️⚠️⚠️ DATABASE CONNECTION UNREACHABLE ⚠️⚠️⚠️")
    lines += facts
    lines.append(f"Reason: {failure.detail} [{failure.reason.value}]")
    lines.append(f"Impact: {impact}")
    lines.append(f"⚠️  Agent will use {source_label.upper()} {what} from {event.copy_date}")
    lines.append(f"⚠️  Any database changes since that {source_label} copy will NOT be reflected")
    lines.append(f"Action: {actions[0]}")
    lines += [f"        {a}" for a in actions[1:]]
    lines.append(BANNER_RULE)
    return "\n".join(lines)


def unavailable_banner(event: FallbackEvent) -> str:
    """The ``MODEL UNAVAILABLE`` banner: the configured model cannot be built in this process.

    Not a database failure: the database (or the copy in use) answered, but
    names a model whose provider plugin is not installed or whose key is not
    set. The banner names what is missing per route (the failure's exception
    is a ``ModelBuildError`` carrying ``attempts``) and the model used instead.
    """
    failure = event.failure
    kind = event.name.upper()
    choice = getattr(failure.exc, "choice", None)
    configured = choice.value if isinstance(choice, ModelChoice) else "?"
    used = event.used.value
    value = used.value if isinstance(used, ModelChoice) else str(used)
    attempts: dict[str, str] = dict(getattr(failure.exc, "attempts", None) or {})
    missing = [f"{route}: {why}" for route, why in attempts.items()] or [failure.detail]
    lines = [
        BANNER_RULE,
        f"🚨🚨🚨 MODEL UNAVAILABLE: {kind} MODEL '{configured}' 🚨🚨🚨",
        f"Platform: {event.platform}",
        f"Model Type: {kind}",
        f"Table: {failure.location}",
        f"Reason: {kind} model '{configured}' cannot be built in this process [{failure.reason.value}]",
        f"Missing: {missing[0]}",
        *(f"         {m}" for m in missing[1:]),
        f"Impact: Using fallback {kind} model '{value}' from {event.copy_description}",
        "⚠️  The configuration was read; the model it names cannot be built here (a key or a plugin is missing)",
        f"Action: Set the missing key or install the provider plugin for '{configured}'",
        f"        Or choose a {kind} model this agent can build in {failure.location}",
        BANNER_RULE,
    ]
    return "\n".join(lines)


def fallback_extra(event: FallbackEvent) -> dict[str, Any]:
    """The structured ``extra`` fields logged with a fallback (JSON-serialisable values)."""
    value = event.used.value
    unbuildable = event.failure.reason is Reason.UNBUILDABLE
    return {
        "event": "model_unavailable" if unbuildable else "config_fallback",
        "component": event.component,
        "component_kind": event.kind,
        "vertical": event.vertical,
        "platform": event.platform,
        "tables": event.failure.location,
        "reason_class": event.failure.reason.value,
        "reason": event.failure.detail,
        "connection_unreachable": event.failure.reason.is_connection_level,
        "fallback_source": event.used_source.value,
        "fallback_location": event.used.location,
        "fallback_taken_at": event.used.taken_at.isoformat() if event.used.taken_at else None,
        "fallback_value": value.value if isinstance(value, ModelChoice) else None,
    }


def _age(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


class Alarms:
    """Writes the alarms: the banner that opens an incident, the counted lines, the recovery line.

    Whether a line is due is not decided here: the deployment's state decides
    it for every process of the machine (:func:`~livekit_fallback.config.state.policy.account`),
    and this class writes what was decided. The last-known-good problem lines
    and the snapshot-mode line are throttled per process (they are about this
    process's files and settings, not about the database).

    Args:
        log: The logger to write to (the package logger by default).
        repeat_interval: Seconds between lines about one last-known-good problem.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(
        self, log: logging.Logger = logger, *, repeat_interval: float = 60.0, clock: Any = time.monotonic
    ) -> None:
        self._log = log
        self.repeat_interval = repeat_interval
        self._clock = clock
        self._snapshot_mode_reported: set[tuple[str, str]] = set()
        self._problems_reported: dict[tuple[str, str], float] = {}

    def report(
        self,
        vertical: str,
        platform: str,
        events: Sequence[FallbackEvent],
        decisions: Sequence[AlarmDecision],
        recovery: Recovery | None,
    ) -> None:
        """Write what the state decided about one served resolution.

        Args:
            vertical: The vertical resolved.
            platform: The platform resolved.
            events: One per component served from a fallback.
            decisions: One per event, in order.
            recovery: The outage this resolution ended, if any.
        """
        traced: set[int] = set()
        for event, decision in zip(events, decisions, strict=True):
            if decision.action == "banner":
                self.log_banner(event, traced)
            elif decision.action == "repeat":
                started = datetime.fromtimestamp(decision.started_at, timezone.utc)
                self.log_repeat(event, decision.since_line, decision.interval, decision.total, started)
        if recovery is not None:
            started = datetime.fromtimestamp(recovery.started_at, timezone.utc)
            self.log_recovery(vertical, platform, recovery.seconds, recovery.resolutions, started)

    def log_recovery(self, vertical: str, platform: str, seconds: float, resolutions: int, started: datetime) -> None:
        """Log the one line that ends an outage: how long it lasted, how many resolutions it degraded."""
        self._log.warning(
            "DATABASE RECOVERED: %s/%s is served from the database again after %.1f s; "
            "%d resolution(s) were served from fallbacks during the outage (since %s)",
            vertical,
            platform,
            seconds,
            resolutions,
            _stamp(started),
            extra={
                "event": "config_recovered",
                "vertical": vertical,
                "platform": platform,
                "outage_seconds": round(seconds, 3),
                "degraded_resolutions": resolutions,
            },
        )

    def log_banner(self, event: FallbackEvent, traced: set[int]) -> None:
        """Log the full banner that opens an incident.

        Args:
            event: The fallback.
            traced: Ids of exceptions whose trace was already logged for this
                resolution: one failed request can fail all nine nodes, and its
                trace goes with the first banner only.
        """
        exc = event.failure.exc
        exc_info = exc if exc is not None and id(exc) not in traced else None
        if exc is not None:
            traced.add(id(exc))
        self._log.error(banner(event), exc_info=exc_info, extra=fallback_extra(event))

    def log_repeat(self, event: FallbackEvent, count: int, interval: float, total: int, started: datetime) -> None:
        """Log the short counted line of an ongoing incident."""
        extra = fallback_extra(event)
        self._log.error(
            "%s continues: %s for %s/%s served from %s %d more time(s) in the last %.0f s "
            "(%d since %s); reason: %s [%s]",
            "MODEL UNAVAILABLE" if event.failure.reason is Reason.UNBUILDABLE else "DATABASE FAILURE",
            _title(event),
            event.vertical,
            event.platform,
            event.copy_description,
            count,
            interval,
            total,
            _stamp(started),
            event.failure.detail,
            event.failure.reason.value,
            extra={**extra, "event": f"{extra['event']}_repeat", "count": count, "total": total},
        )

    def stale_copy(self, vertical: str, platform: str, age: float, window: float) -> None:
        """Say that a healthy stored copy was served past the stale window: once per vertical, platform and interval.

        Its components keep the ``database`` label with that read's time
        (``taken_at``); this line says the copy is not a recent read.
        """
        key = (f"stale:{vertical}/{platform}", "")
        now = self._clock()
        last = self._problems_reported.get(key)
        if last is not None and now - last < self.repeat_interval:
            return
        self._problems_reported[key] = now
        self._log.warning(
            "STALE COPY SERVED: %s/%s was served a config read from the database %.0f s ago, past the stale "
            "window of %.0f s, and no fresh read has landed since. Action: check that this machine reaches the "
            "database (livekit-fallback status --machine).",
            vertical,
            platform,
            age,
            window,
            extra={"event": "stale_copy_served", "vertical": vertical, "platform": platform, "age_seconds": age},
        )

    def cache_problem(self, path: str, detail: str) -> None:
        """Log that a last-known-good file was skipped or not written: once per problem per interval."""
        now = self._clock()
        last = self._problems_reported.get((path, detail))
        if last is not None and now - last < self.repeat_interval:
            return
        if len(self._problems_reported) > 1000:
            self._problems_reported.clear()
        self._problems_reported[(path, detail)] = now
        self._log.error(
            "LAST-KNOWN-GOOD CACHE SKIPPED: %s. Falling back to the snapshot for components the database "
            "cannot supply. Action: delete or fix the file; it is rewritten after the next successful read.",
            detail,
            extra={"event": "cache_problem", "path": path, "reason": detail},
        )

    def snapshot_mode(self, vertical: str, platform: Platform, copy: str) -> None:
        """Say once per vertical and platform that no database is configured.

        Running without a database is a choice (local development, demos), not
        an outage, so it is one WARNING line rather than a banner per component.
        """
        key = (vertical, platform)
        if key in self._snapshot_mode_reported:
            return
        self._snapshot_mode_reported.add(key)
        self._log.warning(
            "No database configured (SUPABASE_URL and SUPABASE_SERVICE_KEY unset): serving %s/%s "
            "from %s (snapshot mode)",
            vertical,
            platform,
            copy,
            extra={"event": "snapshot_mode", "vertical": vertical, "platform": platform},
        )


def _title(event: FallbackEvent) -> str:
    if event.kind == "node":
        return f"NODE CONFIG '{event.name}'"
    if event.kind == "theme":
        return "THEME PROMPT"
    return f"{event.name.upper()} MODEL"
