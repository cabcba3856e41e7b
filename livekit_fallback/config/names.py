"""The naming rules for verticals, nodes and tools, defined once.

Names read from the database become file names (verticals), node ids and
SignalWire context names (nodes) and function names sent to an LLM (tools),
so each must be a plain identifier. Every check of such a name uses these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "NODE_NAME",
    "RESERVED_TOOL_NAMES",
    "TOOL_NAME",
    "VERTICAL_NAME",
    "check_vertical",
    "is_node_name",
    "is_tool_name",
    "tool_name_problems",
]

NODE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""A node name: a lowercase identifier of at most 64 characters."""

TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
"""A tool (SWAIG function) name: an identifier of at most 64 characters."""

VERTICAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
"""A vertical name: letters, digits, ``_`` and ``-``; it becomes part of file names."""

RESERVED_TOOL_NAMES = frozenset({"next_step", "change_context", "gather_submit"})
"""Names SignalWire reserves for its native tools; a node may not use them."""


def is_node_name(name: object) -> bool:
    """True when ``name`` is a valid node name."""
    return isinstance(name, str) and NODE_NAME.match(name) is not None


def is_tool_name(name: object) -> bool:
    """True when ``name`` is a valid tool name (reserved names included)."""
    return isinstance(name, str) and TOOL_NAME.match(name) is not None


def tool_name_problems(names: Iterable[str]) -> list[str]:
    """Why a node's tool list is unusable: bad names, a name twice, reserved names (empty when fine)."""
    names = list(names)
    problems: list[str] = []
    bad = [t for t in names if not is_tool_name(t)]
    if bad:
        problems.append(f"tool names {bad} are not identifiers")
    if len(set(names)) != len(names):
        problems.append("tools lists a name twice")
    reserved = [t for t in names if t in RESERVED_TOOL_NAMES]
    if reserved:
        problems.append(f"tool names {reserved} are reserved by SignalWire")
    return problems


def check_vertical(vertical: str) -> str:
    """Return ``vertical`` if it is a plain name; it becomes part of snapshot and cache file names.

    Raises:
        ValueError: It is empty, too long, or holds anything but letters, digits, ``_`` and ``-``.
    """
    if not isinstance(vertical, str) or not VERTICAL_NAME.match(vertical):
        raise ValueError(f"vertical {vertical!r} is not a valid name")
    return vertical
