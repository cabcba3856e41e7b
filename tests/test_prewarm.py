"""The job-process prewarm and the example agent's call state, against the real test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from livekit.agents.job import JobExecutorType, JobProcess
from livekit.agents.testing import fake_job_context

from livekit_fallback.call import prewarm
from livekit_fallback.config.resolver import resolve_agent_config
from livekit_fallback.metrics import REGISTRY
from livekit_fallback.prewarm import PREWARM_KEY, PrewarmReport
from tests.conftest import SeededDatabase
from tests.helpers_livekit import EXAMPLES, VERTICAL, job_in_room, load_example

pytestmark = pytest.mark.integration

HITS = {"platform": "livekit", "outcome": "healthy", "cache": "hit"}


@pytest.fixture
def db_env(seeded: SeededDatabase, clean_env: None, monkeypatch: pytest.MonkeyPatch) -> SeededDatabase:
    """The environment of a worker configured for the seeded database (machine-wide store on)."""
    monkeypatch.setenv("SUPABASE_URL", seeded.url)
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", seeded.key)
    monkeypatch.setenv("LIVEKIT_FALLBACK_PREWARM_VERTICALS", VERTICAL)
    return seeded


def test_prewarm_makes_the_calls_resolution_a_hit_in_this_and_other_processes(db_env: SeededDatabase) -> None:
    """After prewarm(proc), resolve_agent_config here and in another process reads nothing from the database."""
    proc = JobProcess(executor_type=JobExecutorType.PROCESS, user_arguments=None, http_proxy=None)
    report = prewarm(proc)
    assert proc.userdata[PREWARM_KEY] is report
    assert report.resolved == {VERTICAL: True} and report.failed == {}
    db_env.standin.clear_requests()
    hits = REGISTRY.get_sample_value("livekit_fallback_resolutions_total", HITS) or 0.0

    import asyncio

    config = asyncio.run(resolve_agent_config(VERTICAL, "livekit"))
    assert not config.is_degraded, {k: p.detail for k, p in config.degraded.items()}
    assert REGISTRY.get_sample_value("livekit_fallback_resolutions_total", HITS) == hits + 1
    code = textwrap.dedent(
        """
        import asyncio, json
        from livekit_fallback.config.resolver import resolve_agent_config
        from livekit_fallback.metrics import REGISTRY
        config = asyncio.run(resolve_agent_config("reverse_mortgage", "livekit"))
        labels = {"platform": "livekit", "outcome": "healthy", "cache": "hit"}
        print(json.dumps([config.is_degraded, REGISTRY.get_sample_value("livekit_fallback_resolutions_total", labels)]))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, 1.0]
    assert db_env.standin.requests == []  # neither call's resolution asked the database


async def test_prewarm_from_a_thread_running_an_event_loop_still_resolves(db_env: SeededDatabase) -> None:
    """Called where a loop is running, prewarm resolves on a thread of its own and returns its report."""
    report = prewarm(None, verticals=[VERTICAL, "no_such_vertical"])
    assert isinstance(report, PrewarmReport)
    assert report.resolved == {VERTICAL: True}
    assert "no_such_vertical" in report.failed and report.seconds > 0


def test_prewarm_without_a_database_resolves_every_snapshot_vertical(clean_env: None) -> None:
    """In snapshot mode the default verticals are the snapshot files found; they resolve (degraded by design)."""
    report = prewarm()
    assert report.resolved == {VERTICAL: False} and report.failed == {}


async def test_example_call_state_uses_the_demo_lead_only_in_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/agent.py: a real job without a lead in its metadata has no lead; a console job gets the demo."""
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the example imports its tools module as a sibling
    agent: Any = load_example("agent")
    tools = load_example("reverse_mortgage_tools")
    async with job_in_room() as (ctx, _shutdown):
        assert agent._call_state(ctx) == {}
        ctx.job.metadata = json.dumps({"lead": {"name": "Ada"}})
        assert agent._call_state(ctx) == {"lead": {"name": "Ada"}}
    with fake_job_context() as console:
        try:
            assert agent._call_state(console) == tools.demo_state()
        finally:
            await console._on_cleanup()  # as the worker does when a job ends
