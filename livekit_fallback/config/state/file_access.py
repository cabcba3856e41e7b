"""Who may use the state file: owners, read-only opening, and the one line that names the fix.

``download-files`` run as root in a Dockerfile, a read-only mount, a worker
running as another user: the state file may be readable but not writable. Its
last-known-good copy is still worth serving then, so the file is opened
read-only; and a file this process creates follows the cache directory's owner
and group, so the user the directory was made for can use it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

__all__ = ["SIDE_FILES", "follow_directory_owner", "ownership_problem", "read_only_connection", "set_aside"]

SIDE_FILES = ("", "-wal", "-shm")
"""Suffixes of the files SQLite keeps for one database in WAL mode."""


def follow_directory_owner(directory: Path, path: Path) -> None:
    """Give the state file (and its WAL files) the cache directory's owner and group.

    Only root can, and only root needs to: a file root created in a directory
    made for the worker's user would otherwise lock that user out.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    try:
        owner = os.stat(directory)
    except OSError:
        return
    if owner.st_uid == 0 and owner.st_gid == 0:
        return
    for suffix in SIDE_FILES:
        try:
            os.chown(f"{path}{suffix}", owner.st_uid, owner.st_gid)
            os.chmod(f"{path}{suffix}", 0o664)
        except OSError:
            continue


def ownership_problem(directory: Path, path: Path) -> str | None:
    """One line naming why this process cannot write the state file and the fix, or ``None``."""
    if not hasattr(os, "geteuid"):
        return None
    me = os.geteuid()
    for target in (path, directory):
        try:
            info = os.stat(target)
        except OSError:
            continue
        if info.st_uid != me and not os.access(target, os.W_OK):
            return (
                f"{target} belongs to uid {info.st_uid} and this process runs as uid {me}, so it is read-only "
                f"here; fix: run `chown -R {me}:{os.getegid()} {directory}` (or create the cache as the worker's "
                f"user), or point LIVEKIT_FALLBACK_CACHE_DIR at a directory this user owns"
            )
    return None


def read_only_connection(path: Path, busy_ms: int) -> sqlite3.Connection:
    """Open the state file for reading only (its copy stays readable while it cannot be written).

    WAL mode needs its shared-memory file; when that cannot be created either
    (a read-only directory), the file is opened as immutable.

    Raises:
        sqlite3.Error: The file cannot be read at all.
    """
    uri = f"file:{quote(str(path))}"
    last: sqlite3.Error | None = None
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=busy_ms / 1000, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only = 1")
            conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            last = exc
            continue
        return conn
    assert last is not None
    raise last


def set_aside(path: Path, *, whole: bool) -> None:
    """Move a damaged state file's WAL files (and, if ``whole``, the file) to ``<name>.damaged``.

    A new file must never replay the WAL of the one it replaces. Other
    processes keep their open descriptors to the old files and reopen on their
    next operation (they see the file's identity change).
    """
    for suffix in SIDE_FILES if whole else SIDE_FILES[1:]:
        try:
            os.replace(f"{path}{suffix}", f"{path}.damaged{suffix}")
        except FileNotFoundError:
            continue
