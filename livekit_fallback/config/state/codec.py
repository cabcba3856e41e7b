"""A resolution as the state stores it: the config and the facts its alarms need, as JSON.

A process that serves another process's resolution logs the same banners it
would have logged for its own read, so the events travel with the config.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ..alarms import FallbackEvent
from ..keys import ComponentKey
from ..model import AgentConfig, Reason, Source
from ..pipeline import Resolution
from ..sources.base import Failure, Found

__all__ = ["decode_resolution", "encode_resolution"]


def encode_resolution(resolution: Resolution) -> str:
    """A resolution as JSON for the store: the config and the facts its alarms need."""
    events = [
        {
            "component": e.component,
            "reason": e.failure.reason.value,
            "detail": e.failure.detail,
            "location": e.failure.location,
            "used_source": e.used_source.value,
            "used_taken_at": e.used.taken_at.isoformat() if e.used.taken_at else None,
            "used_location": e.used.location,
            "now": e.now.isoformat(),
        }
        for e in resolution.events
    ]
    return json.dumps(
        {
            "config": resolution.config.model_dump_json(),
            "events": events,
            "database_ok": resolution.database_ok,
            "healthy": list(resolution.healthy),
        },
        separators=(",", ":"),
    )


def decode_resolution(payload: str) -> Resolution:
    """A resolution as :func:`encode_resolution` stored it.

    Raises:
        ValueError: The payload is not a stored resolution (the caller resolves afresh).
    """
    data = json.loads(payload)
    config = AgentConfig.model_validate_json(data["config"])
    events = tuple(
        FallbackEvent(
            e["component"],
            config.vertical,
            config.platform,
            Failure(Reason(e["reason"]), e["detail"], e["location"]),
            Found(_component(config, e["component"]), _time(e["used_taken_at"]), e["used_location"]),
            Source(e["used_source"]),
            datetime.fromisoformat(e["now"]),
        )
        for e in data["events"]
    )
    return Resolution(config, events, data["database_ok"], tuple(data["healthy"]))


def _component(config: AgentConfig, key: str) -> Any:
    component = ComponentKey.parse(key)
    if component.kind == "theme":
        return config.theme
    if component.kind == "node":
        return config.nodes[component.name]
    return getattr(config.models, component.model_kind)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
