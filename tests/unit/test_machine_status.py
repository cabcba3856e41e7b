"""The machine's view read from the state, per deployment: its JSON, the status page's HTML and ``status --machine``."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from livekit_fallback.cli import ExitCode, main
from livekit_fallback.cli.status_machine import machine_table
from livekit_fallback.config.machine_status import DeploymentStatus, MachineStatus, export_ages, read_machine_status
from livekit_fallback.config.model import AgentConfig, Provenance, Reason, Source
from livekit_fallback.config.pipeline import Resolution
from livekit_fallback.config.resolver import Resolver
from livekit_fallback.config.state.codec import encode_resolution
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.policy import Policy, Verdict
from livekit_fallback.config.state.sqlite import SqliteStorage
from livekit_fallback.config.state.state import ResolutionState
from livekit_fallback.metrics import LAST_KNOWN_GOOD_AGE, SNAPSHOT_AGE
from livekit_fallback.status_page import format_seconds, render_graph_html, render_status_page

pytestmark = pytest.mark.unit

VERTICAL = "reverse_mortgage"
DEPLOYMENT = "https://project-a.supabase.co"
NOW = 1_800_000_000.0
DETAIL = "httpx.ConnectError: db.internal.example:5432 <script>alert(1)</script>"
LAST_ERROR = "httpx.ConnectError: All connection attempts failed (db.internal.example)"


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def outage_config(now: float) -> AgentConfig:
    """The snapshot config with greet and the LLM served from the last-known-good copy after a connection error."""
    config = await _snapshot_config()
    taken = datetime.fromtimestamp(now - 3600, tz=timezone.utc)
    provenance = dict(config.provenance)
    for key in provenance:
        provenance[key] = Provenance(source=Source.DATABASE, taken_at=datetime.fromtimestamp(now - 2, tz=timezone.utc))
    for key in ("nodes.greet", "models.llm"):
        provenance[key] = Provenance(
            source=Source.LAST_KNOWN_GOOD, reason=Reason.UNREACHABLE, detail=DETAIL, taken_at=taken
        )
    return config.model_copy(update={"provenance": provenance})


async def _snapshot_config() -> AgentConfig:
    async with Resolver(state=MemoryStorage()) as resolver:
        return await resolver.resolve(VERTICAL, "livekit")


async def record_outage(directory: Path, clock: Clock, *, ended: bool, deployment: str = DEPLOYMENT) -> None:
    """What the resolving processes of a machine leave in its state during (and after) an outage."""
    storage = SqliteStorage(directory, op_timeout=2.0)
    state = ResolutionState(storage, deployment, Policy(cool_down=5.0), clock=clock)
    try:
        config = await outage_config(clock.now)
        payload = encode_resolution(Resolution(config, (), False, ()))
        for _ in range(3):
            plan = await state.plan(VERTICAL, "livekit", holder=state.new_holder(), fresh=True)
            await state.finish(
                VERTICAL,
                "livekit",
                holder=plan.holder,
                payload=payload,
                degraded=True,
                verdict=Verdict(False, LAST_ERROR),
                probe=plan.probe,
            )
            await state.account(
                VERTICAL, "livekit", [("nodes.greet", "unreachable"), ("models.llm", "unreachable")], []
            )
            clock.now += 10
        read_at = datetime.fromtimestamp(clock.now - 7230, tz=timezone.utc).isoformat()
        await state.store_last_known_good(VERTICAL, "livekit", {"theme": ('"x"', read_at)})
        if ended:
            clock.now += 30
            await state.finish(
                VERTICAL, "livekit", holder="", payload=None, degraded=False, verdict=Verdict(True), probe=False
            )
            _, recovery = await state.account(VERTICAL, "livekit", [], ["nodes.greet", "models.llm"])
            assert recovery is not None
    finally:
        storage.close()


def _only(status: MachineStatus) -> DeploymentStatus:
    (deployment,) = status.deployments
    assert deployment.deployment == DEPLOYMENT
    return deployment


def test_the_view_during_an_outage(tmp_path: Path) -> None:
    """During an outage the view has the degraded components, the open breaker with its probe time and the incidents."""
    clock = Clock()
    asyncio.run(record_outage(tmp_path, clock, ended=False))
    machine = asyncio.run(read_machine_status(tmp_path, cool_down=5.0, clock=clock))
    assert machine.problem is None and not machine.healthy
    status = _only(machine)
    assert status.breaker.state == "open" and status.breaker.failures == 3
    assert status.probe_at == status.breaker.opened_at + 5.0  # type: ignore[operator]
    (config,) = status.configs
    assert (config.vertical, config.platform, config.degraded) == (VERTICAL, "livekit", True)
    greet = next(c for c in config.components if c.key == "nodes.greet")
    assert (greet.source, greet.reason, greet.detail) == ("last_known_good", "unreachable", DETAIL)
    assert greet.age_seconds == pytest.approx(3600 + 30)
    assert [(i.component, i.fallbacks, i.seconds) for i in status.incidents] == [
        ("nodes.greet", 3, 30.0),
        ("models.llm", 3, 30.0),
    ]
    assert [(o.resolutions, o.ended_at) for o in status.outages] == [(3, None)] and status.history == ()
    assert status.last_known_good_ages == {f"{VERTICAL}/livekit": pytest.approx(7200 + 30)}
    assert machine.snapshot_ages[VERTICAL] > 0


def test_an_ended_outage_is_history_with_its_duration(tmp_path: Path) -> None:
    """When the outage ends the store keeps it: the view lists it as ended, with duration and resolution count."""
    clock = Clock()
    asyncio.run(record_outage(tmp_path, clock, ended=True))
    machine = asyncio.run(read_machine_status(tmp_path, clock=clock))
    status = _only(machine)
    assert status.incidents == () and status.outages == () and status.breaker.state == "closed"
    (ended,) = status.history
    assert (ended.vertical, ended.seconds, ended.resolutions) == (VERTICAL, 60.0, 3)
    assert machine.to_json()["deployments"][0]["history"][0]["seconds"] == 60.0


def test_public_json_and_page_leave_out_error_details(tmp_path: Path) -> None:
    """The public JSON and page carry no breaker error or component detail; the private ones do, HTML-escaped."""
    clock = Clock()
    asyncio.run(record_outage(tmp_path, clock, ended=False))
    status = asyncio.run(read_machine_status(tmp_path, clock=clock))
    public = json.dumps(status.to_json(public=True))
    assert "db.internal.example" not in public and "last_error" not in public and '"detail"' not in public
    assert json.loads(json.dumps(status.to_json()))["deployments"][0]["breaker"]["last_error"] == LAST_ERROR
    page = render_status_page(status, public=True)
    assert "db.internal.example" not in page and "<script>" not in page and str(tmp_path) not in page
    assert "DEGRADED" in page and "nodes.greet" in page and "Open outages" in page
    private = render_status_page(status, public=False)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in private and "<script>" not in private
    assert LAST_ERROR in private


def test_the_page_is_plain_html_for_a_phone(tmp_path: Path) -> None:
    """The page has a viewport, reloads itself with a meta refresh and carries no script at all."""
    clock = Clock()
    asyncio.run(record_outage(tmp_path, clock, ended=False))
    page = render_status_page(asyncio.run(read_machine_status(tmp_path, clock=clock)), public=True)
    assert '<meta name="viewport"' in page and 'http-equiv="refresh"' in page
    assert "<script" not in page.lower() and "javascript:" not in page.lower()


def test_the_graph_is_mermaid_text_without_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `dot` on PATH the node graph is the Mermaid text, degraded nodes marked."""
    clock = Clock()
    asyncio.run(record_outage(tmp_path, clock, ended=False))
    (config,) = _only(asyncio.run(read_machine_status(tmp_path, clock=clock))).configs
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    html = render_graph_html(config)
    assert "flowchart TD" in html and "class n_greet fallback" in html and "<svg" not in html


