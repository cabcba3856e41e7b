"""Two deployments on one machine, and the pickup rules, with real call processes sharing one cache directory.

Deployment A and deployment B are two databases (two PostgreSQL databases,
each behind its own PostgREST stand-in and fault proxy), read by agents
that share the default cache directory, as staging and production on one
host do. Every "call" is a fresh Python process configured only through the
environment (``Resolver.from_settings``), as LiveKit runs each job.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from livekit_fallback import Resolver, SnapshotSource, SupabaseSource
from livekit_fallback.config.machine_status import read_machine_status
from livekit_fallback.config.state.sqlite import SqliteStorage

from .conftest import TEST_KEY, database_copy
from .support.pg import fresh_database
from .support.postgrest import PostgrestStandIn
from .support.proxy import FaultProxy
from .support.seed import reset_database, seed_vertical, set_active_model
from .swaig_helpers import ai_verb
from .test_swaig_server import serving

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
VERTICALS = ("reverse_mortgage", "home_equity")
PLATFORMS = ("livekit", "signalwire")
LLM = {
    "A": {"livekit": "openai/gpt-4.1", "signalwire": "gpt-4.1-nano"},
    "B": {"livekit": "openai/gpt-4o", "signalwire": "gpt-4.1"},
}

CALL = r"""
import asyncio, json, logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(message)s")
from livekit_fallback import Resolver

async def main():
    out = []
    async with Resolver.from_settings() as resolver:
        for vertical, platform in json.loads(sys.argv[1]):
            started = time.perf_counter()
            config = await resolver.resolve(vertical, platform)
            seconds = time.perf_counter() - started
            out.append({
                "vertical": vertical, "platform": platform, "seconds": seconds, "llm": config.models.llm.value,
                "theme": config.theme.text, "verify": config.nodes["verify"].instructions,
                "sources": sorted({p.source.value for p in config.provenance.values()}),
            })
    print(json.dumps(out))

asyncio.run(main())
"""
BANNER = "DATABASE FAILURE"


@dataclass
class Deployment:
    """One database as an agent reaches it: its data, its stand-in and the proxy agents connect through."""

    name: str
    dsn: str
    proxy: FaultProxy

    @property
    def url(self) -> str:
        return self.proxy.url

    def marker(self) -> str:
        return f"(deployment {self.name})"


def _seed(dsn: str, name: str) -> None:
    reset_database(dsn)
    for vertical in VERTICALS:
        data = copy.deepcopy(database_copy())
        data["theme"]["identity"] += f" (deployment {name}) [{vertical}]"
        for node in data["nodes"].values():
            node["instructions"] += f" (deployment {name})"
        seed_vertical(dsn, data, vertical=vertical)
    for platform in PLATFORMS:
        table = f"{platform}_available_llm_models"
        set_active_model(dsn, table, LLM[name][platform])


@pytest.fixture
def deployments(database_dsn: str, postgres_server: Any) -> Iterator[dict[str, Deployment]]:
    """Deployment A (the session database) and B (a second database), each behind a stand-in and a proxy."""
    with (
        fresh_database(postgres_server.dsn) as second,
        PostgrestStandIn(second) as standin_b,
        PostgrestStandIn(database_dsn) as standin_a,
        FaultProxy("127.0.0.1", standin_a.port) as proxy_a,
        FaultProxy("127.0.0.1", standin_b.port) as proxy_b,
    ):
        found = {"A": Deployment("A", database_dsn, proxy_a), "B": Deployment("B", second, proxy_b)}
        for name, deployment in found.items():
            _seed(deployment.dsn, name)
        yield found


@pytest.fixture
def snapshot_dir(tmp_path: Path) -> Path:
    """A snapshot directory with a second vertical (the shipped snapshot under another name)."""
    folder = tmp_path / "snapshots"
    folder.mkdir()
    text = (ROOT / "snapshots" / "reverse_mortgage.toml").read_text(encoding="utf-8")
    (folder / "home_equity.toml").write_text(text.replace('vertical = "reverse_mortgage"', 'vertical = "home_equity"'))
    return folder


def _env(deployment: Deployment, cache: Path, snapshots: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_"))}
    env.update(
        SUPABASE_URL=deployment.url,
        SUPABASE_SERVICE_KEY=TEST_KEY,
        LIVEKIT_FALLBACK_CACHE_DIR=str(cache),
        LIVEKIT_FALLBACK_SNAPSHOT_DIR=str(snapshots),
        LIVEKIT_FALLBACK_DEADLINE="1.0",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


def _call(env: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    wanted = json.dumps([[v, p] for v in VERTICALS for p in PLATFORMS])
    done = subprocess.run([sys.executable, "-c", CALL, wanted], env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _own(results: list[dict[str, Any]], deployment: Deployment, source: str) -> None:
    """Every config is the deployment's own: its prompts, its models, served from ``source``."""
    other = "B" if deployment.name == "A" else "A"
    for r in results:
        assert deployment.marker() in r["theme"] and f"[{r['vertical']}]" in r["theme"], r
        assert deployment.marker() in r["verify"] and f"(deployment {other})" not in r["verify"], r
        assert r["llm"] == LLM[deployment.name][r["platform"]], r
        assert r["sources"] == [source], r


