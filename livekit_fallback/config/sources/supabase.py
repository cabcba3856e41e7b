"""Read an agent's configuration from Supabase (PostgREST) within a deadline.

Five requests are in flight at once: the theme, all active nodes of the
vertical (one request over the ``active_node_prompts`` view), and the
platform's three active models (for LiveKit with the ranked backup rows in
the same request: the config's backup chain starts with them). The client's own retries are off (they would
sleep for seconds) and its timeout is an :class:`httpx.Timeout` (float timeouts
are truncated to whole seconds by postgrest-py). Every response is checked for
shape and row count before any value is used, because supabase-py returns a
non-JSON body or a JSON object without raising. The requests and the
one-active-row rule are :mod:`.rows`, shared with the snapshot commands; this
module turns what they find into per-component outcomes and reason classes.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ...errors import BadResponse
from ...log import logger, protect_secrets
from ..keys import ComponentKey, ModelKind, Platform
from ..model import InvalidContent, ModelChoice, Node, Provenance, Reason, Source, Theme
from ..validation import first_message
from . import rows as _rows
from .base import Failure, FetchRequest, Found, Outcome, format_exception, redact_exception
from .rows import MODEL_TABLES, NODE_TABLES, NODE_VIEW, THEME_TABLE, Request, RowProblem, check_rows

if TYPE_CHECKING:  # the client and its dependencies are imported when a client is built (build_client)
    import httpx

    from supabase import AsyncClient

__all__ = [
    "MODEL_TABLES",
    "NODE_TABLES",
    "NODE_VIEW",
    "THEME_TABLE",
    "BadResponse",
    "SupabaseSource",
    "build_client",
    "check_rows",
    "location_of",
]


_WITH_BACKUPS = ("livekit",)
"""Platforms whose calls use backup models (a SignalWire call names one model per kind)."""


class SupabaseSource:
    """A :class:`~livekit_fallback.config.sources.base.ConfigSource` over Supabase.

    Create one per process and share it: it owns one HTTP connection pool.
    Construction does no I/O; the first :meth:`fetch` opens connections.

    Args:
        url: The project URL (``SUPABASE_URL``).
        key: The service or anon key. Never logged.
        timeout: Per-request HTTP timeout; the resolver's deadline usually cuts
            requests shorter.
        schema: The PostgreSQL schema holding the tables.
        transport: The HTTP transport to send requests through; ``None`` for
            the network. Tests pass an :class:`httpx.MockTransport`.
    """

    source = Source.DATABASE

    def __init__(
        self,
        url: str,
        key: str,
        *,
        timeout: float = 5.0,
        schema: str = "public",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not url or not key:
            raise ValueError("SupabaseSource needs both a URL and a key")
        protect_secrets(key)  # the key never reaches a log line, whatever carries it there
        self._url = url
        self._key = key
        self._timeout = timeout
        self._schema = schema
        self._transport = transport
        self._client: AsyncClient | None = None
        self._http: httpx.AsyncClient | None = None
        self._client_lock = asyncio.Lock()
        self._ranked: dict[Platform, dict[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]]] = {}
        self._rank_column = True  # until the database says it has no backup_rank column

    @property
    def url(self) -> str:
        """The project URL (never includes the key)."""
        return self._url

    def location(self, key: str, platform: Platform) -> str:
        """The table(s) a component key is read from, for banners and provenance."""
        return location_of(key, platform)

    async def prepare(self) -> None:
        """Build the client now (imports, TLS context): work of this process, not of the database.

        The pipeline calls it before a read's deadline starts, and the prewarm
        step before a call arrives, so a cold process never spends a read's
        time importing and is never taken for a slow database.

        Raises:
            Exception: The client cannot be built (the read reports it).
        """
        await self._ensure_client()

    async def _ensure_client(self) -> AsyncClient:
        """Build the client once, in a thread: loading the CA bundle takes tens of milliseconds."""
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    await asyncio.to_thread(self._get_client)
        assert self._client is not None
        return self._client

    def _get_client(self) -> AsyncClient:
        if self._client is None:
            self._client, self._http = build_client(
                self._url, self._key, timeout=self._timeout, schema=self._schema, transport=self._transport
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connection pool. Safe to call more than once."""
        if self._http is not None:
            await self._http.aclose()
        self._client = None
        self._http = None

    def ranked_backups(self, platform: Platform) -> dict[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]]:
        """The backup rows (``backup_rank`` set) of the platform's catalogues, as of the latest read.

        Read beside the active rows of each model kind the resolver asks for;
        empty until then, and for a kind whose backup read failed.
        """
        return dict(self._ranked.get(platform, {}))

    def queries(self, request: FetchRequest) -> dict[str, Request]:
        """The request each group of components needs.

        Groups are ``theme``, ``nodes`` and ``models.<kind>``; only groups with a
        wanted key are included.
        """
        client = self._get_client()
        wanted = [ComponentKey.parse(key) for key in request.keys]
        groups: dict[str, Request] = {}
        if any(k.kind == "theme" for k in wanted):
            groups["theme"] = _rows.theme_request(client, request.vertical)
        nodes = [k.name for k in wanted if k.kind == "node"]
        if nodes:
            groups["nodes"] = _rows.nodes_request(client, request.vertical, nodes)
        for k in wanted:
            if k.kind == "model":
                ranked = self._rank_column and request.platform in _WITH_BACKUPS
                groups[str(k)] = _rows.model_request(client, request.platform, k.model_kind, ranked=ranked)
        return groups

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Read every wanted component concurrently and validate each alone."""
        await self._ensure_client()
        groups = self.queries(request)
        timeout = max(0.0, request.deadline - asyncio.get_running_loop().time())
        answers = await _rows.run_requests(groups, timeout)
        read_at = datetime.now(timezone.utc)
        outcomes: dict[str, Outcome] = {}
        for name, answer in answers.items():
            keys = _keys_of_group(name, request.keys)
            location = location_of(name, request.platform)
            if answer.timed_out:
                failure = Failure(
                    Reason.TIMEOUT,
                    f"no answer from {location} within the {timeout * 1000:.0f} ms left of the deadline",
                    location,
                )
                outcomes.update({key: failure for key in keys})
            elif answer.error is not None:
                if name.startswith("models.") and self._rank_column and _rows.is_missing_rank_column(answer.error):
                    self._no_rank_column(answer.error)
                exc = redact_exception(answer.error, [self._key])
                failure = Failure(_classify(exc), format_exception(exc, [self._key]), location, exc)
                outcomes.update({key: failure for key in keys})
            else:
                outcomes.update(self._interpret(name, keys, answer.response, request, read_at, location))
        return outcomes

    def _take_backups(
        self, rows: list[Mapping[str, Any]], platform: Platform, kind: ModelKind, read_at: datetime
    ) -> None:
        """Keep the ranked backup rows a model read returned (see :meth:`ranked_backups`)."""
        table = MODEL_TABLES[(platform, kind)][0]
        origin = Provenance(source=Source.DATABASE, taken_at=read_at, location=table)
        chain = []
        for value, is_custom in _rows.backup_values(rows, platform, kind):
            try:
                chain.append((ModelChoice(kind=kind, platform=platform, value=value, is_custom=is_custom), origin))
            except ValueError:
                continue  # an invalid backup row is skipped; the active row is checked on its own
        self._ranked.setdefault(platform, {})[kind] = tuple(chain)

    def _no_rank_column(self, exc: BaseException) -> None:
        """Read models without backups from now on, and say once how to get them."""
        self._rank_column = False
        logger.error(
            "The model tables have no %s column: apply the migration that adds it "
            "(supabase/migrations/20251201000000_model_backup_rank.sql). Until then the database's "
            "ranked backups are not read; this resolution falls back for its models. Error: %s",
            _rows.RANK_COLUMN,
            format_exception(exc, [self._key]),
            extra={"event": "backup_rank_missing"},
        )

    def _interpret(
        self,
        group: str,
        keys: Sequence[str],
        response: Any,
        request: FetchRequest,
        read_at: datetime,
        location: str,
    ) -> dict[str, Outcome]:
        try:
            rows = check_rows(getattr(response, "data", response), location, [self._key])
            by_name = _rows.nodes_by_name(rows) if group == "nodes" else {}
        except BadResponse as exc:
            return {key: Failure(Reason.BAD_RESPONSE, str(exc), location) for key in keys}
        if group == "theme":
            return {group: self._theme(rows, request, read_at, location)}
        if group == "nodes":
            return {key: self._node(by_name, key, request, read_at, location) for key in keys}
        kind = ComponentKey.parse(group).model_kind
        if request.platform in _WITH_BACKUPS and self._rank_column:
            self._take_backups(rows, request.platform, kind, read_at)
        return {group: self._model(rows, kind, request.platform, read_at, location)}

    def _theme(self, rows: list[Mapping[str, Any]], request: FetchRequest, read_at: datetime, location: str) -> Outcome:
        row = _rows.theme_row(rows, request.vertical)
        if isinstance(row, RowProblem):
            return Failure(row.reason, row.message, location)
        try:
            theme = Theme.from_content(
                request.vertical, structured=row.get("content_structured"), content=row.get("content")
            )
        except InvalidContent as exc:
            return Failure(Reason.INVALID_CONTENT, str(exc), location)
        return Found(theme, read_at, location)

    def _node(
        self,
        by_name: Mapping[str, list[Mapping[str, Any]]],
        key: str,
        request: FetchRequest,
        read_at: datetime,
        location: str,
    ) -> Outcome:
        name = ComponentKey.parse(key).name
        row = _rows.node_row(by_name.get(name, []), name, request.vertical)
        if isinstance(row, RowProblem):
            return Failure(row.reason, row.message, location)
        try:
            node = Node.from_content(name, row["content"], platform=request.platform, known_nodes=request.node_names)
        except InvalidContent as exc:
            return Failure(Reason.INVALID_CONTENT, f"node '{name}': {exc}", location)
        return Found(node, read_at, location)

    def _model(
        self, rows: list[Mapping[str, Any]], kind: ModelKind, platform: Platform, read_at: datetime, location: str
    ) -> Outcome:
        found = _rows.model_value(rows, platform, kind)
        if isinstance(found, RowProblem):
            return Failure(found.reason, found.message, location)
        value, is_custom = found
        try:
            choice = ModelChoice(kind=kind, platform=platform, value=value, is_custom=is_custom)
        except ValueError as exc:
            return Failure(Reason.INVALID_CONTENT, first_message(exc), location)
        return Found(choice, read_at, location)


def build_client(
    url: str,
    key: str,
    *,
    timeout: float,
    schema: str = "public",
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[AsyncClient, httpx.AsyncClient]:
    """An async supabase client as every reader in this package needs it.

    Retries off (they sleep for seconds), an :class:`httpx.Timeout` (float
    timeouts are truncated to whole seconds), redirects not followed (httpx
    drops ``Authorization`` on a cross-origin redirect but would still send the
    ``apiKey`` header, the key, along), one TLS context per process, and
    HTTP/2 where the server offers it (as Supabase does): the five requests of
    a read then share one connection and one TLS handshake instead of five.

    Args:
        url: The project URL.
        key: The service or anon key.
        timeout: Per-request HTTP timeout in seconds.
        schema: The PostgreSQL schema holding the tables.
        transport: The HTTP transport; ``None`` for the network (an
            :class:`httpx.MockTransport` in tests).

    Returns:
        The client and the HTTP client it uses; close the latter when done.
    """
    import httpx

    from supabase import AsyncClient, AsyncClientOptions

    http = httpx.AsyncClient(
        verify=_ssl_context(),
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        follow_redirects=False,
        http2=True,
        transport=transport,
    )
    options = AsyncClientOptions(
        schema=schema,
        postgrest_client_retry=False,
        postgrest_client_timeout=httpx.Timeout(timeout),
        httpx_client=http,
        auto_refresh_token=False,
        persist_session=False,
    )
    client = AsyncClient(url, key, options)
    with warnings.catch_warnings():
        # postgrest-py warns that its timeout argument is deprecated; the
        # timeout lives in our httpx client, so the warning is noise here.
        warnings.simplefilter("ignore", DeprecationWarning)
        _ = client.postgrest
    return client, http


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process: every client reuses the loaded CA bundle."""
    import httpx

    return httpx.create_ssl_context()


def _classify(exc: BaseException) -> Reason:
    import httpx  # loaded already: a client raised
    from postgrest.exceptions import APIError

    if isinstance(exc, (TimeoutError, asyncio.TimeoutError, httpx.TimeoutException)):
        return Reason.TIMEOUT
    if isinstance(exc, httpx.TransportError):
        return Reason.UNREACHABLE
    if isinstance(exc, APIError):
        code = str(exc.code or "")
        message = str(exc.message or "")
        if code.startswith("PGRST3") or code in {"401", "403", "42501"} or "api key" in message.lower():
            return Reason.AUTH
        return Reason.HTTP_ERROR
    return Reason.BAD_RESPONSE


def _keys_of_group(group: str, keys: Sequence[str]) -> list[str]:
    if group == "nodes":
        return [k for k in keys if ComponentKey.parse(k).kind == "node"]
    return [group]


def location_of(key: str, platform: Platform) -> str:
    """The table(s) a component key (or request group: ``nodes``) is read from, for banners and provenance."""
    return _rows.location_of(key, platform)
