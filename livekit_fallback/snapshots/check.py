"""Validate snapshot data and files, collecting every problem with its file and field.

The checks are the resolver's own models: the file's top-level schema through
:class:`~livekit_fallback.config.sources.snapshot.Snapshot`, the theme through
:class:`~livekit_fallback.config.model.ThemeSections`, each node through
:class:`~livekit_fallback.config.model.Node` for both platforms (which parses
``step_criteria_lk`` with the safe criteria grammar), the node graph through
:mod:`livekit_fallback.config.graph`, and every model string through
:class:`~livekit_fallback.config.model.ModelChoice`. Nothing stops at the first
problem. Reachability problems are warnings: the agent still answers calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..config.graph import END_NODE, START_NODE, dead_end_nodes, unknown_targets, unreachable_nodes
from ..config.keys import MODEL_KINDS, PLATFORMS, ComponentKey, ModelKind, Platform
from ..config.model import InvalidContent, ModelChoice, Node, ThemeSections
from ..config.sources.snapshot import SNAPSHOT_SCHEMA_VERSION, Snapshot
from ..config.tomlfile import TOMLDecodeError, load_toml
from ..config.validation import error_message
from .step_text import step_text_problems

__all__ = ["Problem", "check_data", "check_file", "snapshot_files"]

_NODE_CONTENT_KEYS = frozenset(
    {
        "role",
        "instructions",
        "valid_contexts",
        "tools",
        "functions",
        "step_criteria_lk",
        "step_criteria_sw",
        "step_criteria",
        "step_criteria_source",
    }
)


@dataclass(frozen=True)
class Problem:
    """One problem found in a snapshot.

    Attributes:
        file: The file (or other origin, e.g. ``database``) it was found in.
        field: Dotted field path, e.g. ``nodes.greet.valid_contexts``.
        message: What is wrong.
        severity: ``error`` (the snapshot is unusable as is) or ``warning``.
    """

    file: str
    field: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{self.file}: {self.field}: {self.message}"


def snapshot_files(paths: Iterable[Path]) -> list[Path]:
    """The snapshot files named by ``paths``: files as given, directories' ``*.toml`` sorted.

    Raises:
        FileNotFoundError: A path does not exist.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.glob("*.toml") if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return files


def check_file(path: Path) -> list[Problem]:
    """Every problem of one snapshot file (TOML syntax, schema, components, graph)."""
    label = str(path)
    try:
        data = load_toml(path)
    except OSError as exc:
        return [Problem(label, "(file)", f"cannot read: {exc.strerror}")]
    except TOMLDecodeError as exc:
        return [Problem(label, "(file)", f"not valid TOML: {exc}")]
    return check_data(data, label, expected_vertical=path.stem)


def check_data(data: Mapping[str, Any], file: str, *, expected_vertical: str | None = None) -> list[Problem]:
    """Every problem of parsed snapshot data.

    Args:
        data: The parsed TOML document.
        file: Where it came from, for the messages.
        expected_vertical: The vertical the file name promises (``<vertical>.toml``).
    """
    problems = _check_top_level(data, file, expected_vertical)
    theme = data.get("theme")
    if theme is None:
        problems.append(Problem(file, "theme", "missing"))
    elif not isinstance(theme, Mapping):
        problems.append(Problem(file, "theme", f"must be a table, is a {type(theme).__name__}"))
    else:
        problems += _check_theme(theme, file)
    nodes = data.get("nodes")
    if nodes is None or (isinstance(nodes, Mapping) and not nodes):
        problems.append(Problem(file, "nodes", "no nodes"))
    elif not isinstance(nodes, Mapping):
        problems.append(Problem(file, "nodes", f"must be a table, is a {type(nodes).__name__}"))
    else:
        problems += _check_nodes(nodes, file)
    models = data.get("models")
    if not isinstance(models, Mapping):
        problems.append(Problem(file, "models", "missing" if models is None else "must be a table"))
    else:
        problems += _check_models(models, file)
    return problems


