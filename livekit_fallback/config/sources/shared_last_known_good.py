"""The last-known-good copy in the machine-wide store, shared by every process of the machine.

After each resolution that read components from the database, those
components are merged into the store; a process started during an outage then
serves what any process of the machine last read, instead of an old snapshot.
Each component is validated again when it is served: one bad component in the
copy gets its own alarm and falls back alone. The JSON files of earlier
versions are imported once, off the event loop, so an upgrade loses nothing.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...errors import CacheFileError, StoreUnavailable
from ..model import AgentConfig, Reason, Source
from ..store import MachineStore, run_in_daemon_thread
from .base import Failure, FetchRequest, Outcome
from .last_known_good import LastKnownGoodCache, component_to_copy, outcome_from_copy

__all__ = ["SharedLastKnownGood"]

IMPORT_TIMEOUT = 0.5
"""Seconds an old JSON copy may take to read before it is left alone."""


class SharedLastKnownGood:
    """A last-known-good source over the machine-wide store.

    Args:
        store: The machine's store.
        legacy: The JSON-file copies of earlier versions, imported once per
            vertical and platform (``None`` for none).
        on_problem: Called with ``(location, detail)`` when a copy or one of
            its components is skipped (the resolver sets it to its alarms).
    """

    source = Source.LAST_KNOWN_GOOD

    def __init__(
        self,
        store: MachineStore,
        *,
        legacy: LastKnownGoodCache | None = None,
        on_problem: Callable[[str, str], None] | None = None,
    ) -> None:
        self._store = store
        self._legacy = legacy
        self.on_problem = on_problem
        self._imported: set[tuple[str, str]] = set()

    @property
    def directory(self) -> Path:
        """The cache directory holding the store."""
        return self._store.directory

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Serve each wanted component from the machine's copy, validated again."""
        where = str(self._store.path)
        await self._import_legacy(request.vertical, request.platform)
        try:
            components = await self._store.load_last_known_good(request.vertical, request.platform)
        except StoreUnavailable as exc:
            failure = Failure(Reason.MISSING_ROW, f"machine-wide last-known-good copy unavailable: {exc}", where)
            return {key: failure for key in request.keys}
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

    async def store(self, config: AgentConfig) -> bool:
        """Merge the config's database-sourced components into the machine's copy.

        Returns:
            True when something was written (False when nothing came from the
            database, or the store cannot be used now; the store says so itself).
        """
        fresh = {k: p for k, p in config.provenance.items() if p.source is Source.DATABASE}
        if not fresh:
            return False
        components = {
            key: (json.dumps(component_to_copy(config, key)), (prov.taken_at or config.resolved_at).isoformat())
            for key, prov in fresh.items()
        }
        try:
            await self._store.store_last_known_good(config.vertical, config.platform, components)
        except StoreUnavailable:
            return False
        return True

    async def _import_legacy(self, vertical: str, platform: str) -> None:
        """Import the JSON copy of an earlier version once (never overwriting newer components)."""
        if self._legacy is None or (vertical, platform) in self._imported:
            return
        self._imported.add((vertical, platform))
        try:
            path = self._legacy.path(vertical, platform)
            if not stat.S_ISREG(os.stat(path).st_mode):
                return
            components: dict[str, Any] = await run_in_daemon_thread(
                lambda: self._legacy.read_components(vertical, platform) if self._legacy else {}, IMPORT_TIMEOUT
            )
            rows = {
                key: (json.dumps(entry["value"]), str(entry["read_at"]))
                for key, entry in components.items()
                if isinstance(entry, dict) and "value" in entry and "read_at" in entry
            }
            if rows:
                await self._store.store_last_known_good(vertical, platform, rows, only_if_absent=True)
        except (OSError, ValueError, CacheFileError, TimeoutError, StoreUnavailable):
            return  # nothing to import, or nothing importable: the store's own copy stands
