"""Versioned snapshot files: the floor every resolution can fall back to.

One TOML file per vertical (``<vertical>.toml``) holds the theme, every node
and the active models of both platforms, stamped with the date it was taken
and where from. TOML multi-line strings keep long prompt text readable in
review diffs. The package ships its snapshots inside the wheel; users can put
their own directory first in the search path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import SnapshotError
from ..keys import ComponentKey, ModelKind
from ..model import InvalidContent, ModelChoice, Node, Platform, Reason, Source, Theme
from ..names import check_vertical
from ..tomlfile import TOMLDecodeError, load_toml
from ..validation import first_message
from .base import Failure, FetchRequest, Found, Outcome

__all__ = [
    "SNAPSHOT_SCHEMA_VERSION",
    "Snapshot",
    "SnapshotError",
    "SnapshotSource",
    "default_snapshot_dir",
    "find_snapshot",
    "load_snapshot",
]

SNAPSHOT_SCHEMA_VERSION = 1
"""Newest snapshot file format this version of the package reads."""


class _ModelEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    value: str
    is_custom: bool = False


_ModelValue = str | _ModelEntry


class _Backups(BaseModel):
    """``[models.<platform>.backups]``: per kind, the ordered backup model strings."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    stt: list[_ModelValue] = []
    llm: list[_ModelValue] = []
    tts: list[_ModelValue] = []


class _PlatformModels(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    stt: _ModelValue
    llm: _ModelValue
    tts: _ModelValue
    backups: _Backups = _Backups()


class Snapshot(BaseModel):
    """A parsed snapshot file (raw component content, validated on use).

    Components are kept as raw content, exactly as the database would hold it,
    so one bad node in a file is reported for that node alone.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(ge=1)
    vertical: str = Field(min_length=1)
    taken_at: datetime
    source: str
    theme: dict[str, Any]
    nodes: dict[str, dict[str, Any]]
    models: dict[Platform, _PlatformModels]
    path: str = ""

    @property
    def node_names(self) -> tuple[str, ...]:
        """Node names in file order."""
        return tuple(self.nodes)

    def model_value(self, platform: Platform, kind: ModelKind) -> tuple[str, bool]:
        """The model string (and custom-voice flag) for a platform and kind."""
        entry = getattr(self.models[platform], kind)
        if isinstance(entry, str):
            return entry, False
        return entry.value, entry.is_custom

    def backup_values(self, platform: Platform, kind: ModelKind) -> list[tuple[str, bool]]:
        """The ordered backup model strings (and custom-voice flags) of ``[models.<platform>.backups]``."""
        if platform not in self.models:
            return []
        entries = getattr(self.models[platform].backups, kind)
        return [(e, False) if isinstance(e, str) else (e.value, e.is_custom) for e in entries]

    def backup_choices(self, platform: Platform, kind: ModelKind) -> list[ModelChoice]:
        """The valid backup choices of a platform and kind, in file order.

        An invalid entry is left out (``livekit-fallback snapshot check``
        reports it); it never costs the other backups or the active choice.
        """
        choices = []
        for value, is_custom in self.backup_values(platform, kind):
            try:
                choices.append(ModelChoice(kind=kind, platform=platform, value=value, is_custom=is_custom))
            except ValidationError:
                continue
        return choices

    def component(self, key: str, platform: Platform) -> Theme | Node | ModelChoice:
        """Build and validate one component.

        Raises:
            InvalidContent: The component in the file is not valid.
        """
        component = ComponentKey.parse(key)
        if component.kind == "theme":
            structured = self.theme if "content" not in self.theme else None
            return Theme.from_content(self.vertical, structured=structured, content=self.theme.get("content"))
        if component.kind == "node":
            name = component.name
            if name not in self.nodes:
                raise InvalidContent(f"snapshot has no node {name!r}")
            return Node.from_content(name, self.nodes[name], platform=platform, known_nodes=self.node_names)
        kind = component.model_kind
        if platform not in self.models:
            raise InvalidContent(f"snapshot has no models for platform {platform!r}")
        value, is_custom = self.model_value(platform, kind)
        try:
            return ModelChoice(kind=kind, platform=platform, value=value, is_custom=is_custom)
        except ValidationError as exc:
            raise InvalidContent(first_message(exc)) from None


def default_snapshot_dir() -> Path:
    """The snapshots shipped with the package (inside the wheel, or the source tree)."""
    packaged = Path(__file__).resolve().parents[2] / "_snapshots"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "snapshots"


def find_snapshot(vertical: str, dirs: Iterable[Path | str]) -> Path:
    """Return the first ``<vertical>.toml`` in ``dirs``.

    Raises:
        SnapshotError: No directory holds a snapshot for the vertical.
    """
    try:
        check_vertical(vertical)
    except ValueError as exc:
        raise SnapshotError(str(exc)) from None
    searched = []
    for directory in dirs:
        path = Path(directory) / f"{vertical}.toml"
        searched.append(str(Path(directory)))
        if path.is_file():
            return path
    raise SnapshotError(f"no snapshot for vertical {vertical!r} in {searched}")


def load_snapshot(path: Path | str) -> Snapshot:
    """Read and parse a snapshot file (cached per path and modification time).

    Raises:
        SnapshotError: The file cannot be read, is not TOML, is written by a newer
            schema, or does not have the snapshot shape.
    """
    path = Path(path)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror}") from None
    return _load_cached(str(path), mtime)


@lru_cache(maxsize=64)
def _load_cached(path: str, _mtime: int) -> Snapshot:
    try:
        data = load_toml(path)
    except OSError as exc:
        raise SnapshotError(f"cannot read snapshot {path}: {exc.strerror}") from None
    except TOMLDecodeError as exc:
        raise SnapshotError(f"snapshot {path} is not valid TOML: {exc}") from None
    version = data.get("schema_version")
    if isinstance(version, int) and version > SNAPSHOT_SCHEMA_VERSION:
        raise SnapshotError(
            f"snapshot {path} has schema_version {version}; this package reads up to "
            f"{SNAPSHOT_SCHEMA_VERSION} (upgrade livekit-fallback)"
        )
    try:
        return Snapshot.model_validate({**data, "path": path})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise SnapshotError(f"snapshot {path} is not a valid snapshot: {problems}") from None


class SnapshotSource:
    """A :class:`~livekit_fallback.config.sources.base.ConfigSource` over snapshot files.

    Args:
        dirs: Directories to search, first match wins. The packaged snapshots
            are always searched last.
    """

    source = Source.SNAPSHOT

    def __init__(self, dirs: Sequence[Path | str] = ()) -> None:
        self.dirs: tuple[Path, ...] = (*(Path(d) for d in dirs), default_snapshot_dir())

    def snapshot(self, vertical: str) -> Snapshot:
        """Load the vertical's snapshot.

        Raises:
            SnapshotError: None found or it cannot be parsed.
        """
        return load_snapshot(find_snapshot(vertical, self.dirs))

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Build each wanted component from the snapshot file (no I/O after the first read)."""
        try:
            snap = self.snapshot(request.vertical)
        except SnapshotError as exc:
            failure = Failure(Reason.MISSING_ROW, str(exc), "snapshot")
            return {key: failure for key in request.keys}
        outcomes: dict[str, Outcome] = {}
        for key in request.keys:
            try:
                value = snap.component(key, request.platform)
            except InvalidContent as exc:
                outcomes[key] = Failure(Reason.INVALID_CONTENT, f"snapshot {key}: {exc}", snap.path)
            else:
                outcomes[key] = Found(value, snap.taken_at, snap.path)
        return outcomes
