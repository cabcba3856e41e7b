"""The last-known-good cache: the newest validated copy read from the database, on disk.

After every resolution that read components from the database, those
components are written (merged into what the file already holds) to one JSON
file per vertical and platform, atomically: a temporary file in the same
directory, fsync, rename. A restarted worker during an outage then serves the
copy it read minutes ago instead of an old snapshot. A corrupt, unreadable or
newer-schema file is reported and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ...errors import CacheFileError
from ..atomic import write_atomic
from ..keys import ComponentKey
from ..model import AgentConfig, InvalidContent, ModelChoice, Node, Reason, Source, Theme
from ..names import check_vertical
from .base import Failure, FetchRequest, Found, Outcome

__all__ = [
    "CACHE_SCHEMA_VERSION",
    "LastKnownGoodCache",
    "component_from_copy",
    "component_to_copy",
    "outcome_from_copy",
    "default_cache_dir",
]

CACHE_SCHEMA_VERSION = 1
"""Cache file format written by this version; newer files are skipped."""

_FILE_MODE = 0o600
"""Cache files are readable by their owner only."""

REWRITE_AFTER = 60.0
"""Seconds after which an unchanged copy is rewritten to refresh its read time."""


def default_cache_dir() -> Path:
    """``LIVEKIT_FALLBACK_CACHE_DIR``, else ``$XDG_CACHE_HOME/livekit-fallback``, else ``~/.cache/livekit-fallback``."""
    explicit = os.environ.get("LIVEKIT_FALLBACK_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "livekit-fallback"


class LastKnownGoodCache:
    """A :class:`~livekit_fallback.config.sources.base.ConfigSource` over last-known-good files.

    Args:
        directory: Where cache files live (created on first write).
        on_problem: Called with ``(path, detail)`` when a file is corrupt,
            unreadable or from a newer schema (the resolver logs it once).
    """

    source = Source.LAST_KNOWN_GOOD

    def __init__(
        self, directory: Path | str | None = None, *, on_problem: Callable[[str, str], None] | None = None
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.on_problem = on_problem
        self._parsed: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
        self._written: dict[str, tuple[str, float]] = {}
        self._write_lock = asyncio.Lock()

    def path(self, vertical: str, platform: str) -> Path:
        """The cache file of one vertical and platform.

        Raises:
            ValueError: The vertical is not a plain name (it becomes part of a file name).
        """
        return self.directory / f"{check_vertical(vertical)}.{platform}.json"

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Serve each wanted component from the file, validated again against today's node set."""
        try:
            path = self.path(request.vertical, request.platform)
        except ValueError as exc:
            failure = Failure(Reason.MISSING_ROW, str(exc), str(self.directory))
            return {key: failure for key in request.keys}
        try:
            components = self._read(path)
        except FileNotFoundError:
            failure = Failure(Reason.MISSING_ROW, f"no last-known-good copy at {path}", str(path))
            return {key: failure for key in request.keys}
        except CacheFileError as exc:
            if self.on_problem is not None:
                self.on_problem(str(path), str(exc))
            failure = Failure(Reason.INVALID_CONTENT, str(exc), str(path))
            return {key: failure for key in request.keys}
        outcomes: dict[str, Outcome] = {}
        for key in request.keys:
            entry = components.get(key)
            if entry is None:
                outcomes[key] = Failure(Reason.MISSING_ROW, f"last-known-good copy lacks {key}", str(path))
                continue
            stored = (entry.get("value"), entry.get("read_at")) if isinstance(entry, dict) else (None, None)
            outcomes[key] = outcome_from_copy(key, *stored, request, str(path))
        return outcomes

    def read_components(self, vertical: str, platform: str) -> dict[str, Any]:
        """The components of one vertical's copy, as stored (blocking file I/O; run it off the loop).

        Raises:
            FileNotFoundError: There is no copy.
            CacheFileError: The copy cannot be used.
        """
        return self._read(self.path(vertical, platform))

    def _read(self, path: Path) -> dict[str, Any]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CacheFileError(f"cannot read last-known-good file {path}: {exc.strerror}") from None
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(str(path))
        if cached is not None and cached[0] == signature:
            return cached[1]
        try:
            data = json.loads(path.read_bytes())
        except OSError as exc:
            raise CacheFileError(f"cannot read last-known-good file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise CacheFileError(f"last-known-good file {path} is corrupt (not JSON: {exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("components"), dict):
            raise CacheFileError(f"last-known-good file {path} is corrupt (no components object)")
        version = data.get("schema_version")
        if not isinstance(version, int) or version > CACHE_SCHEMA_VERSION:
            raise CacheFileError(
                f"last-known-good file {path} has schema_version {version!r}; this package reads up to "
                f"{CACHE_SCHEMA_VERSION} (written by a newer livekit-fallback), skipped"
            )
        components: dict[str, Any] = data["components"]
        self._parsed[str(path)] = (signature, components)
        return components

    async def store(self, config: AgentConfig) -> bool:
        """Merge the config's database-sourced components into its cache file.

        Runs the file I/O in a thread. Skips the write when nothing changed and
        the copy on disk is younger than :data:`REWRITE_AFTER`.

        Returns:
            True when a file was written.
        """
        fresh = {k: p for k, p in config.provenance.items() if p.source is Source.DATABASE}
        if not fresh:
            return False
        path = self.path(config.vertical, config.platform)
        async with self._write_lock:
            try:
                existing = self._read(path)
            except (FileNotFoundError, CacheFileError):
                existing = {}
            components = dict(existing)
            for key, prov in fresh.items():
                read_at = (prov.taken_at or config.resolved_at).isoformat()
                components[key] = {"read_at": read_at, "value": component_to_copy(config, key)}
            digest = json.dumps({k: v["value"] for k, v in components.items()}, sort_keys=True)
            loop = asyncio.get_running_loop()
            last = self._written.get(str(path))
            if last is not None and last[0] == digest and loop.time() - last[1] < REWRITE_AFTER:
                return False
            document = {
                "schema_version": CACHE_SCHEMA_VERSION,
                "vertical": config.vertical,
                "platform": config.platform,
                "written_at": datetime.now(timezone.utc).isoformat(),
                "components": components,
            }
            text = json.dumps(document, indent=1, sort_keys=True)
            await asyncio.to_thread(write_atomic, path, text, mode=_FILE_MODE)
            self._written[str(path)] = (digest, loop.time())
            return True


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
