"""Read an agent's configuration from Supabase (PostgREST) within a deadline.

Five requests are in flight at once: the theme, all active nodes of the
vertical (one request over the ``active_node_prompts`` view), and the
platform's three active models. The client's own retries are off (they would
sleep for seconds) and its timeout is an :class:`httpx.Timeout` (float timeouts
are truncated to whole seconds by postgrest-py). Every response is checked for
shape and row count before any value is used, because supabase-py returns a
non-JSON body or a JSON object without raising.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import httpx
from postgrest.exceptions import APIError

from supabase import AsyncClient, AsyncClientOptions

from ...errors import BadResponse
from ..model import InvalidContent, ModelChoice, ModelKind, Node, Platform, Reason, Source, Theme
from .base import Failure, FetchRequest, Found, Outcome, format_exception, redact, redact_exception

__all__ = [
    "MODEL_TABLES",
    "NODE_TABLES",
    "THEME_TABLE",
    "BadResponse",
    "SupabaseSource",
    "build_client",
    "check_rows",
    "location_of",
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
    """

    source = Source.DATABASE

    def __init__(self, url: str, key: str, *, timeout: float = 5.0, schema: str = "public") -> None:
        if not url or not key:
            raise ValueError("SupabaseSource needs both a URL and a key")
        self._url = url
        self._key = key
        self._timeout = timeout
        self._schema = schema
        self._client: AsyncClient | None = None
        self._http: httpx.AsyncClient | None = None
        self._client_lock = asyncio.Lock()

    @property
    def url(self) -> str:
        """The project URL (never includes the key)."""
        return self._url

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
            self._client, self._http = build_client(self._url, self._key, timeout=self._timeout, schema=self._schema)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connection pool. Safe to call more than once."""
        if self._http is not None:
            await self._http.aclose()
        self._client = None
        self._http = None

    def queries(self, request: FetchRequest) -> dict[str, Callable[[], Awaitable[Any]]]:
        """The request each group of components needs, as zero-argument coroutine factories.

        Groups are ``theme``, ``nodes`` and ``models.<kind>``; only groups with a
        wanted key are included.
        """
        client = self._get_client()
        wanted = set(request.keys)
        groups: dict[str, Callable[[], Awaitable[Any]]] = {}
        if "theme" in wanted:
            groups["theme"] = (
                client.table(THEME_TABLE)
                .select("vertical,content,content_structured")
                .eq("vertical", request.vertical)
                .eq("is_active", True)
                .limit(2)
                .execute
            )
        nodes = [k.split(".", 1)[1] for k in request.keys if k.startswith("nodes.")]
        if nodes:
            groups["nodes"] = (
                client.table(NODE_VIEW)
                .select("node_name,version_number,content")
                .eq("vertical", request.vertical)
                .in_("node_name", sorted(nodes))
                .order("node_name")
                .execute
            )
        for kind in ("stt", "llm", "tts"):
            if f"models.{kind}" in wanted:
                table, column = MODEL_TABLES[(request.platform, kind)]
                columns = f"{column},is_custom" if table == "livekit_available_voices" else column
                groups[f"models.{kind}"] = client.table(table).select(columns).eq("is_active", True).limit(2).execute
        return groups

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Read every wanted component concurrently and validate each alone."""
        await self._ensure_client()
        groups = self.queries(request)
        loop = asyncio.get_running_loop()
        tasks = {name: asyncio.ensure_future(factory()) for name, factory in groups.items()}
        timeout = max(0.0, request.deadline - loop.time())
        try:
            if tasks:
                await asyncio.wait(tasks.values(), timeout=timeout)
        except BaseException:  # cancelled: never leave requests running behind us
            for task in tasks.values():
                task.cancel()
            raise
        read_at = datetime.now(timezone.utc)
        outcomes: dict[str, Outcome] = {}
        for name, task in tasks.items():
            keys = _keys_of_group(name, request.keys)
            location = location_of(name, request.platform)
            if not task.done():
                task.cancel()
                failure = Failure(
                    Reason.TIMEOUT,
                    f"no answer from {location} within the {timeout * 1000:.0f} ms left of the deadline",
                    location,
                )
                outcomes.update({key: failure for key in keys})
                continue
            exc = task.exception()
            if exc is not None:
                redact_exception(exc, [self._key])
                failure = Failure(_classify(exc), format_exception(exc, [self._key]), location, exc)
                outcomes.update({key: failure for key in keys})
                continue
            outcomes.update(self._interpret(name, keys, task.result(), request, read_at, location))
        if tasks:
            await asyncio.gather(*tasks.values(), return_exceptions=True)
        return outcomes

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
        except BadResponse as exc:
            return {key: Failure(Reason.BAD_RESPONSE, str(exc), location) for key in keys}
        if group == "theme":
            return {"theme": self._theme(rows, request, read_at, location)}
        if group == "nodes":
            return self._nodes(rows, keys, request, read_at, location)
        kind = group.split(".", 1)[1]
        return {group: self._model(rows, kind, request.platform, read_at, location)}  # type: ignore[arg-type]

    def _theme(self, rows: list[Mapping[str, Any]], request: FetchRequest, read_at: datetime, location: str) -> Outcome:
        row = _one(rows, location, f"vertical='{request.vertical}', is_active=true")
        if isinstance(row, Failure):
            return row
        if "content" not in row and "content_structured" not in row:
            return Failure(Reason.BAD_RESPONSE, f"{location} row lacks content columns", location)
        try:
            theme = Theme.from_content(
                request.vertical, structured=row.get("content_structured"), content=row.get("content")
            )
        except InvalidContent as exc:
            return Failure(Reason.INVALID_CONTENT, str(exc), location)
        return Found(theme, read_at, location)

    def _nodes(
        self,
        rows: list[Mapping[str, Any]],
        keys: Sequence[str],
        request: FetchRequest,
        read_at: datetime,
        location: str,
    ) -> dict[str, Outcome]:
        by_name: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            if not isinstance(row.get("node_name"), str) or "content" not in row:
                failure = Failure(Reason.BAD_RESPONSE, f"{location} row lacks node_name/content", location)
                return {key: failure for key in keys}
            by_name.setdefault(row["node_name"], []).append(row)
        outcomes: dict[str, Outcome] = {}
        for key in keys:
            name = key.split(".", 1)[1]
            found = by_name.get(name, [])
            if not found:
                outcomes[key] = Failure(
                    Reason.MISSING_ROW,
                    f"no active, non-draft prompt version for node_name='{name}', vertical='{request.vertical}'",
                    location,
                )
            elif len(found) > 1:
                outcomes[key] = Failure(
                    Reason.INVALID_CONTENT,
                    f"{len(found)} active prompts for node_name='{name}', vertical='{request.vertical}'; "
                    "expected exactly one",
                    location,
                )
            else:
                try:
                    node = Node.from_content(
                        name, found[0]["content"], platform=request.platform, known_nodes=request.node_names
                    )
                except InvalidContent as exc:
                    outcomes[key] = Failure(Reason.INVALID_CONTENT, f"node '{name}': {exc}", location)
                else:
                    outcomes[key] = Found(node, read_at, location)
        return outcomes

    def _model(
        self, rows: list[Mapping[str, Any]], kind: ModelKind, platform: Platform, read_at: datetime, location: str
    ) -> Outcome:
        row = _one(rows, location, "is_active=true")
        if isinstance(row, Failure):
            return row
        column = MODEL_TABLES[(platform, kind)][1]
        value = row.get(column)
        if not isinstance(value, str):
            return Failure(Reason.BAD_RESPONSE, f"{location} row has no string {column}", location)
        try:
            choice = ModelChoice(
                kind=kind, platform=platform, value=value, is_custom=bool(row.get("is_custom") or False)
            )
        except ValueError as exc:
            errors = getattr(exc, "errors", None)
            message = errors()[0]["msg"].removeprefix("Value error, ") if callable(errors) else str(exc)
            return Failure(Reason.INVALID_CONTENT, message, location)
        return Found(choice, read_at, location)


