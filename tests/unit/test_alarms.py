"""What the alarms write: the documented banners, the lines the state decided on, and the per-process notices."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from livekit_fallback.config.alarms import Alarms, FallbackEvent, banner
from livekit_fallback.config.model import ModelChoice, Reason, Source
from livekit_fallback.config.sources.base import Failure
from livekit_fallback.config.state.records import AlarmDecision, Recovery

from .fakes import TAKEN, VERTICAL, FakeClock, fallback_event

pytestmark = pytest.mark.unit

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()


def _by_event(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


@pytest.fixture
def alarms(caplog: pytest.LogCaptureFixture) -> tuple[Alarms, FakeClock]:
    """Alarms on a fake clock, logging to a captured test logger."""
    caplog.set_level(logging.INFO, logger="tests.alarms")
    clock = FakeClock()
    return Alarms(logging.getLogger("tests.alarms"), repeat_interval=60.0, clock=clock), clock


def test_a_node_banner_has_the_documented_lines() -> None:
    """The node banner names node, vertical, tables, reason, the copy used and what to check."""
    text = banner(fallback_event())
    assert "🚨🚨🚨 DATABASE FAILURE: NODE CONFIG 'verify' 🚨🚨🚨" in text
    assert "⚠️⚠️⚠️ DATABASE CONNECTION UNREACHABLE ⚠️⚠️⚠️" in text
    assert "Tables: prompts, prompt_versions" in text and "snapshot taken 2025-11-21" in text
    assert "Check prompts table for node_name='verify', vertical='reverse_mortgage'" in text


def test_model_and_theme_events_are_parsed_from_their_keys() -> None:
    """A model key reads as kind 'model' named by its model kind; the theme is named by the vertical."""
    model = fallback_event("models.llm")
    assert (model.kind, model.name) == ("model", "llm") and "LLM MODEL" in banner(model)
    assert isinstance(model.used.value, ModelChoice) and "Model Type: LLM" in banner(model)
    theme = fallback_event("theme")
    assert (theme.kind, theme.name) == ("theme", VERTICAL) and "THEME PROMPT" in banner(theme)


def test_an_unbuildable_model_has_its_own_banner() -> None:
    """A model that cannot be built is MODEL UNAVAILABLE, not a database failure."""
    text = banner(fallback_event("models.llm", Reason.UNBUILDABLE))
    assert "MODEL UNAVAILABLE: LLM MODEL" in text and "DATABASE FAILURE" not in text


def test_each_decision_is_written_as_decided(
    alarms: tuple[Alarms, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """A banner with its trace, a counted line without one, nothing for quiet, and the recovery line."""
    sink, _ = alarms
    events = [fallback_event("theme"), fallback_event("nodes.verify"), fallback_event("nodes.greet")]
    decisions = [
        AlarmDecision("banner", 0, 1, STARTED),
        AlarmDecision("repeat", 4, 9, STARTED, 60.0),
        AlarmDecision("quiet", 2, 3, STARTED, 10.0),
    ]
    sink.report(VERTICAL, "livekit", events, decisions, Recovery(STARTED, 42.0, 7))
    [opened] = _by_event(caplog, "config_fallback")
    [repeat] = _by_event(caplog, "config_fallback_repeat")
    [recovered] = _by_event(caplog, "config_recovered")
    assert opened.component == "theme" and opened.exc_info is not None and opened.levelno == logging.ERROR
    assert (repeat.component, repeat.count, repeat.total, repeat.exc_info) == ("nodes.verify", 4, 9, None)
    assert "4 more time(s) in the last 60 s (9 since 2026-01-02 03:04 UTC)" in repeat.getMessage()
    assert recovered.levelno == logging.WARNING and recovered.outage_seconds == 42.0
    assert recovered.degraded_resolutions == 7 and "DATABASE RECOVERED" in recovered.getMessage()


def test_one_request_failing_many_components_logs_its_trace_once(
    alarms: tuple[Alarms, FakeClock], caplog: pytest.LogCaptureFixture
) -> None:
    """Components failed by the same exception each get a banner; the trace is on the first only."""
    sink, _ = alarms
    shared = RuntimeError("one request")
    events = []
    for name in ("nodes.greet", "nodes.verify"):
        event = fallback_event(name)
        failure = Failure(event.failure.reason, event.failure.detail, event.failure.location, shared)
        events.append(FallbackEvent(name, VERTICAL, "livekit", failure, event.used, Source.SNAPSHOT, TAKEN))
    sink.report(VERTICAL, "livekit", events, [AlarmDecision("banner"), AlarmDecision("banner")], None)
    banners = _by_event(caplog, "config_fallback")
    assert [r.exc_info is not None for r in banners] == [True, False]


def test_decisions_must_match_the_events(alarms: tuple[Alarms, FakeClock]) -> None:
    """A decision missing for an event is a bug in the caller, not something to log around."""
    sink, _ = alarms
    with pytest.raises(ValueError):
        sink.report(VERTICAL, "livekit", [fallback_event()], [], None)


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
