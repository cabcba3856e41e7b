"""The built wheel carries both packages, the snapshots and the console script."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_snapshots_and_both_packages(tmp_path: Path) -> None:
    """A wheel built from the source tree includes the snapshots, the entry point and both typing markers."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("livekit_fallback-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "livekit-fallback = livekit_fallback.cli:main" in archive.read(entry_points).decode()
    assert "livekit_fallback/_snapshots/reverse_mortgage.toml" in names
    assert "livekit_fallback/config/resolver.py" in names and "swaig_fallback/__init__.py" in names
    assert not any(name.startswith("tests/") for name in names)
    assert {"livekit_fallback/py.typed", "swaig_fallback/py.typed"} <= names  # type checkers read our annotations