def test_age_gauges_follow_the_view(tmp_path: Path) -> None:
    """Reading the view sets the snapshot and last-known-good age gauges."""
    clock = Clock()
    asyncio.run(record_outage(tmp_path, clock, ended=False))
    export_ages(asyncio.run(read_machine_status(tmp_path, clock=clock)))
    assert LAST_KNOWN_GOOD_AGE.labels(VERTICAL, "livekit")._value.get() == pytest.approx(7230)
    assert SNAPSHOT_AGE.labels(VERTICAL)._value.get() > 0


def test_an_unreadable_store_is_a_problem_not_an_error(tmp_path: Path) -> None:
    """A store path that is a directory gives a view with a problem, shown without the path on the public page."""
    (tmp_path / "state.sqlite3").mkdir()
    status = asyncio.run(read_machine_status(tmp_path))
    assert status.problem and not status.healthy and status.to_json(public=True)["problem"] == "store unavailable"
    page = render_status_page(status, public=True)
    assert "UNAVAILABLE" in page and str(tmp_path) not in page


def test_format_seconds() -> None:
    """Durations read as seconds, minutes, hours or days."""
    assert [format_seconds(s) for s in (None, 4.4, 65, 7260, 3 * 86400 + 3600)] == [
        "-",
        "4 s",
        "1 min 5 s",
        "2 h 1 min",
        "3 d 1 h",
    ]


