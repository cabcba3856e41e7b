"""Read TOML: :mod:`tomllib` on Python 3.11+, the ``tomli`` backport on 3.10.

Snapshot files are TOML; the source, ``snapshot check`` and the snapshot
writer's read-back all parse them through here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["TOMLDecodeError", "load_toml", "loads_toml"]

TOMLDecodeError = tomllib.TOMLDecodeError
"""Raised for text that is not valid TOML."""


def load_toml(path: Path | str) -> dict[str, Any]:
    """Parse a TOML file.

    Raises:
        OSError: The file cannot be read.
        TOMLDecodeError: It is not valid TOML.
    """
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def loads_toml(text: str) -> dict[str, Any]:
    """Parse TOML text.

    Raises:
        TOMLDecodeError: It is not valid TOML.
    """
    return tomllib.loads(text)
