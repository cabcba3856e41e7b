"""Read a vertical's active configuration, for both platforms, straight from the database.

The same tables and view the resolver reads (``theme_prompts``,
``active_node_prompts`` over ``prompts`` / ``prompt_versions``, and the six
model catalogues), through the resolver's own row reader
(:mod:`livekit_fallback.config.sources.rows`) and supabase client, with one
overall deadline. Unlike the resolver
this reader does not fall back: a connection or server failure raises
:class:`DatabaseReadError`, and row-level problems (no active row, two active
rows, a value that is not a string) are listed per component.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from supabase import AsyncClient

from ..config.keys import ComponentKey, ModelKind, Platform
from ..config.model import Reason
from ..config.sources import rows as _rows
from ..config.sources.base import format_exception
from ..config.sources.rows import MODEL_TABLES, Answer, Request, RowProblem, check_rows
from ..config.sources.supabase import BadResponse, build_client
from ..errors import DatabaseReadError
from .content import backup_key, canonical_model, canonical_node, canonical_theme, decode_object, parse_backup_key

__all__ = [
    "DEFAULT_TIMEOUT",
    "DatabaseConfig",
    "DatabaseReadError",
    "database_label",
    "open_client",
    "read_active",
    "run_query",
]

DEFAULT_TIMEOUT = 10.0
"""Seconds a whole read (or seed) may take."""


@dataclass
class DatabaseConfig:
    """A vertical's active configuration as the database holds it right now.

    Attributes:
        vertical: The business vertical.
        theme: Canonical theme content, or ``None`` (see ``problems['theme']``).
        nodes: Node name to canonical content, for each node with exactly one usable active version.
        models: ``(platform, kind)`` to ``{"value", "is_custom"}`` for each usable active model row.
        backups: ``(platform, kind)`` to the ranked backup rows (``backup_rank``
            set), lowest rank first, as ``{"value", "is_custom"}``; empty when
            none or when the database has no ``backup_rank`` column.
        problems: Component key (``theme``, ``nodes.<name>``, ``models.<platform>.<kind>``)
            to why the database holds no usable value for it.
        prompt_ids: Node name to the ids of its active prompts (used by seed).
        read_at: When the rows were read.
    """

    vertical: str
    theme: dict[str, Any] | None = None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[tuple[Platform, ModelKind], dict[str, Any]] = field(default_factory=dict)
    backups: dict[tuple[Platform, ModelKind], list[dict[str, Any]]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    prompt_ids: dict[str, list[str]] = field(default_factory=dict)
    read_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def value(self, key: str) -> Any:
        """The canonical value of a component key, or ``None`` when the database has none.

        A backup-list key (``backups.<platform>.<kind>``) gives the ranked rows (``[]`` for none).
        """
        listed = parse_backup_key(key)
        if listed is not None:
            return list(self.backups.get(listed, []))
        component = ComponentKey.parse(key)
        if component.kind == "theme":
            return self.theme
        if component.kind == "node":
            return self.nodes.get(component.name)
        if component.platform is None:
            raise ValueError(f"{key} does not name a platform")
        return self.models.get((component.platform, component.model_kind))


def database_label(url: str) -> str:
    """``supabase <host>`` for messages and stamps: the host only, never credentials or a key."""
    return f"supabase {urlsplit(url).hostname or 'unknown host'}"


@asynccontextmanager
async def open_client(url: str, key: str, *, timeout: float = DEFAULT_TIMEOUT) -> AsyncIterator[AsyncClient]:
    """The resolver's supabase client (:func:`build_client`), closed on exit."""
    client, http = build_client(url, key, timeout=timeout)
    try:
        yield client
    finally:
        await http.aclose()


async def run_query(builder: Any, location: str, key: str) -> list[Mapping[str, Any]]:
    """Execute one request and return its rows.

    Raises:
        DatabaseReadError: Transport or HTTP failure, or a body that is not a list of objects.
    """
    try:
        response = await builder.execute()
    except Exception as exc:  # every client failure is a failed read, reported in one line
        raise DatabaseReadError(f"request to {location} failed: {format_exception(exc, [key])}") from exc
    try:
        return check_rows(getattr(response, "data", None), location, [key])
    except BadResponse as exc:
        raise DatabaseReadError(str(exc)) from None