def _check_top_level(data: Mapping[str, Any], file: str, expected_vertical: str | None) -> list[Problem]:
    problems: list[Problem] = []
    sections: dict[str, dict[str, Any]] = {"theme": {}, "nodes": {}, "models": {}}  # checked field by field below
    try:
        Snapshot.model_validate({**data, **sections})
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(file)"
            problems.append(Problem(file, loc, str(err["msg"])))
    version = data.get("schema_version")
    if isinstance(version, int) and version > SNAPSHOT_SCHEMA_VERSION:
        problems.append(
            Problem(file, "schema_version", f"{version} is newer than this package reads ({SNAPSHOT_SCHEMA_VERSION})")
        )
    vertical = data.get("vertical")
    if expected_vertical is not None and isinstance(vertical, str) and vertical != expected_vertical:
        problems.append(
            Problem(
                file, "vertical", f"{vertical!r} does not match the file name (the resolver looks for {vertical}.toml)"
            )
        )
    return problems


def _check_theme(theme: Mapping[str, Any], file: str) -> list[Problem]:
    if "content" in theme:
        text = theme["content"]
        if not isinstance(text, str) or not text.strip():
            return [Problem(file, "theme.content", "must be non-empty text")]
        return []
    try:
        ThemeSections.model_validate(dict(theme))
    except ValidationError as exc:
        return [Problem(file, _loc("theme", err), error_message(err)) for err in exc.errors()]
    return []


def _check_nodes(nodes: Mapping[str, Any], file: str) -> list[Problem]:
    problems: list[Problem] = []
    names = list(nodes)
    edges: dict[str, list[str]] = {}
    tools = {
        t
        for c in nodes.values()
        if isinstance(c, Mapping)
        for key in ("tools", "functions")
        if isinstance(c.get(key), list)
        for t in c[key]
        if isinstance(t, str)
    }
    for name, content in nodes.items():
        where = f"nodes.{name}"
        if not isinstance(content, Mapping):
            problems.append(Problem(file, where, f"must be a table, is a {type(content).__name__}"))
            continue
        problems += [
            Problem(file, f"{where}.{k}", "is not read by the resolver (typo?)", "warning")
            for k in content
            if k not in _NODE_CONTENT_KEYS
        ]
        problems += _check_node(name, content, names, file, tools)
        targets = content.get("valid_contexts", [])
        if isinstance(targets, list) and all(isinstance(t, str) for t in targets):
            edges[name] = [t for t in targets if t in nodes]
            problems += [
                Problem(file, f"{where}.valid_contexts", f"target {t!r} is not a node")
                for t in unknown_targets(targets, names)
            ]
    for special, role in ((START_NODE, "start"), (END_NODE, "terminal")):
        if special not in nodes:
            problems.append(Problem(file, "nodes", f"{role} node {special!r} is missing"))
    if START_NODE in edges:
        problems += [
            Problem(file, f"nodes.{n}", f"unreachable from start node {START_NODE!r}", "warning")
            for n in unreachable_nodes(edges, START_NODE)
        ]
    if END_NODE in edges:
        problems += [
            Problem(file, f"nodes.{n}", f"cannot reach terminal node {END_NODE!r}", "warning")
            for n in dead_end_nodes(edges, END_NODE)
        ]
    return problems


def _check_node(name: str, content: Mapping[str, Any], names: list[str], file: str, tools: set[str]) -> list[Problem]:
    """Field-level problems of one node on both platforms (targets are checked graph-wide).

    Each platform's node is built by the resolver's own ``Node.from_content``,
    so ``check`` accepts exactly what the resolver accepts; a node that builds
    is then checked for text contradicting the functions its step offers.
    """
    targets = content.get("valid_contexts")
    known = [*names, *(t for t in targets if isinstance(t, str))] if isinstance(targets, list) else names
    found: dict[tuple[str, str], None] = {}
    for platform in PLATFORMS:
        try:
            node = Node.from_content(name, content, platform=platform, known_nodes=known)
        except InvalidContent as exc:
            for field, message in exc.errors:
                if field == "tools" and platform == "signalwire" and "functions" in content:
                    field = "functions"
                found[(".".join(p for p in (f"nodes.{name}", field) if p), message)] = None
            continue
        for message in step_text_problems(node, platform, tools):
            found[(f"nodes.{name}.instructions", message)] = None
    return [Problem(file, loc, msg) for loc, msg in found]


