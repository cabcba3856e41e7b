"""Executes one PostgREST request (read, insert/upsert, update, delete) in a transaction.

Bodies are rendered by PostgreSQL itself (``json_agg``), as PostgREST does, so booleans,
numerics, jsonb and timestamptz come out exactly as the real server would send them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from .postgrest_grammar import ROW, Frag, PgrstError, QueryParams, identifier, join, select_list, unsupported

ALLOWED_SCHEMAS = ("public",)
OBJECT_MEDIA_TYPE = "application/vnd.pgrst.object+json"
JSON_MEDIA_TYPE = "application/json"
_WRITE_METHODS = ("POST", "PATCH", "DELETE")
_RETURNING = sql.SQL(" RETURNING {}.*").format(sql.Identifier(ROW))
_STATUS_BY_SQLSTATE = {
    "23503": 409,
    "23505": 409,
    "25006": 405,
    "42883": 404,
    "42P01": 404,
    "42P17": 500,
    "42501": 403,
    "P0001": 400,
}
_STATUS_BY_CLASS = {
    "08": 503,
    "09": 500,
    "0L": 403,
    "0P": 403,
    "25": 500,
    "28": 403,
    "2D": 500,
    "38": 500,
    "39": 500,
    "3B": 500,
    "40": 500,
    "53": 503,
    "54": 500,
    "55": 500,
    "57": 500,
    "58": 500,
    "F0": 500,
    "HV": 500,
    "P0": 500,
    "XX": 500,
}


@dataclass
class Reply:
    """An HTTP answer: status, extra headers and body."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """The parts of an HTTP request the operations need (header names lower-case)."""

    method: str
    table: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def prefer(self) -> dict[str, str]:
        """Returns the ``Prefer`` preferences as a dict, e.g. ``{"count": "exact"}``."""
        items = (part.strip().partition("=") for part in self.headers.get("prefer", "").split(","))
        return {key: value for key, _, value in items if key}


def execute(cur: psycopg.Cursor, request: Request) -> Reply:
    """Runs a request on a cursor whose transaction the caller commits or rolls back.

    Args:
        cur: Cursor of a connection in a fresh transaction.
        request: The request.

    Returns:
        The reply to send.

    Raises:
        PgrstError: For any error answer; the caller must roll back.
    """
    single, target = _negotiate(request)
    params = QueryParams.parse(request.query)
    if request.method in ("GET", "HEAD"):
        return _read(cur, target, params, "count" in request.prefer, single)
    return _write(cur, request, target, params, single)


def db_error(exc: psycopg.Error) -> PgrstError:
    """Maps a database exception to PostgREST's status and JSON body (SQLSTATE as code)."""
    state = exc.sqlstate
    if state is None:
        return PgrstError(503, "PGRST000", "Could not connect with the database", details=type(exc).__name__)
    status = _STATUS_BY_SQLSTATE.get(state) or _STATUS_BY_CLASS.get(state[:2], 400)
    diag = exc.diag
    return PgrstError(status, state, diag.message_primary or type(exc).__name__, diag.message_detail, diag.message_hint)


def _negotiate(request: Request) -> tuple[bool, sql.Identifier]:
    """Checks Accept, Prefer and the profile headers.

    Returns:
        Whether one object was requested (``.single()``), and the target table.
    """
    prefer = request.prefer
    if "missing" in prefer or "max-affected" in prefer:
        raise unsupported("Prefer: missing=default / max-affected")
    profile = "content-profile" if request.method in _WRITE_METHODS else "accept-profile"
    schema = request.headers.get(profile, ALLOWED_SCHEMAS[0])
    if schema not in ALLOWED_SCHEMAS:
        raise PgrstError(406, "PGRST106", "The schema must be one of the following: " + ", ".join(ALLOWED_SCHEMAS))
    accept = request.headers.get("accept", "*/*")
    if OBJECT_MEDIA_TYPE in accept:
        if "nulls=stripped" in accept:
            raise unsupported("Accept: ...;nulls=stripped")
        return True, sql.Identifier(schema, request.table)
    media_types = {part.split(";")[0].strip() for part in accept.split(",")}
    if not media_types & {"*/*", "application/*", JSON_MEDIA_TYPE, ""}:
        raise unsupported(f"Accept: {accept}")
    return False, sql.Identifier(schema, request.table)


