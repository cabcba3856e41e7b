"""Two deployments on one machine, per storage: nothing stored for one database is ever seen by another."""

from __future__ import annotations

import pytest

from livekit_fallback import Resolver, SnapshotSource, SupabaseSource
from livekit_fallback.config.model import ModelChoice, Reason, Source
from livekit_fallback.config.state.policy import Verdict
from livekit_fallback.config.state.records import SNAPSHOT_DEPLOYMENT, deployment_of
from livekit_fallback.config.state.state import ResolutionState

from .conftest import POLICY, Machine
from .fakes import DB_LLM, VERTICAL, FakeClock, FakeDatabase

pytestmark = pytest.mark.unit

A, B = "https://project-a.supabase.co", "https://project-b.supabase.co"
B_LLM = "openai/gpt-4o"
V, P = VERTICAL, "livekit"


@pytest.fixture
def pair(machine: Machine, clock: FakeClock) -> tuple[ResolutionState, ResolutionState]:
    """Deployment A's and deployment B's state, in one storage."""
    return (
        ResolutionState(machine(), A, POLICY, clock=clock),
        ResolutionState(machine(), B, POLICY, clock=clock),
    )


async def test_configs_and_leases_stay_with_their_deployment(pair: tuple[ResolutionState, ResolutionState]) -> None:
    """A's stored config is no hit for B, and A's read in flight does not make B wait."""
    a, b = pair
    reading = await a.plan(V, P, holder=a.new_holder())
    own = await b.plan(V, P, holder=b.new_holder())
    assert own.cache == "miss" and own.reads, "B does not wait on A's read"
    await a.finish(V, P, holder=reading.holder, payload='{"a": 1}', degraded=False, verdict=Verdict(True), probe=False)
    assert await b.config(V, P) is None and (await b.plan(V, P, holder=own.holder)).entry is None


async def test_the_breaker_belongs_to_one_database(pair: tuple[ResolutionState, ResolutionState]) -> None:
    """A's open breaker does not stop B reading its own database."""
    a, b = pair
    plan = await a.plan(V, P, holder=a.new_holder())
    await a.finish(
        V, P, holder=plan.holder, payload="{}", degraded=True, verdict=Verdict(False, "x", True), probe=False
    )
    assert (await a.breaker()).state == "open" and (await b.breaker()).state == "closed"
    assert (await b.plan(V, P, holder=b.new_holder(), fresh=True)).database


async def test_incidents_and_outages_stay_with_their_deployment(pair: tuple[ResolutionState, ResolutionState]) -> None:
    """An incident of A does not quieten B's banner, and B's healthy read does not end A's outage."""
    a, b = pair
    (first,), _ = await a.account(V, P, [("theme", "unreachable")], [])
    (other,), _ = await b.account(V, P, [("theme", "unreachable")], [])
    assert first.action == other.action == "banner"
    _, recovery_b = await b.account(V, P, [], ["theme"])
    assert recovery_b is not None and recovery_b.resolutions == 1
    (still,), _ = await a.account(V, P, [("theme", "unreachable")], [])
    assert still.action == "quiet"
    model_a = await a.account_model(V, P, "models.llm", "unbuildable")
    model_b = await b.account_model(V, P, "models.llm", "unbuildable")
    assert getattr(model_a, "action", None) == getattr(model_b, "action", None) == "banner"


async def test_last_known_good_copies_stay_with_their_deployment(
    pair: tuple[ResolutionState, ResolutionState],
) -> None:
    """B's copy is empty however much A stored."""
    a, b = pair
    await a.store_last_known_good(V, P, {"theme": ('"a"', "2026-01-01T00:00:00+00:00")})
    assert await b.last_known_good(V, P) == {}
    assert await a.last_known_good(V, P) == {"theme": ('"a"', "2026-01-01T00:00:00+00:00")}


