"""The one reader of the configuration tables: queries, the deadline, and the one-active-row rule.

The resolver's database source and the snapshot commands (pull, diff, check,
seed) read the same tables: ``theme_prompts``, the ``active_node_prompts``
view over ``prompts`` / ``prompt_versions``, and the six model catalogues.
Both build their requests here, run them here (all at once, within one
timeout) and pick rows here, so both apply the same rule: exactly one active
row per component, a string model value, a body that is a list of objects.
What they do with a problem differs (the source falls back, the snapshot
commands report it), so problems are returned, not raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import BadResponse
from ..deadline import wait_until
from ..keys import ComponentKey, ModelKind, Platform
from ..model import Reason
from .base import redact

if TYPE_CHECKING:  # imported when a client is built, not by every process importing the package
    from supabase import AsyncClient

__all__ = [
    "BACKUP_LIMIT",
    "MODEL_TABLES",
    "RANK_COLUMN",
    "NODE_TABLES",
    "NODE_VIEW",
    "THEME_TABLE",
    "Answer",
    "backup_request",
    "backup_values",
    "is_missing_rank_column",
    "Request",
    "RowProblem",
    "check_rows",
    "location_of",
    "model_request",
    "model_value",
    "node_row",
    "nodes_by_name",
    "nodes_request",
    "run_requests",
    "theme_request",
    "theme_row",
]

THEME_TABLE = "theme_prompts"
NODE_VIEW = "active_node_prompts"
NODE_TABLES = "prompts, prompt_versions"

MODEL_TABLES: dict[tuple[Platform, ModelKind], tuple[str, str]] = {
    ("livekit", "stt"): ("livekit_available_stt_models", "model_id_full"),
    ("livekit", "llm"): ("livekit_available_llm_models", "model_id_full"),
    ("livekit", "tts"): ("livekit_available_voices", "voice_id_full"),
    ("signalwire", "stt"): ("signalwire_available_stt_models", "model_id_full"),
    ("signalwire", "llm"): ("signalwire_available_llm_models", "model_id_full"),
    ("signalwire", "tts"): ("signalwire_available_voices", "voice_id_full"),
}
"""Table and value column of each platform's active-model catalogue."""

RANK_COLUMN = "backup_rank"
"""The nullable column that makes a catalogue row a backup: rows with a rank, lowest first."""

BACKUP_LIMIT = 10
"""Most ranked backup rows read per catalogue."""

_CUSTOM_VOICES = "livekit_available_voices"
"""The one catalogue with an ``is_custom`` column."""


@dataclass(frozen=True)
class Request:
    """One prepared read: the table or view it reads and the coroutine factory that runs it."""

    location: str
    execute: Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Answer:
    """What one request gave back within the timeout.

    Attributes:
        response: The client's response (its ``data`` holds the body), when it answered.
        error: The exception it raised, if it failed.
        timed_out: True when it had not answered when the timeout ran out (it was cancelled).
    """

    response: Any = None
    error: BaseException | None = None
    timed_out: bool = False


@dataclass(frozen=True)
class RowProblem:
    """Why the rows read hold no usable value for a component.

    Attributes:
        reason: ``missing_row`` (no active row), ``invalid_content`` (more than
            one) or ``bad_response`` (a row lacks the columns asked for).
        message: What is wrong, naming the table and the filter.
    """

    reason: Reason
    message: str


def theme_request(client: AsyncClient, vertical: str) -> Request:
    """The vertical's active theme rows (at most two: enough to see a second one)."""
    builder = (
        client.table(THEME_TABLE)
        .select("vertical,content,content_structured")
        .eq("vertical", vertical)
        .eq("is_active", True)
        .limit(2)
    )
    return Request(THEME_TABLE, builder.execute)


def nodes_request(client: AsyncClient, vertical: str, names: Sequence[str] | None = None) -> Request:
    """The vertical's active node versions, of ``names`` only or of every node when ``None``.

    The resolver names the nodes it needs and reads only what it validates.
    Reading every node (the snapshot commands) also reads each row's
    ``prompt_id``, which seed writes new versions under, newest version first.
    """
    table = client.table(NODE_VIEW)
    if names is not None:
        builder = (
            table.select("node_name,version_number,content")
            .eq("vertical", vertical)
            .in_("node_name", sorted(names))
            .order("node_name")
        )
    else:
        builder = (
            table.select("prompt_id,node_name,version_number,content")
            .eq("vertical", vertical)
            .order("node_name")
            .order("version_number", desc=True)
        )
    return Request(NODE_VIEW, builder.execute)