def _check_models(models: Mapping[str, Any], file: str) -> list[Problem]:
    problems = [
        Problem(file, f"models.{p}", f"unknown platform (expected {', '.join(PLATFORMS)})")
        for p in models
        if p not in PLATFORMS
    ]
    for platform in PLATFORMS:
        table = models.get(platform)
        if not isinstance(table, Mapping):
            problems.append(
                Problem(
                    file,
                    f"models.{platform}",
                    "missing: the resolver needs both platforms" if table is None else "must be a table",
                )
            )
            continue
        problems += [
            Problem(file, f"models.{platform}.{k}", f"unknown model kind (expected {', '.join(MODEL_KINDS)})")
            for k in table
            if k not in (*MODEL_KINDS, "backups")
        ]
        for kind in MODEL_KINDS:
            problems += _check_model(platform, kind, table.get(kind), file)
        if "backups" in table:
            problems += _check_backups(platform, table["backups"], file)
    return problems


def _check_backups(platform: Platform, backups: Any, file: str) -> list[Problem]:
    """``[models.<platform>.backups]``: per kind, a list of model entries the resolver can read."""
    where = f"models.{platform}.backups"
    if not isinstance(backups, Mapping):
        return [Problem(file, where, "must be a table")]
    problems = [
        Problem(file, f"{where}.{k}", f"unknown model kind (expected {', '.join(MODEL_KINDS)})")
        for k in backups
        if k not in MODEL_KINDS
    ]
    for kind in MODEL_KINDS:
        entries = backups.get(kind, [])
        if not isinstance(entries, list):
            problems.append(Problem(file, f"{where}.{kind}", "must be a list of model strings"))
            continue
        for position, entry in enumerate(entries):
            problems += _check_model(platform, kind, entry, file, where=f"{where}.{kind}[{position}]")
        values = [e.get("value") if isinstance(e, Mapping) else e for e in entries]
        problems += [
            Problem(file, f"{where}.{kind}", f"{v!r} is listed more than once", "warning")
            for position, v in enumerate(values)
            if v in values[:position]
        ]
    return problems


def _check_model(
    platform: Platform, kind: ModelKind, entry: Any, file: str, *, where: str | None = None
) -> list[Problem]:
    where = where or str(ComponentKey.model(kind, platform))
    if entry is None:
        return [Problem(file, where, "missing")]
    is_custom: Any = False
    if isinstance(entry, Mapping):
        extra = sorted(set(entry) - {"value", "is_custom"})
        if extra:
            return [Problem(file, where, f"unknown keys {extra} (expected value, is_custom)")]
        value, is_custom = entry.get("value"), entry.get("is_custom", False)
        if not isinstance(is_custom, bool):
            return [Problem(file, f"{where}.is_custom", "must be true or false")]
        if is_custom and (platform, kind) != ("livekit", "tts"):
            return [
                Problem(
                    file,
                    f"{where}.is_custom",
                    "only livekit tts voices can be custom (livekit_available_voices.is_custom)",
                )
            ]
    else:
        value = entry
    if not isinstance(value, str):
        return [Problem(file, where, f"must be a model string, is a {type(value).__name__}")]
    try:
        ModelChoice(kind=kind, platform=platform, value=value, is_custom=is_custom)
    except ValidationError as exc:
        return [Problem(file, where, error_message(err)) for err in exc.errors()]
    return []


def _loc(prefix: str, err: Mapping[str, Any]) -> str:
    parts = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    return ".".join([prefix, *parts])
