"""The rule that says when a failed read is the database's fault."""

from __future__ import annotations

import pytest

from livekit_fallback.config.settings import Settings
from livekit_fallback.config.state.policy import Policy, Verdict, excused, past_stale_window
from livekit_fallback.config.state.records import StoredConfig

RULES = Policy(blame_after=1.0)


@pytest.mark.parametrize(
    ("verdict", "allowed", "blamed"),
    [
        (Verdict(False, "timed out", timed_out=True), 1.0, True),
        (Verdict(False, "timed out", timed_out=True), 0.95, True),
        (Verdict(False, "timed out", timed_out=True), 0.05, False),
        (Verdict(False, "refused"), 0.05, True),
        (Verdict(True), 0.05, True),
    ],
)
def test_only_a_timeout_given_less_than_the_deadline_is_excused(verdict: Verdict, allowed: float, blamed: bool) -> None:
    """A short read's timeout is excused; a refusal, an answer, or a timeout with the full deadline are not."""
    assert (excused(verdict, allowed=allowed, policy=RULES) is None) is blamed


def test_a_callers_shorter_deadline_keeps_the_deployments_own() -> None:
    """``--deadline 0.05`` keeps the environment's deadline as the one a timeout is judged by, and a fitting budget."""
    settings = Settings.from_env({"LIVEKIT_FALLBACK_DEADLINE": "2.0"}, deadline=0.05)
    assert settings.deadline == 0.05 and settings.configured_deadline == 2.0
    assert settings.pickup_budget == 0.05
    assert Settings.from_env({}).configured_deadline is None


@pytest.mark.parametrize(
    ("age", "degraded", "reported"),
    [(10.0, False, False), (70.0, False, True), (-3600.0, False, True), (70.0, True, False)],
)
def test_a_healthy_copy_past_the_stale_window_is_reported_with_its_age(
    age: float, degraded: bool, reported: bool
) -> None:
    """A healthy copy past TTL + stale window (or from the future) is reported; a degraded one has its banners."""
    entry = StoredConfig("{}", 1_000.0, degraded)
    found = past_stale_window(entry, now=1_000.0 + age, policy=Policy(ttl=5.0, stale_for=60.0))
    assert (found is not None) is reported and (found is None or found == age)
