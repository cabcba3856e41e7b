"""Canonical component content shared by pull, diff, check and seed.

A component (the theme, one node, one model of one platform) can be held by a
database row or a snapshot file in several equivalent shapes: ``tools`` or
``functions``, legacy ``step_criteria``, a JSON string instead of an object,
missing optional keys. Each is turned into one canonical shape here, keeping
exactly what the resolver reads and nothing else, so two copies compare equal
exactly when the resolver would build the same component from both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..config.content import node_fields
from ..config.graph import DEFAULT_NODE_NAMES, END_NODE
from ..config.keys import MODEL_KINDS, PLATFORMS

__all__ = [
    "BACKUP_PREFIX",
    "KINDS",
    "NODE_KEYS",
    "PLATFORMS",
    "PROSE_KEYS",
    "THEME_KEYS",
    "backup_key",
    "backup_keys",
    "canonical_model",
    "parse_backup_key",
    "canonical_node",
    "canonical_theme",
    "decode_object",
    "node_order",
]

KINDS = MODEL_KINDS
"""The model kinds (:data:`~livekit_fallback.config.keys.MODEL_KINDS`), under the name the snapshot commands use."""

BACKUP_PREFIX = "backups."
"""Key prefix of a platform's ordered backup list per kind: ``backups.<platform>.<kind>``.

Not a resolver component (the call falls back along it, it is not resolved
per component), so it has its own keys beside the component keys.
"""


def backup_key(platform: str, kind: str) -> str:
    """The key of one platform's backup list for one model kind."""
    return f"{BACKUP_PREFIX}{platform}.{kind}"


def backup_keys() -> list[str]:
    """Every backup-list key, platforms then kinds in their fixed order."""
    return [backup_key(platform, kind) for platform in PLATFORMS for kind in MODEL_KINDS]


def parse_backup_key(key: str) -> tuple[Any, Any] | None:
    """``(platform, kind)`` of a backup-list key; ``None`` for any other key."""
    if not key.startswith(BACKUP_PREFIX):
        return None
    platform, _, kind = key.removeprefix(BACKUP_PREFIX).partition(".")
    return (platform, kind) if platform in PLATFORMS and kind in MODEL_KINDS else None


THEME_KEYS = ("identity", "output_rules", "conversational_flow", "tools", "guardrails")
"""The structured theme's sections, in assembly (and file) order."""

NODE_KEYS = ("role", "instructions", "valid_contexts", "tools", "functions", "step_criteria_lk", "step_criteria_sw")
"""A canonical node's keys, in file order; ``functions`` only when it differs from ``tools``."""

PROSE_KEYS = frozenset({*THEME_KEYS, "content", "role", "instructions"})
"""Keys holding long prompt text, written as wrapped multi-line strings."""


def decode_object(value: Any) -> Any:
    """Return ``value`` decoded from JSON when it is a string holding JSON, else unchanged."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def canonical_theme(*, structured: Any = None, content: Any = None) -> dict[str, Any] | None:
    """The theme as the resolver reads it: sections when structured, else legacy ``content``.

    Sections come first in :data:`THEME_KEYS` order, unknown keys after them
    (sorted) so validation can name them. Returns ``None`` when neither form is
    present. A ``structured`` value that is not an object is returned under the
    ``content_structured`` key so validation reports it.
    """
    if structured is not None:
        data = decode_object(structured)
        if not isinstance(data, Mapping):
            return {"content_structured": data}
        ordered = {key: data[key] for key in THEME_KEYS if key in data}
        ordered.update({key: data[key] for key in sorted(data) if key not in THEME_KEYS})
        return ordered
    if content is not None:
        return {"content": content}
    return None


def canonical_node(content: Mapping[str, Any]) -> dict[str, Any]:
    """A node's content as the resolver reads it on both platforms.

    The fields are :func:`~livekit_fallback.config.content.node_fields`, the
    resolver's own reading; ``functions`` is kept only when the two platforms
    would see different tools, and ``role`` / ``instructions`` only when present.
    """
    livekit = node_fields(content, platform="livekit")
    signalwire = node_fields(content, platform="signalwire")
    out = {key: _listed(value) for key, value in livekit.items() if key in content or key not in _PROSE_FIELDS}
    if _listed(signalwire["tools"]) != out["tools"]:
        out["functions"] = _listed(signalwire["tools"])
    return out


def canonical_model(value: Any, is_custom: Any = False) -> dict[str, Any]:
    """A model choice as ``{"value": ..., "is_custom": bool}``."""
    return {"value": value, "is_custom": bool(is_custom)}


def node_order(names: Iterable[str], preferred: Sequence[str] = ()) -> list[str]:
    """Order node names stably: ``preferred`` order, then the standard nodes, then the rest.

    Unknown names are sorted alphabetically and ``end`` always comes last, so a
    pull never reorders a file whose nodes did not change.
    """
    rank = {name: i for i, name in enumerate(dict.fromkeys([*preferred, *DEFAULT_NODE_NAMES]))}
    ordered = sorted(set(names), key=lambda n: (n == END_NODE, rank.get(n, len(rank)), n))
    return ordered


def _listed(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


_PROSE_FIELDS = ("role", "instructions")