def test_two_deployments_never_see_each_others_state(
    deployments: dict[str, Deployment], tmp_path: Path, snapshot_dir: Path
) -> None:
    """Within the TTL, after B's outage and while A's breaker is open: each process gets its own database's config."""
    a, b = deployments["A"], deployments["B"]
    cache = tmp_path / "cache"
    results, _ = _call(_env(a, cache, snapshot_dir))
    _own(results, a, "database")
    results, _ = _call(_env(b, cache, snapshot_dir))  # within A's TTL: B still reads B
    _own(results, b, "database")
    results, _ = _call(_env(a, cache, snapshot_dir))  # and A is served its own stored copy
    _own(results, a, "database")

    b.proxy.set_mode("refuse")  # B's outage: B gets B's last-known-good copy, never A's
    results, log = _call(_env(b, cache, snapshot_dir, LIVEKIT_FALLBACK_TTL="0", LIVEKIT_FALLBACK_COOL_DOWN="0.1"))
    _own(results, b, "last_known_good")
    assert BANNER in log

    b.proxy.set_mode("pass")
    a.proxy.set_mode("hang")  # A's breaker opens; B's healthy database is still read
    results, _ = _call(_env(a, cache, snapshot_dir, LIVEKIT_FALLBACK_TTL="0", LIVEKIT_FALLBACK_COOL_DOWN="120"))
    _own(results, a, "last_known_good")
    results, log = _call(_env(b, cache, snapshot_dir, LIVEKIT_FALLBACK_TTL="0", LIVEKIT_FALLBACK_COOL_DOWN="0.1"))
    _own(results, b, "database")
    assert BANNER not in log

    import asyncio

    status = asyncio.run(read_machine_status(SqliteStorage(cache)))
    breakers = {d.deployment: d.breaker.state for d in status.deployments}
    assert breakers == {a.url: "open", b.url: "closed"}
    text = json.dumps(status.to_json(public=True))
    assert TEST_KEY not in text and a.url not in text and b.url not in text


async def test_a_swaig_server_of_each_deployment_serves_its_own_swml(
    deployments: dict[str, Deployment], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two SWAIG servers on one machine, one per database, with the default state: each SWML is its own."""
    a, b = deployments["A"], deployments["B"]
    swml: dict[str, str] = {}
    for deployment in (a, b, a):
        database = SupabaseSource(deployment.url, TEST_KEY)
        async with (
            Resolver(database=database, snapshots=SnapshotSource()) as resolver,
            serving(resolver, None) as server,
        ):
            status, body, _ = await server.get("/swml")
        assert status == 200
        prompt = json.dumps(ai_verb(json.loads(body))["prompt"])
        other = "B" if deployment.name == "A" else "A"
        assert deployment.marker() in prompt and f"(deployment {other})" not in prompt
        assert ai_verb(json.loads(body))["params"]["ai_model"] == LLM[deployment.name]["signalwire"]
        swml[deployment.name] = prompt
    assert swml["A"] != swml["B"]
