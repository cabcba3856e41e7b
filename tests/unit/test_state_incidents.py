"""Incidents and outages of a deployment, per storage: one banner per machine, counted lines, one recovery line."""

from __future__ import annotations

import logging

import pytest

from livekit_fallback import metrics
from livekit_fallback.config.alarms import Alarms
from livekit_fallback.config.model import Reason
from livekit_fallback.config.model_alarms import ModelAlarms
from livekit_fallback.config.state.records import AlarmDecision, Recovery
from livekit_fallback.config.state.state import ResolutionState

from .conftest import DEPLOYMENT, POLICY, Machine
from .fakes import VERTICAL, FakeClock, fallback_event

pytestmark = pytest.mark.unit

V, P = VERTICAL, "livekit"
VERIFY_DOWN = [("nodes.verify", "unreachable")]


def _by_event(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


async def test_a_banner_once_per_machine_then_counted_lines_per_interval(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """Ten fallbacks 20 s apart in two processes: one banner, then a line per 60 s counting those since the last."""
    a, b = processes
    decisions = []
    for i in range(10):
        (decision,), _ = await (a if i % 2 else b).account(V, P, VERIFY_DOWN, [])
        decisions.append(decision)
        clock.advance(20.0)
    assert [d.action for d in decisions] == ["banner"] + ["quiet", "quiet", "repeat"] * 3
    repeats = [d for d in decisions if d.action == "repeat"]
    assert [(d.since_line, d.total, d.interval) for d in repeats] == [(3, 4, 60.0), (3, 7, 60.0), (3, 10, 60.0)]


async def test_connection_problems_are_one_incident_and_bad_data_is_another(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """Refused, then timing out, then breaker open is one outage; invalid content after it is a new banner."""
    a, _ = processes
    actions = []
    for reason in ("unreachable", "timeout", "circuit_open", "invalid_content", "unreachable"):
        (decision,), _ = await a.account(V, P, [("nodes.verify", reason)], [])
        actions.append(decision.action)
    assert actions == ["banner", "quiet", "quiet", "banner", "banner"]


async def test_recovery_is_one_line_for_the_machine(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock
) -> None:
    """The first healthy resolution after an outage reports it once, with its length and degraded count."""
    a, b = processes
    await a.account(V, P, [("theme", "unreachable")], [])
    await b.account(V, P, [("theme", "unreachable")], [])
    clock.advance(30.0)
    _, recovery = await b.account(V, P, [], ["theme"])
    assert recovery == Recovery(started_at=clock.now - 30.0, seconds=30.0, resolutions=2)
    assert (await a.account(V, P, [], ["theme"]))[1] is None
    (decision,), _ = await a.account(V, P, [("theme", "unreachable")], [])
    assert decision.action == "banner", "a new outage is bannered again"


async def test_no_recovery_while_a_component_still_falls_back(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """One component healthy again closes its incident only; the outage lasts while another still falls back."""
    a, _ = processes
    await a.account(V, P, [("theme", "unreachable"), ("nodes.verify", "invalid_content")], [])
    decisions, recovery = await a.account(V, P, [("nodes.verify", "invalid_content")], ["theme"])
    assert recovery is None and [d.action for d in decisions] == ["quiet"]
    (theme,), _ = await a.account(V, P, [("theme", "unreachable")], ["nodes.verify"])
    assert theme.action == "banner", "the theme's incident had closed"
    _, recovery = await a.account(V, P, [], ["theme", "nodes.verify"])
    assert recovery is not None and recovery.resolutions == 3


async def test_a_line_stamped_in_the_future_is_due(machine: Machine, clock: FakeClock) -> None:
    """An incident whose last line was written by a process with a fast clock gets its counted line now."""
    fast = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=FakeClock(clock.now + 3600))
    normal = ResolutionState(machine(), DEPLOYMENT, POLICY, clock=clock)
    await fast.account(V, P, VERIFY_DOWN, [])
    (due,), _ = await normal.account(V, P, VERIFY_DOWN, [])
    assert due.action == "repeat" and due.since_line == 1 and due.interval == 0.0
    (quiet,), _ = await normal.account(V, P, VERIFY_DOWN, [])
    assert quiet.action == "quiet"


async def test_model_incidents_are_kept_apart_from_the_configs(
    processes: tuple[ResolutionState, ResolutionState],
) -> None:
    """An unbuildable LLM and a database fallback of the LLM each get a banner; the outage ends without the model's."""
    a, b = processes
    model = await a.account_model(V, P, "models.llm", "unbuildable")
    (config,), _ = await b.account(V, P, [("models.llm", "unreachable")], [])
    assert isinstance(model, AlarmDecision) and model.action == "banner" and config.action == "banner"
    _, recovery = await b.account(V, P, [], ["models.llm"])
    assert recovery is not None, "a model that cannot be built is not a database outage"
    still = await b.account_model(V, P, "models.llm", "unbuildable")
    assert isinstance(still, AlarmDecision) and still.action == "quiet"
    built = await a.account_model(V, P, "models.llm", None)
    assert isinstance(built, Recovery) and built.resolutions == 2
    assert await b.account_model(V, P, "models.llm", None) is None


async def test_reports_are_written_as_the_state_decided(
    processes: tuple[ResolutionState, ResolutionState], clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Through Alarms: one banner with its trace, counted lines without one, one recovery line, per machine."""
    caplog.set_level(logging.INFO, logger="tests.incidents")
    alarms = Alarms(logging.getLogger("tests.incidents"))
    event = fallback_event()
    for i in range(7):
        state = processes[i % 2]
        decisions, recovery = await state.account(V, P, VERIFY_DOWN, [])
        alarms.report(V, P, [event], decisions, recovery)
        clock.advance(20.0)
    decisions, recovery = await processes[0].account(V, P, [], ["nodes.verify"])
    alarms.report(V, P, [], decisions, recovery)
    banners, repeats = _by_event(caplog, "config_fallback"), _by_event(caplog, "config_fallback_repeat")
    assert len(banners) == 1 and banners[0].exc_info is not None
    assert [(r.count, r.total) for r in repeats] == [(3, 4), (3, 7)] and all(r.exc_info is None for r in repeats)
    [recovered] = _by_event(caplog, "config_recovered")
    assert recovered.outage_seconds == 140.0 and recovered.degraded_resolutions == 7


async def test_an_unbuildable_model_is_bannered_once_per_machine(
    processes: tuple[ResolutionState, ResolutionState], caplog: pytest.LogCaptureFixture
) -> None:
    """Five call processes that cannot build the LLM: one MODEL UNAVAILABLE banner; the gauge stays 1 until built."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    event = fallback_event("models.llm", Reason.UNBUILDABLE)
    calls = [ModelAlarms(processes[i % 2]) for i in range(5)]
    gauge = metrics.DEGRADED.labels(V, P, "models.llm")
    for call in calls:
        call.unbuildable(event)
        await call.settled()
        metrics.set_degraded(V, P, "models.llm", False)  # the next resolution's view of the config
        assert gauge._value.get() == 1
    assert len(_by_event(caplog, "model_unavailable")) == 1
    for call in calls[:2]:
        call.buildable(V, P, "models.llm")
        await call.settled()
    assert gauge._value.get() == 0 and len(_by_event(caplog, "model_recovered")) == 1
