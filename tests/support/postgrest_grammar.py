"""The subset of PostgREST's URL grammar the stand-in understands, turned into SQL fragments.

Every identifier is validated and quoted with :class:`psycopg.sql.Identifier`; every value
travels as a bound parameter. Anything outside the subset raises :class:`PgrstError` 400
naming the feature, so a test can never pass by accident on an ignored parameter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from psycopg import sql

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ROW = "_t"  # alias of the target table (or of the written rows) in every statement
RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})
_COLUMN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:->>?[A-Za-z0-9_$]+)*)$")
_ARROW = re.compile(r"(->>?)([A-Za-z0-9_$]+)")
_FILTER = re.compile(r"^(not\.)?([a-z]+)(\([^)]*\))?\.(.*)$", re.S)
_COMPARE = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_IS_VALUES = {"null": "NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}
_UNSUPPORTED_OPS = frozenset(
    {
        "cs",
        "cd",
        "ov",
        "sl",
        "sr",
        "nxl",
        "nxr",
        "adj",
        "fts",
        "plfts",
        "phfts",
        "wfts",
        "match",
        "imatch",
        "isdistinct",
    }
)
_ORDER_WORDS = {"asc": "ASC", "desc": "DESC", "nullsfirst": "NULLS FIRST", "nullslast": "NULLS LAST"}


class PgrstError(Exception):
    """An error answered as PostgREST's JSON body ``{code, message, details, hint}``."""

    def __init__(
        self, status: int, code: str | None, message: str, details: str | None = None, hint: str | None = None
    ) -> None:
        """Creates the error.

        Args:
            status: HTTP status to answer with.
            code: PostgREST (``PGRSTxxx``) or SQLSTATE code.
            message: Human-readable message.
            details: Optional details.
            hint: Optional hint.
        """
        super().__init__(message)
        self.status = status
        self.payload = {"code": code, "message": message, "details": details, "hint": hint}

    def body(self) -> bytes:
        """Returns the JSON body."""
        return json.dumps(self.payload).encode()


def unsupported(feature: str) -> PgrstError:
    """Returns the 400 error for a PostgREST feature the stand-in does not implement.

    Args:
        feature: What the request used, e.g. ``"logical operator 'or'"``.
    """
    return PgrstError(
        400,
        "PGRST100",
        f"Not supported by the PostgREST test stand-in: {feature}",
        hint="tests/support/postgrest.py implements only a subset of PostgREST",
    )


def parse_error(what: str, text: str) -> PgrstError:
    """Returns PostgREST's 400 PGRST100 error for an unparsable query parameter."""
    return PgrstError(400, "PGRST100", f'"failed to parse {what}" ({text})')


class Frag(NamedTuple):
    """A piece of SQL and the values bound to its placeholders, in order."""

    sql: sql.Composable
    params: tuple = ()


def join(frags: list[Frag], separator: str) -> Frag:
    """Joins fragments with a separator, concatenating their parameters in order."""
    return Frag(sql.SQL(separator).join(f.sql for f in frags), tuple(p for f in frags for p in f.params))


def identifier(name: str, what: str = "column") -> str:
    """Validates a plain (optionally double-quoted) identifier and returns it unquoted."""
    if len(name) > 1 and name[0] == name[-1] == '"':
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not IDENT.match(name):
        raise parse_error(what, name)
    return name


@dataclass(frozen=True)
class Column:
    """A column reference, optionally followed by JSON arrows (``col->a->>b``)."""

    name: str
    path: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> Column:
        """Parses ``col``, ``col->key`` or ``col->>key`` (chains allowed)."""
        if "::" in text:
            raise unsupported(f"casts ({text})")
        match = _COLUMN.match(text)
        if not match:
            raise parse_error("column", text)
        return cls(match[1], tuple(_ARROW.findall(match[2])))

    @property
    def output_name(self) -> str:
        """Returns the name PostgREST gives the value: the last JSON key, else the column."""
        return self.path[-1][1] if self.path else self.name

    def expr(self) -> Frag:
        """Returns the SQL expression over the row alias ``_t``."""
        parts, params = [sql.Identifier(ROW, self.name)], []
        for arrow, key in self.path:
            parts.append(sql.SQL(f" {arrow} %s::int" if key.isdigit() else f" {arrow} %s::text"))
            params.append(int(key) if key.isdigit() else key)
        return Frag(sql.Composed(parts), tuple(params))


