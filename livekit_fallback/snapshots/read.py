"""Read a vertical's active configuration, for both platforms, straight from the database.

The same tables and view the resolver reads (``theme_prompts``,
``active_node_prompts`` over ``prompts`` / ``prompt_versions``, and the six
model catalogues), through the real async supabase client with its retries
off, an :class:`httpx.Timeout`, and one overall deadline. Unlike the resolver
this reader does not fall back: a connection or server failure raises
:class:`DatabaseReadError`, and row-level problems (no active row, two active
rows, a value that is not a string) are listed per component.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from supabase import AsyncClient

from ..config.sources.base import format_exception
from ..config.sources.supabase import MODEL_TABLES, NODE_VIEW, THEME_TABLE, BadResponse, build_client, check_rows
from ..errors import DatabaseReadError
from .content import KINDS, PLATFORMS, canonical_model, canonical_node, canonical_theme, decode_object

__all__ = ["DEFAULT_TIMEOUT", "DatabaseConfig", "DatabaseReadError", "database_label", "open_client", "read_active"]

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
        problems: Component key (``theme``, ``nodes.<name>``, ``models.<platform>.<kind>``)
            to why the database holds no usable value for it.
        prompt_ids: Node name to the ids of its active prompts (used by seed).
        read_at: When the rows were read.
    """

    vertical: str
    theme: dict[str, Any] | None = None
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    prompt_ids: dict[str, list[str]] = field(default_factory=dict)
    read_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def value(self, key: str) -> Any:
        """The canonical value of a component key, or ``None`` when the database has none."""
        if key == "theme":
            return self.theme
        if key.startswith("nodes."):
            return self.nodes.get(key.split(".", 1)[1])
        _, platform, kind = key.split(".")
        return self.models.get((platform, kind))


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
    queries = {
        "theme": (
            client.table(THEME_TABLE)
            .select("vertical,content,content_structured")
            .eq("vertical", vertical)
            .eq("is_active", True)
            .limit(2),
            THEME_TABLE,
        ),
        "nodes": (
            client.table(NODE_VIEW)
            .select("prompt_id,node_name,version_number,content")
            .eq("vertical", vertical)
            .order("node_name")
            .order("version_number", desc=True),
            NODE_VIEW,
        ),
    }
    for (platform, kind), (table, column) in MODEL_TABLES.items():
        columns = f"{column},is_custom" if table == "livekit_available_voices" else column
        queries[f"models.{platform}.{kind}"] = (
            client.table(table).select(columns).eq("is_active", True).limit(2),
            table,
        )
    rows = await _gather({name: run_query(b, location, key) for name, (b, location) in queries.items()}, timeout, url)
    config = DatabaseConfig(vertical=vertical)
    _take_theme(config, rows["theme"])
    _take_nodes(config, rows["nodes"])
    for platform in PLATFORMS:
        for kind in KINDS:
            _take_model(config, platform, kind, rows[f"models.{platform}.{kind}"])
    return config


async def _gather(coros: dict[str, Any], timeout: float, url: str) -> dict[str, list[Mapping[str, Any]]]:
    """Run every query at once, all within ``timeout``; then raise the first failure, if any.

    Siblings of a failed request are left to finish (they are quick) rather than
    cut off mid-response; only the deadline cancels requests.
    """
    tasks = {name: asyncio.ensure_future(coro) for name, coro in coros.items()}
    done, pending = await asyncio.wait(tasks.values(), timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    failed = next((t.exception() for t in tasks.values() if t in done and t.exception() is not None), None)
    if failed is not None:
        raise failed
    if pending:
        raise DatabaseReadError(f"no complete answer from {database_label(url)} within {timeout:g} s")
    return {name: task.result() for name, task in tasks.items()}


def _take_theme(config: DatabaseConfig, rows: list[Mapping[str, Any]]) -> None:
    where = f"vertical='{config.vertical}', is_active=true"
    if len(rows) != 1:
        config.problems["theme"] = _count_problem(len(rows), THEME_TABLE, where)
        return
    theme = canonical_theme(structured=rows[0].get("content_structured"), content=rows[0].get("content"))
    if theme is None:
        config.problems["theme"] = f"the {THEME_TABLE} row has neither content_structured nor content"
        return
    config.theme = theme


def _take_nodes(config: DatabaseConfig, rows: list[Mapping[str, Any]]) -> None:
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if not isinstance(row.get("node_name"), str):
            raise DatabaseReadError(f"{NODE_VIEW} answered with a row without node_name")
        by_name.setdefault(row["node_name"], []).append(row)
    for name, found in by_name.items():
        config.prompt_ids[name] = [str(row.get("prompt_id")) for row in found]
        if len(found) > 1:
            config.problems[f"nodes.{name}"] = (
                f"{len(found)} active prompts for node_name='{name}', vertical='{config.vertical}'; expected one"
            )
            continue
        content = decode_object(found[0].get("content"))
        if not isinstance(content, Mapping):
            config.problems[f"nodes.{name}"] = (
                f"active version {found[0].get('version_number')} has content of type "
                f"{type(content).__name__}, expected a JSON object"
            )
            continue
        config.nodes[name] = canonical_node(content)


def _take_model(config: DatabaseConfig, platform: str, kind: str, rows: list[Mapping[str, Any]]) -> None:
    table, column = MODEL_TABLES[(platform, kind)]  # type: ignore[index]
    key = f"models.{platform}.{kind}"
    if len(rows) != 1:
        config.problems[key] = _count_problem(len(rows), table, "is_active=true") + " (model tables are global)"
        return
    value = rows[0].get(column)
    if not isinstance(value, str):
        config.problems[key] = f"the active {table} row has no string {column}"
        return
    config.models[(platform, kind)] = canonical_model(value, rows[0].get("is_custom") or False)


def _count_problem(count: int, table: str, where: str) -> str:
    if count == 0:
        return f"no row in {table} with {where}"
    return f"{count} rows in {table} with {where}; expected exactly one"