def build_client(
    url: str, key: str, *, timeout: float, schema: str = "public"
) -> tuple[AsyncClient, httpx.AsyncClient]:
    """An async supabase client as every reader in this package needs it.

    Retries off (they sleep for seconds), an :class:`httpx.Timeout` (float
    timeouts are truncated to whole seconds), redirects not followed (httpx
    drops ``Authorization`` on a cross-origin redirect but would still send the
    ``apiKey`` header, the key, along), and one TLS context per process.

    Returns:
        The client and the HTTP client it uses; close the latter when done.
    """
    http = httpx.AsyncClient(
        verify=_ssl_context(),
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        follow_redirects=False,
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
    return httpx.create_ssl_context()


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


def _one(rows: list[Mapping[str, Any]], location: str, where: str) -> Mapping[str, Any] | Failure:
    if not rows:
        return Failure(Reason.MISSING_ROW, f"no row in {location} with {where}", location)
    if len(rows) > 1:
        return Failure(
            Reason.INVALID_CONTENT, f"{len(rows)} rows in {location} with {where}; expected exactly one", location
        )
    return rows[0]


def _classify(exc: BaseException) -> Reason:
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
        return [k for k in keys if k.startswith("nodes.")]
    return [group]


def location_of(key: str, platform: Platform) -> str:
    """The table(s) a component key (or request group: ``nodes``) is read from, for banners and provenance."""
    if key == "theme":
        return THEME_TABLE
    if key == "nodes" or key.startswith("nodes."):
        return NODE_TABLES
    return MODEL_TABLES[(platform, key.split(".", 1)[1])][0]  # type: ignore[index]
