"""The last-known-good copy on disk for the in-memory state (``LIVEKIT_FALLBACK_SHARED_STATE=0``).

With shared state off, the cache, breaker and incidents live in the process,
but the last-known-good copy must still survive a restart: it is written, per
deployment, vertical and platform, to a JSON file under
``<cache dir>/last-known-good/<deployment digest>/``, atomically, readable by
its owner only. A file that cannot be used is said once and skipped; a file of
an earlier version (``<vertical>.<platform>.json`` at the top of the cache
directory) does not say which database it came from and is never served.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from ...log import logger
from ..atomic import write_atomic
from .storage import LastKnownGood
from .worker import run_in_daemon_thread

__all__ = ["CopyFiles", "say_legacy_files"]

FORMAT_VERSION = 2
READ_TIMEOUT = 0.5
"""Seconds reading a deployment's copies may take (a FIFO or a hung file system is left alone)."""


class CopyFiles:
    """The JSON files of the last-known-good copies in one cache directory.

    Args:
        directory: The cache directory.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._said: set[str] = set()

    def folder(self, deployment: str) -> Path:
        """Where one deployment's copies live (a digest: the URL is not a file name)."""
        digest = hashlib.sha256(deployment.encode()).hexdigest()[:16]
        return self.directory / "last-known-good" / digest

    async def load(self, deployment: str) -> dict[tuple[str, str], LastKnownGood]:
        """Every copy of a deployment; files that cannot be used are said once and skipped."""
        try:
            return await run_in_daemon_thread(lambda: self._read_all(deployment), READ_TIMEOUT)
        except (TimeoutError, asyncio.TimeoutError):
            self._say(str(self.folder(deployment)), f"reading it took longer than {READ_TIMEOUT} s; not served")
        except OSError as exc:
            self._say(str(self.folder(deployment)), f"cannot be read ({exc.strerror or exc}); not served")
        return {}

    async def save(self, deployment: str, vertical: str, platform: str, components: LastKnownGood) -> None:
        """Write one copy atomically (a temporary file, fsync, rename)."""
        document = {
            "format": FORMAT_VERSION,
            "deployment": deployment,
            "vertical": vertical,
            "platform": platform,
            "written_at": datetime.now(timezone.utc).isoformat(),
            "components": {k: {"value": v, "read_at": r} for k, (v, r) in sorted(components.items())},
        }
        path = self.folder(deployment) / f"{vertical}.{platform}.json"
        try:
            await asyncio.to_thread(write_atomic, path, json.dumps(document, indent=1), mode=0o600)
        except OSError as exc:
            self._say(str(path), f"cannot be written ({exc.strerror or exc}); the copy lives in this process only")

    def _read_all(self, deployment: str) -> dict[tuple[str, str], LastKnownGood]:
        say_legacy_files(self.directory)
        copies: dict[tuple[str, str], LastKnownGood] = {}
        folder = self.folder(deployment)
        if not folder.is_dir():
            return copies
        for path in sorted(folder.glob("*.json")):
            if not path.is_file():  # a FIFO or a device would block the read for good
                self._say(str(path), "is not a regular file; not served")
                continue
            try:
                data = json.loads(path.read_bytes())
                if data.get("format") != FORMAT_VERSION or data.get("deployment") != deployment:
                    raise ValueError("written by another version or for another database")
                where = (str(data["vertical"]), str(data["platform"]))
                entries = data["components"]
                if not isinstance(entries, dict):
                    raise TypeError("components is not an object")
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                self._say(str(path), f"is corrupt ({exc}); not served")
                continue
            copies[where] = self._components(path, entries)
        return copies

    def _components(self, path: Path, entries: dict[str, object]) -> LastKnownGood:
        """Each component of one file on its own: a bad one is said and skipped, the others served."""
        components: LastKnownGood = {}
        for key, entry in entries.items():
            value = entry.get("value") if isinstance(entry, dict) else None
            read_at = entry.get("read_at") if isinstance(entry, dict) else None
            if isinstance(value, str) and isinstance(read_at, str):
                components[str(key)] = (value, read_at)
            else:
                self._say(f"{path} {key}", "is corrupt (needs a text value and read_at); this component is not served")
        return components

    def _say(self, where: str, problem: str) -> None:
        if where in self._said:
            return
        self._said.add(where)
        _skipped(where, problem)


_LEGACY_SAID: set[Path] = set()


def say_legacy_files(directory: Path) -> None:
    """Say once per process that a cache directory holds copies of an earlier version (never served).

    Files ``<vertical>.<platform>.json`` at the top of the cache directory do
    not say which database they came from. Whichever storage is in use, they
    are named once, corrupt or not, so an operator knows they are ignored.
    """
    if directory in _LEGACY_SAID:
        return
    _LEGACY_SAID.add(directory)
    old = [p.name for p in directory.glob("*.*.json")] if directory.is_dir() else []
    if old:
        _skipped(
            str(directory),
            f"holds last-known-good files of an earlier version ({', '.join(sorted(old))}) that do not say "
            "which database they came from; they are not served (delete them once this version has read "
            "the database)",
        )


def _skipped(where: str, problem: str) -> None:
    logger.error(
        "LAST-KNOWN-GOOD COPY SKIPPED: %s %s. Components the database cannot supply fall back to the snapshot.",
        where,
        problem,
        extra={"event": "cache_problem", "path": where, "reason": problem},
    )
