"""The last-known-good copy: kept in the deployment's state after reads, preferred over the snapshot, robust."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from livekit_fallback import Reason, Resolver, Source, SupabaseSource
from livekit_fallback.config.sources.last_known_good import BACKUPS_KEY
from livekit_fallback.config.state.storage import StateStorage

from .conftest import DB_MARKER, DB_MODELS, SeededDatabase, shipped_snapshot
from .support.proxy import FaultProxy
from .support.seed import set_backups, set_node_content

pytestmark = pytest.mark.usefixtures("each_storage")

VERTICAL = "reverse_mortgage"
LLM_TABLE = "livekit_available_llm_models"


@asynccontextmanager
async def _resolver(url: str, key: str, **options: object) -> AsyncIterator[Resolver]:
    """A resolver as production builds one, reading the database at ``url`` afresh each time (TTL 0)."""
    async with Resolver(database=SupabaseSource(url, key), ttl=0, **options) as resolver:  # type: ignore[arg-type]
        yield resolver


async def _warm(url: str, key: str, platform: str = "livekit") -> Resolver:
    async with _resolver(url, key) as resolver:
        config = await resolver.resolve(VERTICAL, platform)  # type: ignore[arg-type]
        assert not config.is_degraded
    return resolver


async def test_the_copy_is_kept_after_a_database_read(seeded: SeededDatabase, fault_proxy: FaultProxy) -> None:
    """A healthy read keeps all 13 components and the ranked backups, under the database's URL, without the key."""
    set_backups(seeded.dsn, LLM_TABLE, ["openai/gpt-4.1-mini"])
    resolver = await _warm(fault_proxy.url, seeded.key)
    copy = await resolver.state.last_known_good(VERTICAL, "livekit")
    assert len([k for k in copy if k != BACKUPS_KEY]) == 13
    assert json.loads(copy["models.llm"][0])["value"] == DB_MODELS["livekit"]["llm"]
    assert [c["value"] for c in json.loads(copy[BACKUPS_KEY][0])["llm"]] == ["openai/gpt-4.1-mini"]
    assert resolver.deployment == fault_proxy.url
    state_file = Path(os.environ["LIVEKIT_FALLBACK_CACHE_DIR"]) / "state.sqlite3"
    if state_file.exists():
        assert seeded.key.encode() not in state_file.read_bytes()


async def test_an_outage_serves_the_copy_with_the_databases_backup_chain(
    seeded: SeededDatabase, fault_proxy: FaultProxy
) -> None:
    """During an outage every component comes from the copy, and the config keeps the database's ranked backups."""
    set_backups(seeded.dsn, LLM_TABLE, ["openai/gpt-4.1-mini"])
    await _warm(fault_proxy.url, seeded.key)
    fault_proxy.set_mode("refuse")
    async with _resolver(fault_proxy.url, seeded.key) as resolver:
        config = await resolver.resolve(VERTICAL)
    assert {(p.source, p.reason) for p in config.provenance.values()} == {(Source.LAST_KNOWN_GOOD, Reason.UNREACHABLE)}
    chain = [choice.value for choice, _ in config.backups["llm"]]
    assert chain[0] == "openai/gpt-4.1-mini" and config.backups["llm"][0][1].source is Source.LAST_KNOWN_GOOD


async def test_rotating_the_key_keeps_the_copy(seeded: SeededDatabase, fault_proxy: FaultProxy) -> None:
    """The state is keyed by the project URL, never the key: a new key during an outage still gets the copy."""
    await _warm(fault_proxy.url, seeded.key)
    fault_proxy.set_mode("refuse")
    async with _resolver(fault_proxy.url, "a-rotated-service-key") as resolver:
        config = await resolver.resolve(VERTICAL)
    assert {p.source for p in config.provenance.values()} == {Source.LAST_KNOWN_GOOD}


