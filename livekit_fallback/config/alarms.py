"""Loud, structured alarms for every fallback.

Each component that does not come from the database is logged at ERROR with a
banner an operator cannot miss (what failed, why, what the agent uses instead,
what to do), the exception's trace when there was one, and the same facts as
structured ``extra`` fields so JSON log pipelines can alert on them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .model import ModelChoice, Platform, Reason, Source
from .sources.base import Failure, Found

__all__ = ["Alarms", "BANNER_RULE", "FallbackEvent", "banner", "fallback_extra", "logger"]

logger = logging.getLogger("livekit_fallback")
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
    def kind(self) -> str:
        """``theme``, ``node`` or ``model``."""
        return "theme" if self.component == "theme" else self.component.split(".", 1)[0].rstrip("s")

    @property
    def name(self) -> str:
        """The node name or model kind (``verify``, ``llm``); the vertical for the theme."""
        return self.vertical if self.component == "theme" else self.component.split(".", 1)[1]

    @property
    def copy_description(self) -> str:
        """Which copy is used and how old it is, e.g. ``snapshot taken 2025-11-21``."""
        taken = self.used.taken_at
        if self.used_source is Source.SNAPSHOT:
            date = taken.date().isoformat() if taken else "an unknown date"
            return f"snapshot taken {date}"
        if taken is None:
            return f"{_SOURCE_LABEL[self.used_source]} copy of unknown age"
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
    source_label = _SOURCE_LABEL[event.used_source]
    if event.kind == "node":
        title = f"NODE CONFIG '{event.name}'"
        facts = [f"Node: {event.name}", f"Vertical: {event.vertical}", f"Tables: {failure.location}"]
        impact = f"Using {source_label} node config '{event.name}' ({event.copy_description})"
        what = "instructions/tools/routing"
        actions = [
            f"Check prompts table for node_name='{event.name}', vertical='{event.vertical}'",
            "Check prompt_versions table for is_active=true",
        ]
    elif event.kind == "theme":
        title = "THEME PROMPT"
        facts = [f"Vertical: {event.vertical}", f"Table: {failure.location}"]
        impact = f"Using {source_label} theme prompt for '{event.vertical}' ({event.copy_description})"
        what = "theme prompt"
        actions = [f"Check theme_prompts table for vertical='{event.vertical}', is_active=true"]
    else:
        choice = event.used.value
        value = choice.value if isinstance(choice, ModelChoice) else str(choice)
        kind = event.name.upper()
        title = f"{kind} MODEL"
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


def fallback_extra(event: FallbackEvent) -> dict[str, Any]:
    """The structured ``extra`` fields logged with a fallback (JSON-serialisable values)."""
    value = event.used.value
    return {
        "event": "config_fallback",
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
    """Where the resolver reports fallbacks; logs each one loudly.

    Args:
        log: The logger to write to (the package logger by default).
    """

    def __init__(self, log: logging.Logger = logger) -> None:
        self._log = log
        self._snapshot_mode_reported: set[tuple[str, str]] = set()

    def fallback(self, event: FallbackEvent) -> None:
        """Log the banner for one component served from a fallback copy."""
        self._log.error(banner(event), exc_info=event.failure.exc, extra=fallback_extra(event))

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