def _read(cur: psycopg.Cursor, target: sql.Identifier, params: QueryParams, with_count: bool, single: bool) -> Reply:
    where = params.where()
    tail = [where]
    if params.order:
        tail.append(Frag(sql.SQL(" ORDER BY ") + params.order.sql, params.order.params))
    if params.limit is not None:
        tail.append(Frag(sql.SQL(" LIMIT %s"), (params.limit,)))
    if params.offset is not None:
        tail.append(Frag(sql.SQL(" OFFSET %s"), (params.offset,)))
    source = join([Frag(sql.SQL("{} AS {}").format(target, sql.Identifier(ROW))), *tail], "")
    rows_json, count, first_json = _fetch(cur, Frag(sql.SQL("")), source, params.select)
    total = None
    if with_count:
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} AS {}").format(target, sql.Identifier(ROW)) + where.sql, where.params
        )
        total = cur.fetchone()[0]
    if single and count != 1:
        raise _not_one_row(count)
    start = params.offset or 0
    first_to_last = f"{start}-{start + count - 1}" if count else "*"
    headers = {"Content-Range": f"{first_to_last}/{'*' if total is None else total}"}
    partial = total is not None and count and (start > 0 or start + count < total)
    return _body_reply(206 if partial else 200, headers, single, rows_json, first_json)


def _fetch(cur: psycopg.Cursor, cte: Frag, source: Frag, select: str | None) -> tuple[str, int, str | None]:
    """Selects ``select=`` over ``source`` (aliased ``_t``), rendered as JSON text by PostgreSQL.

    Returns:
        The JSON array text, the row count and the first row's JSON text (or None).
    """
    items = select_list(select)
    query = cte.sql + sql.SQL(
        "SELECT coalesce(json_agg(_r), '[]')::text, count(*)::int, (json_agg(_r) -> 0)::text"
        " FROM (SELECT {} FROM {}) AS _r"
    ).format(items.sql, source.sql)
    cur.execute(query, (*cte.params, *items.params, *source.params))
    return cur.fetchone()


def _write(cur: psycopg.Cursor, request: Request, target: sql.Identifier, params: QueryParams, single: bool) -> Reply:
    if params.order or params.limit is not None or params.offset is not None:
        raise unsupported("order/limit/offset on writes")
    if request.method == "DELETE":
        where = _required_where(params, "DELETE")
        statement = Frag(
            sql.SQL("DELETE FROM {} AS {}").format(target, sql.Identifier(ROW)) + where.sql + _RETURNING, where.params
        )
    elif request.method == "PATCH":
        statement = _update(target, params, _json_body(request.body, want=dict))
    elif params.filters:
        raise unsupported("filters on POST")
    else:
        statement = _insert(cur, request, target, params)
    cte = Frag(sql.SQL("WITH _w AS ({}) ").format(statement.sql), statement.params)
    written = Frag(sql.SQL("_w AS {}").format(sql.Identifier(ROW)))
    rows_json, count, first_json = _fetch(cur, cte, written, params.select)
    prefer = request.prefer
    represent = prefer.get("return") == "representation"
    if single and represent and count != 1:
        raise _not_one_row(count)  # the caller rolls the write back, as PostgREST does
    status = 201 if request.method == "POST" else (200 if represent else 204)
    headers = {"Content-Range": f"*/{count}"} if "count" in prefer else {}
    if not represent:
        return Reply(status, b"", headers)
    return _body_reply(status, headers, single, rows_json, first_json)


def _no_rows(target: sql.Identifier) -> Frag:
    """A statement yielding no rows, for writes with nothing to write."""
    return Frag(sql.SQL("SELECT * FROM {} AS {} WHERE false").format(target, sql.Identifier(ROW)))


