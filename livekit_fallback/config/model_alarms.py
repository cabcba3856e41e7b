"""``MODEL UNAVAILABLE`` through the deployment's state: one banner per model per incident per machine.

LiveKit builds a call's models in the call's own process, and every call
builds them again. A model that cannot be built (its plugin missing, its key
unset) would otherwise log a full banner and a traceback in every call
process. Here each report goes through the same machine-wide incident rule
as the database's fallbacks (:func:`~livekit_fallback.config.state.policy.account_model`):
the first call of an incident logs the banner with its trace, later calls
a counted line per interval, and the first call that can build the model
again logs one recovery line. The degraded gauge of such a model stays 1
until it can be built.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import Any

from .. import metrics
from ..log import logger
from .alarms import Alarms, FallbackEvent
from .state.records import AlarmDecision, Recovery
from .state.state import ResolutionState

__all__ = ["ModelAlarms"]


class ModelAlarms:
    """Reports models that cannot be built, machine-wide.

    Args:
        state: The deployment's state, or a callable giving it when first
            needed (the default resolver's by default).
        alarms: Writes the banner and lines.
    """

    def __init__(
        self,
        state: ResolutionState | Callable[[], ResolutionState] | None = None,
        *,
        alarms: Alarms | None = None,
    ) -> None:
        self._state = state
        self.alarms = alarms or Alarms()
        self._pending: set[asyncio.Task[None]] = set()

    def unbuildable(self, event: FallbackEvent) -> None:
        """A model cannot be built in this process; ``event`` says which and what is used instead."""
        metrics.mark_unbuildable(event.vertical, event.platform, event.component, True)
        self._submit(event.vertical, event.platform, event.component, event)

    def buildable(self, vertical: str, platform: str, component: str) -> None:
        """A model was built: close its incident, if one was open."""
        metrics.mark_unbuildable(vertical, platform, component, False)
        self._submit(vertical, platform, component, None)

    def runtime_failed(self, vertical: str, platform: str, kind: str, model: str, to: str) -> None:
        """A model failed mid-call and the adapter moved to ``to``."""
        extra = {"event": "model_runtime_fallback", "model_kind": kind, "model": model, "next_model": to}

        def first(_: AlarmDecision) -> None:
            logger.error(
                "%s model '%s' failed mid-call; FallbackAdapter moves to '%s'", kind.upper(), model, to, extra=extra
            )

        def repeat(decision: AlarmDecision) -> None:
            logger.error(
                "%s model '%s' keeps failing mid-call: %d more switch(es) in the last %.0f s (%d in all); "
                "calls move to '%s'",
                kind.upper(),
                model,
                decision.since_line,
                decision.interval,
                decision.total,
                to,
                extra={**extra, "event": "model_runtime_fallback_repeat", "count": decision.since_line},
            )

        self._spawn(self._runtime(vertical, platform, f"runtime.{kind}.{model}", "runtime_failure", first, repeat))

    def runtime_recovered(self, vertical: str, platform: str, kind: str, model: str) -> None:
        """A model that failed mid-call answers again (one line per machine per incident)."""

        def recovered(recovery: Recovery) -> None:
            logger.warning(
                "%s model '%s' is available again after %.1f s (%d mid-call switch(es) away from it)",
                kind.upper(),
                model,
                recovery.seconds,
                recovery.resolutions,
                extra={"event": "model_runtime_recovered", "model_kind": kind, "model": model},
            )

        self._spawn(self._runtime(vertical, platform, f"runtime.{kind}.{model}", None, recovered=recovered))

    async def _runtime(
        self,
        vertical: str,
        platform: str,
        component: str,
        reason: str | None,
        first: Callable[[AlarmDecision], None] | None = None,
        repeat: Callable[[AlarmDecision], None] | None = None,
        recovered: Callable[[Recovery], None] | None = None,
    ) -> None:
        try:
            decision = await self._resolve_state().account_model(vertical, platform, component, reason)
        except Exception:
            logger.exception("model alarm accounting failed")
            decision = AlarmDecision("banner") if reason is not None else None
        if isinstance(decision, AlarmDecision) and decision.action == "banner" and first is not None:
            first(decision)
        elif isinstance(decision, AlarmDecision) and decision.action == "repeat" and repeat is not None:
            repeat(decision)
        elif isinstance(decision, Recovery) and recovered is not None:
            recovered(decision)

    async def settled(self) -> None:
        """Wait until every report so far has been written (for tests and orderly shutdowns)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _submit(self, vertical: str, platform: str, component: str, event: FallbackEvent | None) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if event is not None:  # no event loop, no shared state to ask: say it here
                self.alarms.log_banner(event, set())
            return
        self._spawn(self._report(vertical, platform, component, event))

    def _spawn(self, report: Coroutine[Any, Any, None]) -> None:
        """Write a report in the background of the call (no event loop: the report is dropped)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            report.close()
            return
        task = asyncio.ensure_future(report)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _report(self, vertical: str, platform: str, component: str, event: FallbackEvent | None) -> None:
        reason = event.failure.reason.value if event is not None else None
        try:
            decision = await self._resolve_state().account_model(vertical, platform, component, reason)
        except Exception:
            logger.exception("model alarm accounting failed")
            decision = AlarmDecision("banner") if event is not None else None
        if event is not None and isinstance(decision, AlarmDecision):
            if decision.action == "banner":
                self.alarms.log_banner(event, set())
            elif decision.action == "repeat":
                started = datetime.fromtimestamp(decision.started_at, timezone.utc)
                self.alarms.log_repeat(event, decision.since_line, decision.interval, decision.total, started)
        elif isinstance(decision, Recovery):
            logger.log(
                logging.WARNING,
                "MODEL AVAILABLE AGAIN: %s for %s/%s can be built again after %.1f s (%d call(s) used a fallback)",
                component,
                vertical,
                platform,
                decision.seconds,
                decision.resolutions,
                extra={"event": "model_recovered", "component": component, "vertical": vertical, "platform": platform},
            )

    def _resolve_state(self) -> ResolutionState:
        if self._state is None:
            from .resolver import default_resolver  # the state start_call uses: same deployment, same storage

            return default_resolver().state
        if isinstance(self._state, ResolutionState):
            return self._state
        return self._state()