def test_a_new_process_serves_the_copy_during_an_outage(seeded: SeededDatabase, fault_proxy: FaultProxy) -> None:
    """After a restart with the database down, every component comes from last-known-good, newer than the snapshot."""
    import asyncio

    asyncio.run(_warm(fault_proxy.url, seeded.key))
    fault_proxy.set_mode("refuse")
    env = {
        **os.environ,
        "SUPABASE_URL": fault_proxy.url,
        "SUPABASE_SERVICE_KEY": seeded.key,
        "LIVEKIT_FALLBACK_TTL": "0",
    }
    result = subprocess.run(
        [sys.executable, "-m", "livekit_fallback.cli", "resolve", "--vertical", VERTICAL, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    components = [data["theme"], *data["nodes"].values(), *data["models"].values()]
    assert {(c["source"], c["reason"]) for c in components} == {("last_known_good", "unreachable")}
    assert data["models"]["llm"]["value"] == DB_MODELS["livekit"]["llm"]
    assert "Using last-known-good" in result.stderr and "copy read" in result.stderr
    assert seeded.key not in result.stderr


async def test_a_broken_node_falls_back_to_its_last_good_database_copy(
    seeded: SeededDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """A node that turns invalid in the database is served from the copy read before, not the old snapshot."""
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    await _warm(seeded.url, seeded.key)
    set_node_content(seeded.dsn, VERTICAL, "verify", {"role": "r", "instructions": "i", "valid_contexts": ["nowhere"]})
    async with _resolver(seeded.url, seeded.key) as resolver:
        config = await resolver.resolve(VERTICAL)
        kept = await resolver.state.last_known_good(VERTICAL, "livekit")
    prov = config.provenance["nodes.verify"]
    assert (prov.source, prov.reason) == (Source.LAST_KNOWN_GOOD, Reason.INVALID_CONTENT)
    assert DB_MARKER in config.nodes["verify"].instructions
    assert config.provenance["nodes.greet"].source is Source.DATABASE
    (banner,) = [r for r in caplog.records if getattr(r, "event", None) == "config_fallback"]
    assert "Impact: Using last-known-good node config 'verify'" in banner.getMessage()
    assert DB_MARKER in json.loads(kept["nodes.verify"][0])["instructions"]


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("nodes.verify", "{ this is not json", "last-known-good nodes.verify is invalid"),
        ("models.llm", json.dumps({"kind": "tts", "platform": "livekit", "value": "x/y"}), "models.llm is invalid"),
        ("theme", json.dumps({"vertical": "another_vertical", "text": "t"}), "theme is invalid"),
    ],
)
async def test_a_bad_component_in_the_copy_is_reported_and_skipped_alone(
    seeded: SeededDatabase,
    fault_proxy: FaultProxy,
    caplog: pytest.LogCaptureFixture,
    key: str,
    value: str,
    fragment: str,
) -> None:
    """A damaged component of the copy gets its own alarm (once) and falls back to the snapshot alone."""
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    resolver = await _warm(fault_proxy.url, seeded.key)
    storage: StateStorage = resolver.state.storage
    await resolver.state.store_last_known_good(VERTICAL, "livekit", {key: (value, "2030-01-01T00:00:00+00:00")})
    fault_proxy.set_mode("refuse")
    async with _resolver(fault_proxy.url, seeded.key, state=storage) as resolver:
        for _ in range(3):
            config = await resolver.resolve(VERTICAL, fresh=True)
    assert config.provenance[key].source is Source.SNAPSHOT
    others = {p.source for k, p in config.provenance.items() if k != key}
    assert others == {Source.LAST_KNOWN_GOOD}
    problems = [r for r in caplog.records if getattr(r, "event", None) == "cache_problem"]
    assert len(problems) == 1 and fragment in problems[0].getMessage()


async def test_the_copy_of_the_other_platform_is_not_used(seeded: SeededDatabase, fault_proxy: FaultProxy) -> None:
    """A SignalWire copy is never served to a LiveKit resolution."""
    await _warm(fault_proxy.url, seeded.key, platform="signalwire")
    fault_proxy.set_mode("refuse")
    async with _resolver(fault_proxy.url, seeded.key) as resolver:
        config = await resolver.resolve(VERTICAL, "livekit")
    assert {p.source for p in config.provenance.values()} == {Source.SNAPSHOT}


async def test_a_snapshot_taken_after_the_copy_beats_it(seeded: SeededDatabase, fault_proxy: FaultProxy) -> None:
    """A copy read before the snapshot was taken is older than the snapshot, so the snapshot is served."""
    resolver = await _warm(fault_proxy.url, seeded.key)
    copy = await resolver.state.last_known_good(VERTICAL, "livekit")
    old = {k: (v, "2025-01-01T00:00:00") for k, (v, _) in copy.items() if k not in ("models.llm", BACKUPS_KEY)}
    await resolver.state.store_last_known_good(VERTICAL, "livekit", old)  # naive times are read as UTC
    fault_proxy.set_mode("refuse")
    async with _resolver(fault_proxy.url, seeded.key) as resolver:
        config = await resolver.resolve(VERTICAL)
    assert config.provenance["models.llm"].source is Source.LAST_KNOWN_GOOD
    assert config.models.llm.value == DB_MODELS["livekit"]["llm"]
    assert {p.source for k, p in config.provenance.items() if k != "models.llm"} == {Source.SNAPSHOT}
    assert config.provenance["theme"].reason is Reason.UNREACHABLE
    assert config.theme.text.startswith(shipped_snapshot()["theme"]["identity"][:40])