def test_status_machine_table_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status --machine` prints the table (exit 3 while degraded), `--json` the same facts as JSON."""
    clock = Clock()
    clock.now = datetime.now().timestamp()
    asyncio.run(record_outage(tmp_path, clock, ended=False))
    monkeypatch.setenv("LIVEKIT_FALLBACK_CACHE_DIR", str(tmp_path))
    assert main(["status", "--machine"]) == ExitCode.DEGRADED
    out = capsys.readouterr().out
    assert out.startswith("machine status: DEGRADED") and "breaker: open, 3 consecutive failure(s)" in out
    assert re.search(r"nodes\.greet\s+last_known_good\s+unreachable\s+1 h 0 min\s+httpx\.ConnectError", out)
    assert re.search(r"reverse_mortgage/livekit\s+models\.llm\s+unreachable\s+\S+ s\s+3", out)
    assert main(["status", "--machine", "--json"]) == ExitCode.DEGRADED
    data = json.loads(capsys.readouterr().out)
    [deployment] = data["deployments"]
    assert data["status"] == "degraded" and deployment["deployment"] == DEPLOYMENT
    assert deployment["configs"][0]["components"]["models.llm"]["detail"] == DETAIL


def test_status_needs_a_vertical_unless_machine_or_serve(capsys: pytest.CaptureFixture[str]) -> None:
    """Plain `status` without --vertical is a usage error (exit 2) naming the options."""
    assert main(["status"]) == ExitCode.USAGE
    assert "--vertical is required (or use --machine / --serve)" in capsys.readouterr().err


def test_an_empty_machine_is_healthy_and_says_so(tmp_path: Path) -> None:
    """A machine that resolved nothing yet is OK, and the table and page say nothing was resolved."""
    status = asyncio.run(read_machine_status(tmp_path))
    assert status.healthy and "no process of this machine has resolved" in machine_table(status)
    assert "No process of this machine has resolved" in render_status_page(status, public=True)


def test_each_deployment_is_shown_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two databases' state in one file: two deployments in the view, table and page, each with its own records."""
    clock = Clock()
    other = "https://project-b.supabase.co"
    asyncio.run(record_outage(tmp_path, clock, ended=True))
    asyncio.run(record_outage(tmp_path, clock, ended=False, deployment=other))
    status = asyncio.run(read_machine_status(tmp_path, clock=clock))
    by_name = {d.deployment: d for d in status.deployments}
    assert set(by_name) == {DEPLOYMENT, other} and not status.healthy
    ended, ongoing = by_name[DEPLOYMENT], by_name[other]
    assert ended.breaker.state == "closed" and ended.incidents == () and len(ended.history) == 1
    assert ongoing.breaker.state == "open" and len(ongoing.incidents) == 2 and ongoing.history == ()
    table = machine_table(status)
    assert "breaker: closed" in table.split(f"deployment {other}")[0] and f"deployment {other}: DEGRADED" in table
    page = render_status_page(status, public=True)
    assert page.count('<section class="deployment">') == 2 and "db.internal.example" not in page
