"""Alarm dedup on a fake clock: full banner once, counted lines after, one recovery line."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from livekit_fallback.config.alarms import Alarms, AlarmSink, FallbackEvent, banner
from livekit_fallback.config.model import ModelChoice, Reason, Source
from livekit_fallback.config.sources.base import Failure, Found

from .fakes import VERTICAL, FakeClock, snapshot_values

pytestmark = pytest.mark.unit

TAKEN = datetime(2025, 11, 21, tzinfo=timezone.utc)


def _event(component: str = "nodes.verify", reason: Reason = Reason.UNREACHABLE) -> FallbackEvent:
    value = snapshot_values()[component]
    where = "prompts, prompt_versions" if component.startswith("nodes.") else "some_table"
    failure = Failure(reason, f"{reason.value} happened", where, RuntimeError("boom"))
    return FallbackEvent(
        component, VERTICAL, "livekit", failure, Found(value, TAKEN, "snap.toml"), Source.SNAPSHOT, TAKEN
    )


def _by_event(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


@pytest.fixture
def alarms(caplog: pytest.LogCaptureFixture) -> tuple[Alarms, FakeClock]:
    """Alarms on a fake clock, logging to a captured test logger."""
    caplog.set_level(logging.INFO, logger="tests.alarms")
    clock = FakeClock()
    return Alarms(logging.getLogger("tests.alarms"), repeat_interval=60.0, clock=clock), clock


def test_the_in_process_alarms_fit_the_protocol() -> None:
    """Alarms is an AlarmSink, so the resolver can take either."""
    sink: AlarmSink = Alarms()
    assert sink is not None


def test_a_node_banner_has_the_documented_lines() -> None:
    """The node banner names node, vertical, tables, reason, the copy used and what to check."""
    text = banner(_event())
    assert "🚨🚨🚨 DATABASE FAILURE: NODE CONFIG 'verify' 🚨🚨🚨" in text
    assert "⚠️⚠️⚠️ DATABASE CONNECTION UNREACHABLE ⚠️⚠️⚠️" in text
    assert "Tables: prompts, prompt_versions" in text and "snapshot taken 2025-11-21" in text
    assert "Check prompts table for node_name='verify', vertical='reverse_mortgage'" in text


def test_model_and_theme_events_are_parsed_from_their_keys() -> None:
    """A model key reads as kind 'model' named by its model kind; the theme is named by the vertical."""
    model = _event("models.llm")
    assert (model.kind, model.name) == ("model", "llm") and "LLM MODEL" in banner(model)
    assert isinstance(model.used.value, ModelChoice) and "Model Type: LLM" in banner(model)
    theme = _event("theme")
    assert (theme.kind, theme.name) == ("theme", VERTICAL) and "THEME PROMPT" in banner(theme)


def test_full_banner_once_then_counted_lines_per_interval(
    alarms: tuple[Alarms, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """An ongoing fallback logs one banner with its trace, then one counted line per interval."""
    sink, clock = alarms
    for _ in range(10):
        sink.resolution(VERTICAL, "livekit", [_event()], healthy=[])
        clock.advance(20.0)
    banners, repeats = _by_event(caplog, "config_fallback"), _by_event(caplog, "config_fallback_repeat")
    assert len(banners) == 1 and banners[0].exc_info is not None
    assert [r.count for r in repeats] == [3, 3, 3] and repeats[-1].total == 10
    assert all(r.exc_info is None and r.levelno == logging.ERROR for r in repeats)


def test_one_request_failing_many_components_logs_its_trace_once(
    alarms: tuple[Alarms, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """Components failed by the same exception each get a banner; the trace is on the first only."""
    sink, _ = alarms
    shared = RuntimeError("one request")
    events = []
    for name in ("nodes.greet", "nodes.verify"):
        event = _event(name)
        failure = Failure(event.failure.reason, event.failure.detail, event.failure.location, shared)
        events.append(FallbackEvent(name, VERTICAL, "livekit", failure, event.used, Source.SNAPSHOT, TAKEN))
    sink.resolution(VERTICAL, "livekit", events, healthy=[])
    banners = _by_event(caplog, "config_fallback")
    assert [r.exc_info is not None for r in banners] == [True, False]


def test_a_different_kind_of_problem_gets_its_own_banner(
    alarms: tuple[Alarms, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """Connection-level reasons count as one outage; bad data after it is a new banner."""
    sink, _ = alarms
    for reason in (Reason.UNREACHABLE, Reason.TIMEOUT, Reason.CIRCUIT_OPEN, Reason.INVALID_CONTENT):
        sink.resolution(VERTICAL, "livekit", [_event(reason=reason)], healthy=[])
    assert [r.reason_class for r in _by_event(caplog, "config_fallback")] == ["unreachable", "invalid_content"]


def test_recovery_is_one_line_with_the_outage_length(
    alarms: tuple[Alarms, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """When every component is healthy again, one warning says so with duration and degraded count."""
    sink, clock = alarms
    for _ in range(4):
        sink.resolution(VERTICAL, "livekit", [_event()], healthy=[])
        clock.advance(10.0)
    sink.resolution(VERTICAL, "livekit", [], healthy=["nodes.verify"])
    sink.resolution(VERTICAL, "livekit", [], healthy=["nodes.verify"])
    [recovered] = _by_event(caplog, "config_recovered")
    assert recovered.levelno == logging.WARNING and recovered.outage_seconds == 40.0
    assert recovered.degraded_resolutions == 4 and "DATABASE RECOVERED" in recovered.getMessage()
    sink.resolution(VERTICAL, "livekit", [_event()], healthy=[])
    assert len(_by_event(caplog, "config_fallback")) == 2  # a new outage is bannered again


def test_snapshot_mode_and_cache_problems_are_said_once(
    alarms: tuple[Alarms, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """Snapshot mode warns once per vertical and platform; a cache problem once per interval."""
    sink, clock = alarms
    for _ in range(3):
        sink.snapshot_mode(VERTICAL, "livekit", "snapshot taken 2025-11-21")
        sink.cache_problem("/cache/x.json", "corrupt")
    clock.advance(60.0)
    sink.cache_problem("/cache/x.json", "corrupt")
    assert len(_by_event(caplog, "snapshot_mode")) == 1 and len(_by_event(caplog, "cache_problem")) == 2