def model_request(client: AsyncClient, platform: Platform, kind: ModelKind, *, ranked: bool = False) -> Request:
    """The active rows of one model catalogue (at most two), and with ``ranked`` its backup rows too.

    With ``ranked`` one request reads the active rows and then the ranked
    backup rows (``backup_rank`` set), ``is_active`` and ``backup_rank``
    included, so :func:`model_value` and :func:`backup_values` pick each from
    the same answer. It needs the ``backup_rank`` migration: a database
    without the column answers with an error (PostgreSQL 42703).
    """
    table, column = MODEL_TABLES[(platform, kind)]
    columns = f"{column},is_custom" if table == _CUSTOM_VOICES else column
    if not ranked:
        return Request(table, client.table(table).select(columns).eq("is_active", True).limit(2).execute)
    # Active rows first, then ranked rows by rank; unranked inactive rows (if the limit
    # reaches them) are dropped by the pickers. No ``or`` filter: plain ordering is enough.
    builder = (
        client.table(table)
        .select(f"{columns},is_active,{RANK_COLUMN}")
        .order("is_active", desc=True)
        .order(RANK_COLUMN, nullsfirst=False)
        .limit(2 + BACKUP_LIMIT)
    )
    return Request(table, builder.execute)


def is_missing_rank_column(error: BaseException) -> bool:
    """The database has no ``backup_rank`` column yet (its migration is not applied)."""
    text = f"{getattr(error, 'code', '')} {getattr(error, 'message', '')} {error}"
    return RANK_COLUMN in text and ("42703" in text or "does not exist" in text)


def backup_request(client: AsyncClient, platform: Platform, kind: ModelKind) -> Request:
    """The ranked backup rows of one model catalogue, lowest ``backup_rank`` first.

    A database without the ``backup_rank`` column (its migration not applied)
    answers with an error; readers treat that as "no backups", never as a
    failure of the active model.
    """
    table, column = MODEL_TABLES[(platform, kind)]
    columns = f"{column},{RANK_COLUMN}" + (",is_custom" if table == _CUSTOM_VOICES else "")
    builder = (
        client.table(table)
        .select(columns)
        .not_.is_(RANK_COLUMN, "null")
        .order(RANK_COLUMN)
        .order(column)
        .limit(BACKUP_LIMIT)
    )
    return Request(table, builder.execute)


def backup_values(rows: Sequence[Mapping[str, Any]], platform: Platform, kind: ModelKind) -> list[tuple[str, bool]]:
    """The backup model strings (and custom-voice flags) of ranked rows, in rank order, without duplicates.

    Rows without a rank or a string value are skipped: backups are a best effort.
    """
    _, column = MODEL_TABLES[(platform, kind)]
    ranked = [r for r in rows if isinstance(r.get(RANK_COLUMN), int) and isinstance(r.get(column), str)]
    ranked.sort(key=lambda r: (r[RANK_COLUMN], r[column]))
    values: list[tuple[str, bool]] = []
    for row in ranked:
        if all(row[column] != seen for seen, _ in values):
            values.append((row[column], bool(row.get("is_custom") or False)))
    return values


async def run_requests(requests: Mapping[str, Request], timeout: float) -> dict[str, Answer]:
    """Run every request at once and wait at most ``timeout`` seconds for all of them.

    Requests still running then are cancelled; a failed request does not cut
    its siblings short. If the caller is cancelled, every request is.

    A deadline this process's loop reached late gives the requests a short
    grace to be read (see :mod:`~livekit_fallback.config.deadline`).
    """
    tasks = {name: asyncio.ensure_future(request.execute()) for name, request in requests.items()}
    if not tasks:
        return {}
    try:
        done, pending = await wait_until(tasks.values(), timeout)
    except BaseException:  # cancelled: never leave requests running behind us
        for task in tasks.values():
            task.cancel()
        raise
    for waiting in pending:
        waiting.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    answers: dict[str, Answer] = {}
    for name, task in tasks.items():
        if task not in done:
            answers[name] = Answer(timed_out=True)
        elif task.exception() is not None:
            answers[name] = Answer(error=task.exception())
        else:
            answers[name] = Answer(response=task.result())
    return answers


