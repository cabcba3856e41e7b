"""Resolve an agent's configuration: ordered sources, a deadline, per-component fallback.

Each component (the theme, every node, each model) is taken whole from the
first source that yields a valid value: the database, then (later) a
last-known-good copy, then the snapshot. A component that fails falls back
alone; the result records per component where it came from and why.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from datetime import datetime, timezone

from .alarms import Alarms, FallbackEvent
from .model import AgentConfig, Models, Platform, Provenance, Reason, Source, component_keys
from .settings import Settings
from .sources.base import ConfigSource, FetchRequest, Failure, Found, Outcome, format_exception
from .sources.snapshot import SnapshotSource
from .sources.supabase import SupabaseSource

__all__ = ["ConfigUnavailableError", "Resolver", "default_resolver", "resolve_agent_config"]

PLATFORMS: tuple[Platform, ...] = ("livekit", "signalwire")

_LOCAL_RESERVE = 0.05
"""Fraction of the deadline kept for local sources after the database."""


class ConfigUnavailableError(RuntimeError):
    """No source could supply some component (no database and no usable snapshot).

    Attributes:
        failures: Component key to the failures seen, in source order.
    """

    def __init__(self, vertical: str, platform: str, failures: dict[str, list[Failure]]) -> None:
        self.failures = failures
        parts = [f"{key}: " + " / ".join(f.detail for f in fs) for key, fs in failures.items()]
        super().__init__(
            f"no usable configuration for {vertical}/{platform}; "
            f"{len(failures)} component(s) unavailable from every source: " + "; ".join(parts[:5])
        )


class Resolver:
    """Resolves agent configs; create one per process and reuse it.

    Args:
        database: The database source, or ``None`` for snapshot mode.
        snapshots: The snapshot source (the floor every component can fall back to).
        fallbacks: Extra sources tried between the database and the snapshot.
        deadline: Seconds a resolution may take in total.
        alarms: Where fallbacks are reported.
    """

    def __init__(
        self,
        *,
        database: ConfigSource | None = None,
        snapshots: SnapshotSource | None = None,
        fallbacks: Sequence[ConfigSource] = (),
        deadline: float = 1.0,
        alarms: Alarms | None = None,
    ) -> None:
        self.database = database
        self.snapshots = snapshots or SnapshotSource()
        self.fallbacks = tuple(fallbacks)
        self.deadline = deadline
        self.alarms = alarms or Alarms()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Resolver:
        """Build a resolver from :class:`Settings` (the environment by default)."""
        settings = settings or Settings.from_env()
        database = None
        if settings.database_configured:
            assert settings.supabase_url and settings.supabase_key
            database = SupabaseSource(settings.supabase_url, settings.supabase_key, timeout=max(settings.deadline, 1.0))
        dirs = [settings.snapshot_dir] if settings.snapshot_dir else []
        return cls(database=database, snapshots=SnapshotSource(dirs), deadline=settings.deadline)

    @property
    def sources(self) -> tuple[ConfigSource, ...]:
        """Sources in the order they are tried."""
        first = (self.database,) if self.database is not None else ()
        return (*first, *self.fallbacks, self.snapshots)

    async def aclose(self) -> None:
        """Release connections held by the sources."""
        for source in self.sources:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def resolve(self, vertical: str, platform: Platform = "livekit") -> AgentConfig:
        """Resolve a complete, valid config within the deadline.

        Never raises for a database problem: failed components come from the
        next source and are logged as fallbacks.

        Raises:
            ValueError: ``platform`` is not ``livekit`` or ``signalwire``.
            ConfigUnavailableError: Some component is in no source at all (for
                example no database and no snapshot for the vertical).
        """
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, got {platform!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.deadline
        node_names = self.snapshots.node_names(vertical)
        pending = component_keys(node_names)
        found: dict[str, tuple[Found, Source]] = {}
        failures: dict[str, list[Failure]] = {}
        if self.database is None:
            not_configured = Failure(Reason.NOT_CONFIGURED, "no database configured (snapshot mode)", "database")
            failures = {key: [not_configured] for key in pending}
        for source in self.sources:
            if not pending:
                break
            is_local = source is not self.database
            budget_end = deadline if is_local else deadline - _LOCAL_RESERVE * self.deadline
            request = FetchRequest(vertical, platform, tuple(pending), node_names, budget_end)
            outcomes = await self._fetch(source, request, is_local)
            for key in pending:
                outcome = outcomes.get(key) or Failure(Reason.BAD_RESPONSE, "source returned no outcome", "?")
                if isinstance(outcome, Found):
                    found[key] = (outcome, source.source)
                else:
                    failures.setdefault(key, []).append(outcome)
            pending = [key for key in pending if key not in found]
        if pending:
            raise ConfigUnavailableError(vertical, platform, {k: failures.get(k, []) for k in pending})
        config = self._assemble(vertical, platform, node_names, found, failures)
        self._report(config, found, failures)
        return config

    async def _fetch(self, source: ConfigSource, request: FetchRequest, is_local: bool) -> dict[str, Outcome]:
        loop = asyncio.get_running_loop()
        timeout = None if is_local else max(0.0, request.deadline - loop.time()) + 0.02
        try:
            return await asyncio.wait_for(source.fetch(request), timeout)
        except asyncio.TimeoutError:
            failure = Failure(Reason.TIMEOUT, f"{source.source.value} source did not return within the deadline", "?")
        except Exception as exc:  # a source must never take the caller down
            failure = Failure(Reason.BAD_RESPONSE, format_exception(exc), source.source.value, exc)
        return {key: failure for key in request.keys}

    def _assemble(
        self,
        vertical: str,
        platform: Platform,
        node_names: Sequence[str],
        found: dict[str, tuple[Found, Source]],
        failures: dict[str, list[Failure]],
    ) -> AgentConfig:
        now = datetime.now(timezone.utc)
        provenance: dict[str, Provenance] = {}
        for key, (outcome, source) in found.items():
            first = failures.get(key, [None])[0] if source is not Source.DATABASE else None
            provenance[key] = Provenance(
                source=source,
                reason=first.reason if first else None,
                detail=first.detail if first else None,
                taken_at=outcome.taken_at,
                location=outcome.location,
            )
        value = lambda key: found[key][0].value  # noqa: E731
        return AgentConfig(
            vertical=vertical,
            platform=platform,
            theme=value("theme"),
            nodes={name: value(f"nodes.{name}") for name in node_names},
            models=Models(stt=value("models.stt"), llm=value("models.llm"), tts=value("models.tts")),
            provenance=provenance,
            resolved_at=now,
        )

    def _report(
        self, config: AgentConfig, found: dict[str, tuple[Found, Source]], failures: dict[str, list[Failure]]
    ) -> None:
        if self.database is None:
            snap = next((o for o, s in found.values() if s is Source.SNAPSHOT), None)
            date = snap.taken_at.date().isoformat() if snap and snap.taken_at else "unknown date"
            self.alarms.snapshot_mode(config.vertical, config.platform, f"snapshot taken {date}")
            return
        for key, (outcome, source) in found.items():
            if source is Source.DATABASE:
                continue
            self.alarms.fallback(
                FallbackEvent(
                    component=key,
                    vertical=config.vertical,
                    platform=config.platform,
                    failure=failures[key][0],
                    used=outcome,
                    used_source=source,
                    now=config.resolved_at,
                )
            )


_default_resolvers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Resolver] = weakref.WeakKeyDictionary()


def default_resolver() -> Resolver:
    """The process's shared resolver for the running event loop, built from the environment.

    HTTP connection pools belong to one event loop, so each loop gets its own.
    """
    loop = asyncio.get_running_loop()
    resolver = _default_resolvers.get(loop)
    if resolver is None:
        resolver = Resolver.from_settings()
        _default_resolvers[loop] = resolver
    return resolver


async def resolve_agent_config(
    vertical: str, platform: Platform = "livekit", *, resolver: Resolver | None = None
) -> AgentConfig:
    """Resolve an agent's configuration with per-component fallback.

    The one call an agent needs at call pickup. Uses the shared
    :func:`default_resolver` (configured from ``SUPABASE_URL`` /
    ``SUPABASE_SERVICE_KEY``) unless a resolver is given.

    Args:
        vertical: The business vertical, e.g. ``reverse_mortgage``.
        platform: ``livekit`` or ``signalwire``.
        resolver: A specific resolver to use.
    """
    return await (resolver or default_resolver()).resolve(vertical, platform)

