"""The one atomic file writer, used for snapshot files and last-known-good copies."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from livekit_fallback.config.atomic import write_atomic
from livekit_fallback.snapshots.write import write_atomic as snapshot_write_atomic

pytestmark = pytest.mark.unit


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the final rename fails the old file is untouched and no temporary file is left."""
    path = tmp_path / "x.toml"
    path.write_text("old\n", encoding="utf-8")

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_atomic(path, "new\n")
    assert path.read_text(encoding="utf-8") == "old\n" and [p.name for p in tmp_path.iterdir()] == ["x.toml"]
    monkeypatch.undo()
    write_atomic(path, "new\n")
    assert path.read_text(encoding="utf-8") == "new\n"


def test_new_file_is_0644_and_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    """Without a mode a new file is 0644 and a replaced file keeps its permission bits."""
    path = tmp_path / "sub" / "a.toml"
    write_atomic(path, "one\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o640)
    write_atomic(path, "two\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text(encoding="utf-8") == "two\n"


def test_explicit_mode_wins(tmp_path: Path) -> None:
    """An explicit mode (the cache's owner-only 0600) is applied to new and replaced files alike."""
    path = tmp_path / "c.json"
    path.write_text("{}", encoding="utf-8")
    path.chmod(0o644)
    write_atomic(path, "{}\n", mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_snapshot_writer_is_the_same_function() -> None:
    """The snapshot module writes files through the one atomic writer."""
    assert snapshot_write_atomic is write_atomic