async def test_the_rows_list_each_deployment_apart(
    machine: Machine, pair: tuple[ResolutionState, ResolutionState]
) -> None:
    """A status read of the storage gives one set of rows per deployment, each with only its own records."""
    a, b = pair
    plan = await a.plan(V, P, holder=a.new_holder())
    await a.finish(
        V, P, holder=plan.holder, payload="{}", degraded=True, verdict=Verdict(False, "x", True), probe=False
    )
    await b.account(V, P, [("theme", "invalid_content")], [])
    rows = {r.deployment: r for r in await machine().rows(10)}
    assert set(rows) == {A, B}
    assert rows[A].breaker.state == "open" and len(rows[A].configs) == 1 and rows[A].incidents == ()
    assert rows[B].breaker.state == "closed" and rows[B].configs == () and len(rows[B].incidents) == 1


def _database(url: str, llm: str) -> FakeDatabase:
    database = FakeDatabase(url=url)
    database.values["models.llm"] = ModelChoice(kind="llm", platform="livekit", value=llm)
    return database


async def test_two_resolvers_on_one_machine_each_serve_their_own_database(machine: Machine) -> None:
    """Within the TTL, after an outage of B and while A's breaker is open, each resolver serves its own config."""
    db_a, db_b = _database(A, DB_LLM), _database(B, B_LLM)
    async with (
        Resolver(database=db_a, snapshots=SnapshotSource(), state=machine(), deadline=0.2) as a,
        Resolver(database=db_b, snapshots=SnapshotSource(), state=machine(), deadline=0.2) as b,
    ):
        assert (await a.resolve(V)).models.llm.value == DB_LLM
        within_ttl = await b.resolve(V)
        assert within_ttl.models.llm.value == B_LLM and len(db_b.reads) == 1
        db_b.mode = "refuse"
        outage = await b.resolve(V, fresh=True)
        assert outage.provenance["models.llm"].source is Source.LAST_KNOWN_GOOD
        assert outage.models.llm.value == B_LLM, "B's own last-known-good copy, never A's"
        db_a.mode = "hang"
        await a.resolve(V, fresh=True)
        assert (await a.state.breaker()).state == "open"
        db_b.mode = "answer"
        healthy = await b.resolve(V, fresh=True)
        assert healthy.models.llm.value == B_LLM and healthy.provenance["theme"].reason is None
        skipped = await a.resolve(V, fresh=True)
        assert skipped.provenance["theme"].reason is Reason.CIRCUIT_OPEN


@pytest.mark.parametrize(
    ("url", "deployment"),
    [
        ("https://Project-A.Supabase.co/", A),
        ("https://project-a.supabase.co:443", A),
        ("  https://project-a.supabase.co  ", A),
        ("https://service:secret-key@project-a.supabase.co?apikey=secret-key#x", A),
        ("http://localhost:80/", "http://localhost"),
        ("http://127.0.0.1:54321/rest/", "http://127.0.0.1:54321/rest"),
        (None, SNAPSHOT_DEPLOYMENT),
        ("", SNAPSHOT_DEPLOYMENT),
    ],
    ids=[
        "case-and-slash",
        "default-port",
        "spaces",
        "userinfo-query-fragment",
        "http-port",
        "port-and-path",
        "none",
        "empty",
    ],
)
def test_a_deployment_is_its_normalised_url(url: str | None, deployment: str) -> None:
    """Spellings of one project URL are one deployment; user info, query and fragment (and any key) are dropped."""
    assert deployment_of(url) == deployment


def test_different_projects_ports_and_schemes_are_different_deployments() -> None:
    """Another host, another port or another scheme is another deployment."""
    seen = {deployment_of(u) for u in (A, B, "https://project-a.supabase.co:8443", "http://project-a.supabase.co")}
    assert len(seen) == 4


def test_rotating_the_key_keeps_the_deployment() -> None:
    """Two keys for one project URL are one deployment, and the key is never part of it."""
    first = Resolver(database=SupabaseSource(A + "/", "first-key-not-a-secret"), snapshots=SnapshotSource())
    second = Resolver(database=SupabaseSource(A, "second-key-not-a-secret"), snapshots=SnapshotSource())
    assert first.deployment == second.deployment == A and "key" not in first.deployment
    assert Resolver(snapshots=SnapshotSource()).deployment == SNAPSHOT_DEPLOYMENT