def select_list(text: str | None) -> Frag:
    """Translates ``select=`` (``*``, columns, ``alias:col``, JSON arrows) into a select list."""
    items = []
    for raw in (text or "*").split(","):
        if "(" in raw or "!" in raw or raw.startswith("..."):
            raise unsupported(f"embedded resources, aggregates or spreads in select ({raw})")
        if raw == "*":
            items.append(Frag(sql.SQL("{}.*").format(sql.Identifier(ROW))))
            continue
        if "::" in raw:
            raise unsupported(f"casts in select ({raw})")
        alias, _, column_text = raw.rpartition(":")
        column = Column.parse(column_text)
        name = identifier(alias, "select alias") if alias else column.output_name
        expr = column.expr()
        items.append(Frag(sql.SQL("{} AS {}").format(expr.sql, sql.Identifier(name)), expr.params))
    return join(items, ", ")


def parse_list(text: str) -> list[str]:
    """Parses an ``in`` list such as ``(a,"b,c")`` into its items."""
    if not (text.startswith("(") and text.endswith(")")):
        raise parse_error("in list", text)
    items, current, quoted, escaped, was_quoted = [], [], False, False, False
    for char in text[1:-1]:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted, was_quoted = not quoted, True
        elif char == "," and not quoted:
            items.append("".join(current) if was_quoted else "".join(current).strip())
            current, was_quoted = [], False
        else:
            current.append(char)
    if current or was_quoted or items:
        items.append("".join(current) if was_quoted else "".join(current).strip())
    return items


def filter_condition(key: str, value: str) -> Frag:
    """Translates one ``col=[not.]op.value`` query parameter into a WHERE condition."""
    match = _FILTER.match(value)
    if not match:
        raise parse_error("filter", f"{key}={value}")
    negate, op, modifier, operand = match.groups()
    if modifier:
        raise unsupported(f"operator modifiers ({op}{modifier})")
    if op in _UNSUPPORTED_OPS:
        raise unsupported(f"operator '{op}'")
    lhs = Column.parse(key).expr()
    if op in _COMPARE:
        cond = Frag(sql.SQL("{} " + _COMPARE[op] + " %s").format(lhs.sql), (*lhs.params, operand))
    elif op in ("like", "ilike"):
        pattern = operand.replace("*", "%")
        cond = Frag(sql.SQL("{} " + op.upper() + " %s").format(lhs.sql), (*lhs.params, pattern))
    elif op == "is":
        if operand.lower() not in _IS_VALUES:
            raise parse_error("is value", operand)
        cond = Frag(sql.SQL("{} IS " + _IS_VALUES[operand.lower()]).format(lhs.sql), lhs.params)
    elif op == "in":
        items = parse_list(operand)
        if not items:
            cond = Frag(sql.SQL("false"))
        else:
            marks = sql.SQL(", ").join(sql.Placeholder() * len(items))
            cond = Frag(sql.SQL("{} IN ({})").format(lhs.sql, marks), (*lhs.params, *items))
    else:
        raise parse_error("filter operator", op)
    return Frag(sql.SQL("NOT ({})").format(cond.sql), cond.params) if negate else cond


def order_by(text: str) -> Frag:
    """Translates ``order=a.asc,b->>k.desc.nullslast`` into an ORDER BY list."""
    terms = []
    for term in text.split(","):
        column_text, *words = term.split(".")
        if len(words) > 2 or any(word not in _ORDER_WORDS for word in words):
            raise parse_error("order", term)
        expr = Column.parse(column_text).expr()
        suffix = "".join(" " + _ORDER_WORDS[word] for word in words)
        terms.append(Frag(sql.SQL("{}" + suffix).format(expr.sql), expr.params))
    return join(terms, ", ")


def non_negative(name: str, text: str) -> int:
    """Parses ``limit=`` / ``offset=``."""
    if not text.isdigit():
        raise parse_error(name, text)
    return int(text)


@dataclass
class QueryParams:
    """The query string of one request, split into the parts the stand-in understands."""

    select: str | None = None
    filters: list[Frag] = field(default_factory=list)
    order: Frag | None = None
    limit: int | None = None
    offset: int | None = None
    columns: list[str] | None = None
    on_conflict: list[str] | None = None

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]]) -> QueryParams:
        """Builds the parts from decoded ``(key, value)`` pairs, rejecting unsupported ones."""
        params = cls()
        for key, value in pairs:
            if key in ("or", "and", "not.or", "not.and"):
                raise unsupported(f"logical operators ({key}=)")
            if "." in key:
                raise unsupported(f"parameters of embedded resources ({key}=)")
            if key == "select":
                params.select = value
            elif key == "order":
                params.order = order_by(value)
            elif key in ("limit", "offset"):
                setattr(params, key, non_negative(key, value))
            elif key in ("columns", "on_conflict"):
                setattr(params, key, [identifier(c) for c in value.split(",")])
            else:
                params.filters.append(filter_condition(key, value))
        return params

    def where(self) -> Frag:
        """Returns the WHERE clause (empty when there are no filters)."""
        if not self.filters:
            return Frag(sql.SQL(""))
        conditions = join(self.filters, " AND ")
        return Frag(sql.SQL(" WHERE ") + conditions.sql, conditions.params)
