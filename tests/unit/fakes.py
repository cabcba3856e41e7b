"""Fake sources and a fake clock for the unit tier: the pipeline, the state's rules and alarms in milliseconds.

The fakes implement the package's protocols (``ConfigSource``,
``LocatedSource``); component values are the packaged snapshot's, built and
validated by the package's own code.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone

from livekit_fallback.config.alarms import FallbackEvent
from livekit_fallback.config.keys import MODEL_KINDS, ModelKind, Platform, component_keys
from livekit_fallback.config.model import ModelChoice, Node, Provenance, Reason, Source, Theme
from livekit_fallback.config.sources.base import Failure, FetchRequest, Found, Outcome
from livekit_fallback.config.sources.snapshot import SnapshotSource

__all__ = [
    "answer_while_blocked",
    "block_loop",
    "DB_BACKUP_LLM",
    "DB_LLM",
    "DB_URL",
    "TAKEN",
    "VERTICAL",
    "FakeClock",
    "FakeDatabase",
    "FakeLocal",
    "LocatedDatabase",
    "fallback_event",
    "snapshot_values",
]

VERTICAL = "reverse_mortgage"
DB_LLM = "openai/gpt-4.1"
"""The LLM the fake database serves (the packaged snapshot's is ``openai/gpt-5``)."""
DB_BACKUP_LLM = "openai/gpt-4o-mini"
"""The LLM the fake database ranks as its backup."""
DB_URL = "https://project-a.supabase.co"
"""The project URL of the fake database (its deployment)."""


class FakeClock:
    """A clock that moves only when told (wall-clock seconds for the state, monotonic for alarms)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


def snapshot_values(platform: Platform = "livekit") -> dict[str, Theme | Node | ModelChoice]:
    """Every component of the packaged snapshot, by key text."""
    snap = SnapshotSource().snapshot(VERTICAL)
    return {str(k): snap.component(str(k), platform) for k in component_keys(snap.node_names)}


TAKEN = datetime(2025, 11, 21, tzinfo=timezone.utc)
"""When the fallback copies of :func:`fallback_event` were taken."""


def fallback_event(
    component: str = "nodes.verify", reason: Reason = Reason.UNREACHABLE, exc: BaseException | None = None
) -> FallbackEvent:
    """One component served from the packaged snapshot because of ``reason``."""
    where = "prompts, prompt_versions" if component.startswith("nodes.") else "some_table"
    failure = Failure(reason, f"{reason.value} happened", where, exc if exc is not None else RuntimeError("boom"))
    value = snapshot_values()[component]
    return FallbackEvent(
        component, VERTICAL, "livekit", failure, Found(value, TAKEN, "snap.toml"), Source.SNAPSHOT, TAKEN
    )


async def answer_while_blocked(database: FakeDatabase, *, answer_after: float = 0.05, block: float = 0.5) -> None:
    """Block this process's loop for ``block`` seconds; meanwhile the hanging ``database`` answers.

    The answer arrives (from another thread, as a socket would fill) while the
    loop cannot read it: what a busy or paused call process meets.
    """
    loop = asyncio.get_running_loop()
    threading.Timer(answer_after, lambda: loop.call_soon_threadsafe(database.release.set)).start()
    await asyncio.sleep(0.01)
    time.sleep(block)


def block_loop(block: float = 0.5) -> asyncio.Future[None]:
    """A task that blocks this process's loop for ``block`` seconds, shortly after it starts."""

    async def busy() -> None:
        await asyncio.sleep(0.01)
        time.sleep(block)

    return asyncio.ensure_future(busy())


class FakeDatabase:
    """A database source whose answers a test sets.

    Args:
        platform: The platform whose values it serves.
        url: Its project URL (the deployment its state is kept under).

    Attributes:
        mode: ``answer``, ``refuse`` (connection-level failures), ``hang``
            (never returns until ``release`` is set, then answers), ``raise``
            (the fetch itself raises) or ``block`` (blocks the whole event
            loop for ``block_for`` seconds, then never returns: a stalled process).
        broken: Component keys answered with an ``invalid_content`` failure.
        reads: Every request received.
        backups: The ranked backup models it lists per model kind (``ranked_backups``).
    """

    source = Source.DATABASE

    def __init__(self, platform: Platform = "livekit", *, url: str = DB_URL) -> None:
        values = snapshot_values(platform)
        if platform == "livekit":
            values["models.llm"] = ModelChoice(kind="llm", platform="livekit", value=DB_LLM)
        self.values = values
        self.url = url
        self.mode = "answer"
        self.block_for = 0.0
        self.broken: set[str] = set()
        self.reads: list[FetchRequest] = []
        self.release = asyncio.Event()
        self.backups: dict[ModelKind, list[str]] = {"llm": [DB_BACKUP_LLM]} if platform == "livekit" else {}

    @staticmethod
    def table(key: str) -> str:
        """The fake table a key is read from."""
        return f"fake_{key.partition('.')[0]}_table"

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Answer as ``mode`` says."""
        self.reads.append(request)
        if self.mode == "block":
            time.sleep(self.block_for)  # the process's own loop is blocked, not the database slow
            await asyncio.Event().wait()
        if self.mode == "hang":
            await self.release.wait()
        if self.mode == "raise":
            raise RuntimeError("fake database crashed")
        if self.mode == "refuse":
            return {k: Failure(Reason.UNREACHABLE, "connection refused", self.table(k)) for k in request.keys}
        now = datetime.now(timezone.utc)
        outcomes: dict[str, Outcome] = {}
        for key in request.keys:
            if key in self.broken:
                outcomes[key] = Failure(Reason.INVALID_CONTENT, f"{key} is broken", self.table(key))
            else:
                outcomes[key] = Found(self.values[key], now, self.table(key))
        return outcomes

    def ranked_backups(self, platform: Platform) -> dict[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]]:
        """The ranked backup models of the latest read, as the Supabase source lists them."""
        origin = Provenance(source=Source.DATABASE, location=self.table("models"))
        return {
            kind: tuple((ModelChoice(kind=kind, platform=platform, value=v), origin) for v in self.backups[kind])
            for kind in MODEL_KINDS
            if self.backups.get(kind)
        }


class LocatedDatabase(FakeDatabase):
    """A fake database that also names its locations without being read."""

    def location(self, key: str, platform: Platform) -> str:
        """The fake table, per platform."""
        return f"{platform}_{self.table(key)}"


class FakeLocal:
    """A local source (last-known-good or snapshot role) serving a fixed set of components.

    Args:
        source: Which source it stands for.
        values: The components it has, by key text; others are missing rows.
    """

    def __init__(self, source: Source, values: Mapping[str, Theme | Node | ModelChoice]) -> None:
        self.source = source
        self.values = dict(values)
        self.taken_at = datetime(2025, 11, 21, tzinfo=timezone.utc)
        self.reads: list[FetchRequest] = []

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Serve what it has."""
        self.reads.append(request)
        where = f"fake {self.source.value}"
        return {
            key: Found(self.values[key], self.taken_at, where)
            if key in self.values
            else Failure(Reason.MISSING_ROW, f"no {key}", where)
            for key in request.keys
        }