async def read_active(
    url: str, key: str, vertical: str, *, timeout: float = DEFAULT_TIMEOUT, client: AsyncClient | None = None
) -> DatabaseConfig:
    """Read the vertical's theme, every active node and both platforms' active models.

    Args:
        url: ``SUPABASE_URL``.
        key: The service key (never printed).
        vertical: The business vertical.
        timeout: Seconds the whole read may take.
        client: An open client to reuse (see :func:`open_client`).

    Raises:
        DatabaseReadError: The database could not be read within ``timeout``.
    """
    if client is None:
        async with open_client(url, key, timeout=timeout) as own:
            return await read_active(url, key, vertical, timeout=timeout, client=own)
    requests: dict[str, Request] = {
        "theme": _rows.theme_request(client, vertical),
        "nodes": _rows.nodes_request(client, vertical),
    }
    for platform, kind in MODEL_TABLES:
        requests[str(ComponentKey.model(kind, platform))] = _rows.model_request(client, platform, kind)
    ranked = {backup_key(p, k): _rows.backup_request(client, p, k) for p, k in MODEL_TABLES}
    answers = await _rows.run_requests({**requests, **ranked}, timeout)
    ranked_answers = {name: answers.pop(name) for name in ranked}
    rows = _checked(requests, answers, key, timeout, url)
    config = DatabaseConfig(vertical=vertical)
    _take_theme(config, rows["theme"])
    try:
        _take_nodes(config, _rows.nodes_by_name(rows["nodes"]))
    except BadResponse as exc:
        raise DatabaseReadError(str(exc)) from None
    for platform, kind in MODEL_TABLES:
        _take_model(config, platform, kind, rows[str(ComponentKey.model(kind, platform))])
    for name, answer in ranked_answers.items():
        _take_backups(config, name, answer, key)
    return config


def _take_backups(config: DatabaseConfig, name: str, answer: Answer, key: str) -> None:
    """Ranked rows of one catalogue; a failed read (no ``backup_rank`` column yet) means none."""
    listed = parse_backup_key(name)
    if listed is None or answer.error is not None or answer.timed_out:
        return
    platform, kind = listed
    try:
        found = check_rows(getattr(answer.response, "data", None), MODEL_TABLES[(platform, kind)][0], [key])
    except BadResponse:
        return
    values = _rows.backup_values(found, platform, kind)
    if values:
        config.backups[(platform, kind)] = [canonical_model(*value) for value in values]


def _checked(
    requests: Mapping[str, Request], answers: Mapping[str, Answer], key: str, timeout: float, url: str
) -> dict[str, list[Mapping[str, Any]]]:
    """Every answer's rows; the first failed request (in request order) raises, then a timeout does."""
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for name, answer in answers.items():
        location = requests[name].location
        if answer.error is not None:
            detail = format_exception(answer.error, [key])
            raise DatabaseReadError(f"request to {location} failed: {detail}") from answer.error
        if not answer.timed_out:
            try:
                rows[name] = check_rows(getattr(answer.response, "data", None), location, [key])
            except BadResponse as exc:
                raise DatabaseReadError(str(exc)) from None
    if len(rows) < len(answers):
        raise DatabaseReadError(f"no complete answer from {database_label(url)} within {timeout:g} s")
    return rows


def _take_theme(config: DatabaseConfig, rows: list[Mapping[str, Any]]) -> None:
    row = _rows.theme_row(rows, config.vertical)
    if isinstance(row, RowProblem):
        config.problems["theme"] = row.message
        return
    theme = canonical_theme(structured=row.get("content_structured"), content=row.get("content"))
    if theme is None:
        config.problems["theme"] = f"the {_rows.THEME_TABLE} row has neither content_structured nor content"
        return
    config.theme = theme


def _take_nodes(config: DatabaseConfig, by_name: Mapping[str, list[Mapping[str, Any]]]) -> None:
    for name, found in by_name.items():
        key = str(ComponentKey.node(name))
        config.prompt_ids[name] = [str(row.get("prompt_id")) for row in found]
        row = _rows.node_row(found, name, config.vertical)
        if isinstance(row, RowProblem):
            config.problems[key] = row.message
            continue
        content = decode_object(row.get("content"))
        if not isinstance(content, Mapping):
            config.problems[key] = (
                f"active version {row.get('version_number')} has content of type "
                f"{type(content).__name__}, expected a JSON object"
            )
            continue
        config.nodes[name] = canonical_node(content)


def _take_model(config: DatabaseConfig, platform: Platform, kind: ModelKind, rows: list[Mapping[str, Any]]) -> None:
    found = _rows.model_value(rows, platform, kind)
    if isinstance(found, RowProblem):
        suffix = "" if found.reason is Reason.BAD_RESPONSE else " (model tables are global)"
        config.problems[str(ComponentKey.model(kind, platform))] = found.message + suffix
        return
    config.models[(platform, kind)] = canonical_model(*found)
