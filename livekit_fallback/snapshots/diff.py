"""Compare the database's active configuration with a snapshot, component by component.

Components are the theme, each node, and each model of each platform. Both
sides are first put in canonical form (:mod:`.content`), so only differences
the resolver would act on count: ``functions`` equal to ``tools``, a JSON
string instead of an object, or a key the resolver never reads are not drift.
Theme and node differences are shown as a unified diff of the snapshot file's
text for that component, which is exactly what ``snapshot pull`` would change.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config.keys import MODEL_KINDS, PLATFORMS, ComponentKey, component_keys
from ..config.sources.snapshot import Snapshot
from .content import backup_keys, canonical_model, canonical_node, canonical_theme, node_order, parse_backup_key
from .read import DatabaseConfig
from .write import render_component

__all__ = ["ComponentDiff", "diff_configs", "format_diff", "snapshot_components"]


@dataclass(frozen=True)
class ComponentDiff:
    """One component that differs between the snapshot and the database.

    Attributes:
        key: ``theme``, ``nodes.<name>`` or ``models.<platform>.<kind>``.
        snapshot: The snapshot's canonical value, or ``None`` if it has none.
        database: The database's canonical value, or ``None`` if it has none.
        database_problem: Why the database has no usable value, if so.
    """

    key: str
    snapshot: Any
    database: Any
    database_problem: str | None = None

    @property
    def change(self) -> str:
        """``changed``, ``only in database`` or ``only in snapshot``."""
        if self.snapshot is None or self.snapshot == []:
            return "only in database"
        if self.database is None or self.database == []:
            return "only in snapshot"
        return "changed"


def snapshot_components(snapshot: Snapshot) -> dict[str, Any]:
    """Every component of a snapshot in canonical form, by component key (missing ones as ``None``)."""
    theme = snapshot.theme
    values: dict[str, Any] = {
        "theme": canonical_theme(content=theme["content"]) if "content" in theme else canonical_theme(structured=theme)
    }
    values.update({str(ComponentKey.node(name)): canonical_node(c) for name, c in snapshot.nodes.items()})
    for platform in PLATFORMS:
        for kind in MODEL_KINDS:
            values[str(ComponentKey.model(kind, platform))] = (
                canonical_model(*snapshot.model_value(platform, kind)) if platform in snapshot.models else None
            )
    for key in backup_keys():
        listed = parse_backup_key(key)
        assert listed is not None
        values[key] = [canonical_model(*value) for value in snapshot.backup_values(*listed)]
    return values


def diff_configs(snapshot: Snapshot, database: DatabaseConfig) -> tuple[list[ComponentDiff], int]:
    """The differing components and backup lists, in display order, and how many components were compared.

    The backup lists (``backups.<platform>.<kind>``) are compared after the
    components and are not counted among them.
    """
    ours = snapshot_components(snapshot)
    names = node_order({*snapshot.nodes, *database.nodes, *_problem_nodes(database)}, snapshot.node_names)
    keys = [str(key) for key in component_keys(names, PLATFORMS)]
    diffs = []
    for key in keys + backup_keys():
        mine, theirs = ours.get(key), database.value(key)
        if mine != theirs:
            diffs.append(ComponentDiff(key, mine, theirs, database.problems.get(key)))
    return diffs, len(keys)


def format_diff(diffs: list[ComponentDiff], compared: int, *, snapshot_label: str, database_label: str) -> str:
    """A readable report: one block per differing component and a summary line."""
    lines = [f"comparing {database_label} with {snapshot_label}"]
    for diff in diffs:
        lines.append("")
        lines += _describe(diff)
    lines.append("")
    differing = [d.key for d in diffs if parse_backup_key(d.key) is None]
    backups = [d.key for d in diffs if parse_backup_key(d.key) is not None]
    if differing:
        summary = f"DRIFT: {len(differing)} of {compared} components differ: {', '.join(differing)}"
        lines.append(summary + (f"; backup lists differ: {', '.join(backups)}" if backups else ""))
    elif backups:
        lines.append(f"DRIFT: all {compared} components are equal; backup lists differ: {', '.join(backups)}")
    else:
        lines.append(f"no drift: all {compared} components are equal, and the backup lists")
    return "\n".join(lines)


def _describe(diff: ComponentDiff) -> list[str]:
    head = f"~ {diff.key}: {diff.change}"
    if diff.database_problem:
        head += f" (database: {diff.database_problem})"
    if parse_backup_key(diff.key) is not None:
        ours = ", ".join(map(_model_text, diff.snapshot or [])) or "(none)"
        theirs = ", ".join(map(_model_text, diff.database or [])) or "(none)"
        return [f"{head}: snapshot [{ours}] -> database [{theirs}]"]
    if ComponentKey.parse(diff.key).kind == "model":
        return [f"{head}: snapshot {_model_text(diff.snapshot)} -> database {_model_text(diff.database)}"]
    before = _lines(diff.key, diff.snapshot)
    after = _lines(diff.key, diff.database)
    body = difflib.unified_diff(before, after, f"snapshot {diff.key}", f"database {diff.key}", n=2, lineterm="")
    return [head, *body]


def _lines(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    return render_component(key, value, strict=False).splitlines()


def _model_text(entry: Mapping[str, Any] | None) -> str:
    if entry is None:
        return "(none)"
    custom = " (custom voice)" if entry.get("is_custom") else ""
    return f"{entry.get('value')!r}{custom}"


def _problem_nodes(database: DatabaseConfig) -> list[str]:
    return [c.name for c in map(ComponentKey.parse, database.problems) if c.kind == "node"]