def check_rows(data: Any, location: str, secrets: Sequence[str] = ()) -> list[Mapping[str, Any]]:
    """The rows of a response body, checked.

    supabase-py hands back a non-JSON body as a string and a JSON object as a dict without raising.

    Raises:
        BadResponse: The body is not a JSON array of objects (secrets removed from the message).
    """
    if isinstance(data, str):
        preview = redact(data[:60].replace("\n", " "), secrets)
        raise BadResponse(f"{location} answered with a non-JSON body: {preview!r}")
    if not isinstance(data, list):
        raise BadResponse(f"{location} answered with a JSON {type(data).__name__}, expected an array of rows")
    if not all(isinstance(row, Mapping) for row in data):
        raise BadResponse(f"{location} answered with an array that is not all objects")
    return data


def theme_row(rows: Sequence[Mapping[str, Any]], vertical: str) -> Mapping[str, Any] | RowProblem:
    """The vertical's one active theme row, holding the content columns."""
    row = _one(rows, THEME_TABLE, f"vertical='{vertical}', is_active=true")
    if isinstance(row, Mapping) and "content" not in row and "content_structured" not in row:
        return RowProblem(Reason.BAD_RESPONSE, f"{THEME_TABLE} row lacks content columns")
    return row


def nodes_by_name(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Active node rows grouped by node name, in the order read.

    Raises:
        BadResponse: A row lacks ``node_name`` or ``content``.
    """
    by_name: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if not isinstance(row.get("node_name"), str) or "content" not in row:
            raise BadResponse(f"{NODE_VIEW} row lacks node_name/content")
        by_name.setdefault(row["node_name"], []).append(row)
    return by_name


def node_row(found: Sequence[Mapping[str, Any]], name: str, vertical: str) -> Mapping[str, Any] | RowProblem:
    """The node's one active row among ``found`` (its rows from :func:`nodes_by_name`)."""
    if not found:
        return RowProblem(
            Reason.MISSING_ROW,
            f"no active, non-draft prompt version for node_name='{name}', vertical='{vertical}'",
        )
    if len(found) > 1:
        return RowProblem(
            Reason.INVALID_CONTENT,
            f"{len(found)} active prompts for node_name='{name}', vertical='{vertical}'; expected exactly one",
        )
    return found[0]


def model_value(
    rows: Sequence[Mapping[str, Any]], platform: Platform, kind: ModelKind
) -> tuple[str, bool] | RowProblem:
    """The model string and custom-voice flag of the catalogue's one active row."""
    table, column = MODEL_TABLES[(platform, kind)]
    rows = [r for r in rows if r.get("is_active", True) is not False]  # a ranked read holds backup rows too
    row = _one(rows, table, "is_active=true")
    if isinstance(row, RowProblem):
        return row
    value = row.get(column)
    if not isinstance(value, str):
        return RowProblem(Reason.BAD_RESPONSE, f"{table} row has no string {column}")
    return value, bool(row.get("is_custom") or False)


def location_of(key: str, platform: Platform) -> str:
    """The table(s) a component key (or the ``nodes`` request) is read from, for banners and provenance."""
    if key == "nodes":
        return NODE_TABLES
    component = ComponentKey.parse(key)
    if component.kind == "theme":
        return THEME_TABLE
    if component.kind == "node":
        return NODE_TABLES
    return MODEL_TABLES[(component.platform or platform, component.model_kind)][0]


def _one(rows: Sequence[Mapping[str, Any]], location: str, where: str) -> Mapping[str, Any] | RowProblem:
    if not rows:
        return RowProblem(Reason.MISSING_ROW, f"no row in {location} with {where}")
    if len(rows) > 1:
        return RowProblem(Reason.INVALID_CONTENT, f"{len(rows)} rows in {location} with {where}; expected exactly one")
    return rows[0]
