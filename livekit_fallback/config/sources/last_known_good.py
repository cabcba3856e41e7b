"""The last-known-good copy: the newest validated components each deployment's database gave.

After every resolution that read components from the database, those
components (and the database's ranked backup models) are merged into the
deployment's copy in its state; during an outage the copy is served,
component by component, before the snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from ..keys import MODEL_KINDS, ComponentKey, ModelKind, Platform
from ..model import AgentConfig, InvalidContent, ModelChoice, Node, Provenance, Reason, Source, Theme
from ..state.state import ResolutionState, default_cache_dir
from .base import Failure, FetchRequest, Found, Outcome

__all__ = [
    "BACKUPS_KEY",
    "LastKnownGoodSource",
    "component_from_copy",
    "component_to_copy",
    "default_cache_dir",
    "outcome_from_copy",
]

BACKUPS_KEY = "backups"
"""The copy's entry holding the database's ranked backup models."""


class LastKnownGoodSource:
    """A :class:`~livekit_fallback.config.sources.base.ConfigSource` over a deployment's last-known-good copy.

    The copy lives in the deployment's state (the machine's file by default),
    so a process started during an outage serves what any process of the
    machine last read from *that* database. Each component is validated again
    when it is served: one bad component gets its own alarm and falls back alone.

    Args:
        state: The deployment's state.
        on_problem: Called with ``(location, detail)`` when a component of the
            copy is skipped (the resolver sets it to its alarms).
    """

    source = Source.LAST_KNOWN_GOOD

    def __init__(self, state: ResolutionState, *, on_problem: Callable[[str, str], None] | None = None) -> None:
        self.state = state
        self.on_problem = on_problem

    @property
    def location(self) -> str:
        """Where the copy is kept (the state file, or ``memory``)."""
        return self.state.in_use.location

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Serve each wanted component from the copy, validated again against today's node set."""
        where = self.location
        components = await self.state.last_known_good(request.vertical, request.platform)
        outcomes: dict[str, Outcome] = {}
        for key in request.keys:
            stored = components.get(key)
            if stored is None:
                outcomes[key] = Failure(Reason.MISSING_ROW, f"last-known-good copy lacks {key}", where)
                continue
            try:
                value = json.loads(stored[0])
            except ValueError:
                value = None  # reported as invalid below
            outcome = outcomes[key] = outcome_from_copy(key, value, stored[1], request, where)
            if isinstance(outcome, Failure) and outcome.reason is Reason.INVALID_CONTENT and self.on_problem:
                self.on_problem(where, f"{request.vertical}/{request.platform}: {outcome.detail}")
        return outcomes

    async def backups(
        self, vertical: str, platform: Platform
    ) -> dict[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]]:
        """The database's ranked backup models as of the copy (empty when none were kept)."""
        stored = (await self.state.last_known_good(vertical, platform)).get(BACKUPS_KEY)
        if stored is None:
            return {}
        origin = Provenance(source=Source.LAST_KNOWN_GOOD, taken_at=_when(stored[1]), location=self.location)
        try:
            listed = json.loads(stored[0])
            return {
                kind: tuple((ModelChoice.model_validate(choice), origin) for choice in listed.get(kind, []))
                for kind in MODEL_KINDS
                if listed.get(kind)
            }
        except (ValueError, TypeError, AttributeError, ValidationError):
            return {}  # a damaged list: the snapshot's backups still follow

    async def store(self, config: AgentConfig) -> bool:
        """Keep the config's database-sourced components (and ranked backups) as the copy.

        Returns:
            True when something came from the database to keep.
        """
        fresh = {k: p for k, p in config.provenance.items() if p.source is Source.DATABASE}
        if not fresh:
            return False
        components = {
            key: (json.dumps(component_to_copy(config, key)), (prov.taken_at or config.resolved_at).isoformat())
            for key, prov in fresh.items()
        }
        ranked = {
            kind: [choice.model_dump(mode="json") for choice, origin in chain if origin.source is Source.DATABASE]
            for kind, chain in config.backups.items()
        }
        if any(ranked.values()):
            components[BACKUPS_KEY] = (json.dumps(ranked), config.resolved_at.isoformat())
        await self.state.store_last_known_good(config.vertical, config.platform, components)
        return True


def _when(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def component_to_copy(config: AgentConfig, key: str) -> Any:
    """One component of a config as the JSON-ready value a last-known-good copy keeps."""
    component = ComponentKey.parse(key)
    if component.kind == "theme":
        return config.theme.model_dump(mode="json")
    if component.kind == "node":
        return config.nodes[component.name].model_dump(mode="json")
    return getattr(config.models, component.model_kind).model_dump(mode="json")


def outcome_from_copy(key: str, value: Any, read_at: Any, request: FetchRequest, where: str) -> Outcome:
    """One stored component, validated again: found, or why this copy of it cannot be used.

    Args:
        key: The component key.
        value: The stored JSON-ready value.
        read_at: When it was read from the database (ISO 8601; UTC when no zone is given).
        request: What the resolver asks for (node set, platform, the snapshot's date).
        where: The copy's location, for provenance and banners.
    """
    try:
        component = component_from_copy(key, value, request)
        taken = datetime.fromisoformat(read_at)
        if taken.tzinfo is None:  # written by hand or another tool: read as UTC
            taken = taken.replace(tzinfo=timezone.utc)
    except (InvalidContent, ValidationError, KeyError, TypeError, ValueError) as exc:
        return Failure(Reason.INVALID_CONTENT, f"last-known-good {key} is invalid: {exc}", where)
    if request.newer_than is not None and taken < request.newer_than:
        return Failure(
            Reason.MISSING_ROW,
            f"last-known-good {key} (read {taken.isoformat()}) is older than the snapshot "
            f"(taken {request.newer_than.isoformat()})",
            where,
        )
    return Found(component, taken, where)


def component_from_copy(key: str, value: Any, request: FetchRequest) -> Theme | Node | ModelChoice:
    """Validate one stored component again, against today's node set and the requested platform.

    Raises:
        InvalidContent: The copy is not a valid component of that key.
        ValidationError: The copy does not fit the model.
    """
    component = ComponentKey.parse(key)
    if component.kind == "theme":
        theme = Theme.model_validate(value)
        if theme.vertical != request.vertical:
            raise InvalidContent(f"theme is for vertical {theme.vertical!r}")
        return theme
    if component.kind == "node":
        return Node.from_content(component.name, value, platform=request.platform, known_nodes=request.node_names)
    choice = ModelChoice.model_validate(value)
    if (choice.platform, choice.kind) != (request.platform, component.model_kind):
        raise InvalidContent(f"{key} holds a {choice.platform} {choice.kind} model")
    return choice
