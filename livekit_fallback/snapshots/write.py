r"""Render snapshot files deterministically and write them atomically.

The layout is fixed (header, stamps, ``[theme]``, one ``[nodes.<name>]`` per
node, ``[models.<platform>]`` each followed by its ``[models.<platform>.backups]``
when it has backups), keys come in a fixed order, and prompt text is
written as TOML multi-line strings wrapped at :data:`WIDTH` columns with line
continuations (a line ending in ``\\`` joins the next one without a newline),
so a one-word edit in the database shows up as a one- or two-line change in
review. Rendering the same data twice gives the same bytes, and every render
is parsed back as TOML and compared before it is returned. Files are replaced
with :func:`~livekit_fallback.config.atomic.write_atomic`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ..config.atomic import write_atomic
from ..config.keys import MODEL_KINDS, ComponentKey
from ..config.tomlfile import loads_toml
from .content import NODE_KEYS, PROSE_KEYS, THEME_KEYS

__all__ = ["WIDTH", "format_timestamp", "render_component", "render_snapshot", "snapshot_document", "write_atomic"]

WIDTH = 100
"""Longest line of wrapped prompt text, including the trailing ``\\``."""

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def format_timestamp(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with a ``Z`` suffix, to the second."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_document(
    *,
    vertical: str,
    taken_at: str,
    source: str,
    theme: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    models: Mapping[str, Mapping[str, Mapping[str, Any]]],
    backups: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]] | None = None,
) -> dict[str, Any]:
    """The TOML document of a snapshot, as a TOML parser will read it back.

    Args:
        vertical: The business vertical.
        taken_at: When the data was read, see :func:`format_timestamp`.
        source: Where the data was read from (never a key).
        theme: Canonical theme content.
        nodes: Node name to canonical node content, in file order.
        models: Platform to kind to ``{"value", "is_custom"}``.
        backups: Platform to kind to the ordered backup entries (``{"value",
            "is_custom"}``); written as ``[models.<platform>.backups]`` when any.
    """
    platforms: dict[str, dict[str, Any]] = {
        platform: {kind: _model_entry(models[platform][kind]) for kind in MODEL_KINDS} for platform in models
    }
    for platform, kinds in (backups or {}).items():
        listed = {kind: [_model_entry(e) for e in kinds.get(kind, ())] for kind in MODEL_KINDS if kinds.get(kind)}
        if listed and platform in platforms:
            platforms[platform]["backups"] = listed
    return {
        "schema_version": 1,
        "vertical": vertical,
        "taken_at": taken_at,
        "source": source,
        "theme": dict(theme),
        "nodes": {name: dict(node) for name, node in nodes.items()},
        "models": platforms,
    }


def render_snapshot(document: Mapping[str, Any]) -> str:
    """Render a :func:`snapshot_document` as TOML text.

    Raises:
        TypeError: A value has no TOML form (e.g. ``None``).
        ValueError: The text does not parse back to ``document`` (a bug; never written).
    """
    vertical = document["vertical"]
    lines = [
        f"# livekit-fallback snapshot: {vertical}",
        "# Offline fallback config shared by LiveKit and SignalWire; refresh it with `livekit-fallback snapshot pull`.",
    ]
    lines += [f"{key} = {_value(document[key])}" for key in ("schema_version", "vertical", "taken_at", "source")]
    lines += ["", render_component(str(ComponentKey.theme()), document["theme"])]
    for name, node in document["nodes"].items():
        lines += ["", render_component(str(ComponentKey.node(name)), node)]
    for platform, models in document["models"].items():
        lines += ["", f"[models.{_key(platform)}]"]
        lines += [f"{kind} = {_value(entry)}" for kind, entry in models.items() if kind != "backups"]
        if models.get("backups"):
            lines += ["", f"[models.{_key(platform)}.backups]"]
            lines += [f"{kind} = {_value(entries)}" for kind, entries in models["backups"].items()]
    text = "\n".join(lines) + "\n"
    if loads_toml(text) != document:
        raise ValueError("rendered snapshot does not parse back to the same data")
    return text


def render_component(key: str, value: Any, *, strict: bool = True) -> str:
    """Render one component as it appears in a snapshot file.

    Args:
        key: ``theme``, ``nodes.<name>`` or ``models.<platform>.<kind>``.
        value: Canonical content (a mapping), or a model entry.
        strict: Refuse values TOML cannot hold; when false they are shown
            as JSON-like text (for diffs of invalid database rows).
    """
    component = ComponentKey.parse(key)
    if component.kind == "model":
        return f"{component.model_kind} = {_value(_model_entry(value), strict)}"
    if not isinstance(value, Mapping):
        return f"[{key}]\n# not a table: {value!r}"
    order = THEME_KEYS + ("content",) if component.kind == "theme" else NODE_KEYS
    keys = [k for k in order if k in value] + sorted(k for k in value if k not in order)
    head = "[theme]" if component.kind == "theme" else f"[nodes.{_key(component.name)}]"
    return "\n".join([head, *(f"{_key(k)} = {_field(k, value[k], strict)}" for k in keys)])


def _model_entry(entry: Any) -> Any:
    if isinstance(entry, Mapping) and set(entry) <= {"value", "is_custom"} and "value" in entry:
        return {"value": entry["value"], "is_custom": True} if entry.get("is_custom") else entry["value"]
    return entry


def _field(key: str, value: Any, strict: bool) -> str:
    if key in PROSE_KEYS and isinstance(value, str):
        return _multiline(value)
    return _value(value, strict)


def _key(name: str) -> str:
    return name if _BARE_KEY.match(name) else _string(name)


def _value(value: Any, strict: bool = True) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, strict) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v, strict)}" for k, v in value.items()) + " }"
    if strict:
        raise TypeError(f"{type(value).__name__} value {value!r} has no TOML form")
    return "null" if value is None else repr(value)


def _string(text: str) -> str:
    escaped = "".join(_ESCAPES.get(ch, ch) for ch in text)
    return '"' + _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'


def _multiline(text: str) -> str:
    """A multi-line basic string: real newlines kept, long lines wrapped with continuations."""
    closing_quote = text.endswith('"')
    if closing_quote:  # a quote just before the closing delimiter must be escaped
        text = text[:-1]
    body = "\n".join(line for raw in text.split("\n") for line in _wrap(_escape_line(raw)))
    return '"""\n' + body + ('\\"' if closing_quote else "") + '"""'


def _escape_line(line: str) -> str:
    out: list[str] = []
    quotes = 0
    for ch in line:
        if ch == '"':
            quotes += 1
            out.append('\\"' if quotes == 3 else ch)
            quotes %= 3
            continue
        quotes = 0
        if ch in ("\\", "\b", "\t", "\f", "\r"):
            out.append(_ESCAPES[ch])
        elif _CONTROL.match(ch):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    escaped = "".join(out)
    stripped = escaped.rstrip(" ")
    return stripped + "\\u0020" * (len(escaped) - len(stripped))


def _wrap(line: str) -> list[str]:
    r"""Split at spaces so each piece but the last ends ``" \\"`` and the next starts with a non-space."""
    pieces: list[str] = []
    while len(line) > WIDTH:
        breaks = [p for p in range(1, len(line)) if line[p - 1] == " " and line[p] != " "]
        fitting = [p for p in breaks if p <= WIDTH - 1]
        cut = fitting[-1] if fitting else next(iter(breaks), None)
        if cut is None:
            break
        pieces.append(line[:cut] + "\\")
        line = line[cut:]
    pieces.append(line)
    return pieces