def _update(target: sql.Identifier, params: QueryParams, values: dict) -> Frag:
    where = _required_where(params, "UPDATE")
    if not values:
        return _no_rows(target)
    sets = sql.SQL(", ").join(sql.SQL("{0} = _j.{0}").format(sql.Identifier(identifier(c))) for c in values)
    statement = sql.SQL("UPDATE {0} AS {1} SET {2} FROM jsonb_populate_record(NULL::{0}, %s::jsonb) AS _j").format(
        target, sql.Identifier(ROW), sets
    )
    return Frag(statement + where.sql + _RETURNING, (json.dumps(values), *where.params))


def _insert(cur: psycopg.Cursor, request: Request, target: sql.Identifier, params: QueryParams) -> Frag:
    body = _json_body(request.body, want=(dict, list))
    rows = [body] if isinstance(body, dict) else body
    if not all(isinstance(r, dict) for r in rows):
        raise PgrstError(400, "PGRST102", "All object keys must match")
    columns = params.columns or list(dict.fromkeys(key for r in rows for key in r))
    if not rows or not columns:
        if rows:
            raise unsupported("inserting rows without columns")
        return _no_rows(target)
    names = sql.SQL(", ").join(sql.Identifier(identifier(c)) for c in columns)
    statement = sql.SQL(
        "INSERT INTO {0} AS {1} ({2}) SELECT {2} FROM jsonb_populate_recordset(NULL::{0}, %s::jsonb)"
    ).format(target, sql.Identifier(ROW), names)
    conflict = _on_conflict(cur, request, target, params, columns)
    return Frag(statement + conflict + _RETURNING, (json.dumps(rows),))


def _on_conflict(
    cur: psycopg.Cursor, request: Request, target: sql.Identifier, params: QueryParams, columns: list[str]
) -> sql.Composable:
    resolution = request.prefer.get("resolution")
    if resolution is None:
        return sql.SQL("")
    if resolution not in ("merge-duplicates", "ignore-duplicates"):
        raise PgrstError(400, "PGRST100", f"unknown resolution {resolution!r}")
    keys = params.on_conflict or _primary_key(cur, target)
    head = sql.SQL(" ON CONFLICT ({}) DO ").format(sql.SQL(", ").join(map(sql.Identifier, keys)))
    if resolution == "ignore-duplicates":
        return head + sql.SQL("NOTHING")
    sets = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns)
    return head + sql.SQL("UPDATE SET ") + sets


def _primary_key(cur: psycopg.Cursor, target: sql.Identifier) -> list[str]:
    name = target.as_string(cur)
    cur.execute(
        "SELECT to_regclass(%s) IS NOT NULL, ARRAY(SELECT a.attname::text FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary)",
        (name, name),
    )
    exists, keys = cur.fetchone()
    if not exists:
        raise PgrstError(404, "42P01", f"relation {name} does not exist")
    if not keys:
        raise PgrstError(400, "PGRST100", f"upsert on {name} needs on_conflict= (no primary key)")
    return keys


def _required_where(params: QueryParams, verb: str) -> Frag:
    """Refuses unfiltered UPDATE/DELETE, like Supabase's pg-safeupdate."""
    if not params.filters:
        raise PgrstError(400, "21000", f"{verb} requires a WHERE clause")
    return params.where()


def _json_body(body: bytes, want: type | tuple[type, ...]) -> dict | list:
    try:
        value = json.loads(body or b"null")
    except ValueError:
        value = None
    if not isinstance(value, want):
        raise PgrstError(400, "PGRST102", "Empty or invalid json")
    return value


def _body_reply(status: int, headers: dict[str, str], single: bool, rows_json: str, first_json: str | None) -> Reply:
    media = OBJECT_MEDIA_TYPE if single else JSON_MEDIA_TYPE
    body = (first_json if single else rows_json).encode()
    return Reply(status, body, {**headers, "Content-Type": f"{media}; charset=utf-8"})


def _not_one_row(count: int) -> PgrstError:
    return PgrstError(
        406, "PGRST116", "JSON object requested, multiple (or no) rows returned", f"The result contains {count} rows"
    )
