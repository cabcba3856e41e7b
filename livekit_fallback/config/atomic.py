"""Replace a file atomically, so a reader never sees a partial write.

Last-known-good copies and snapshot files are both read by processes that may
start at any moment; both are written through :func:`write_atomic`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``text``: temp file in the same directory, fsync, rename, fsync directory.

    A reader sees the old file or the new one, never a partial write; on any
    error the old file is left untouched and the temp file removed. Newlines are
    written as they are, on every system.

    Args:
        path: The file to replace (its directory is created if missing).
        text: The new content, written as UTF-8.
        mode: Permission bits of the new file; ``None`` keeps the existing
            file's, or ``0o644`` for a new file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
