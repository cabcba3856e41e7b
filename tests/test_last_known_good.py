"""The last-known-good cache: written atomically after reads, preferred over the snapshot, robust to bad files."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from livekit_fallback import Reason, Resolver, Source, SupabaseSource
from livekit_fallback.config.sources.last_known_good import LastKnownGoodCache

from .conftest import DB_MARKER, DB_MODELS, SeededDatabase, shipped_snapshot
from .support.seed import set_node_content

DEAD = "http://127.0.0.1:1"


async def _warm_cache(seeded: SeededDatabase, cache_dir: Path, platform: str = "livekit") -> None:
    async with Resolver(
        database=SupabaseSource(seeded.url, seeded.key), last_known_good=LastKnownGoodCache(cache_dir)
    ) as resolver:
        config = await resolver.resolve("reverse_mortgage", platform)  # type: ignore[arg-type]
        assert not config.is_degraded


async def test_cache_file_is_written_after_a_database_read(seeded: SeededDatabase, tmp_path: Path) -> None:
    """A healthy read leaves one JSON file per vertical and platform, with read times and no temp files."""
    await _warm_cache(seeded, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reverse_mortgage.livekit.json"]
    data = json.loads((tmp_path / "reverse_mortgage.livekit.json").read_text())
    assert data["schema_version"] == 1 and data["platform"] == "livekit"
    assert len(data["components"]) == 13
    assert data["components"]["models.llm"]["value"]["value"] == DB_MODELS["livekit"]["llm"]
    assert seeded.key not in (tmp_path / "reverse_mortgage.livekit.json").read_text()


def test_a_new_process_serves_the_cached_copy_during_an_outage(seeded: SeededDatabase, tmp_path: Path) -> None:
    """After a restart with the database down, every component comes from last-known-good, newer than the snapshot."""
    import asyncio

    asyncio.run(_warm_cache(seeded, tmp_path))
    env = {
        **os.environ,
        "SUPABASE_URL": DEAD,
        "SUPABASE_SERVICE_KEY": seeded.key,
        "LIVEKIT_FALLBACK_CACHE_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "livekit_fallback.cli", "resolve", "--vertical", "reverse_mortgage", "--json"],
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
    seeded: SeededDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A node that turns invalid in the database is served from the copy read before, not the old snapshot."""
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    await _warm_cache(seeded, tmp_path)
    set_node_content(
        seeded.dsn, "reverse_mortgage", "verify", {"role": "r", "instructions": "i", "valid_contexts": ["nowhere"]}
    )
    async with Resolver(
        database=SupabaseSource(seeded.url, seeded.key), last_known_good=LastKnownGoodCache(tmp_path)
    ) as resolver:
        config = await resolver.resolve("reverse_mortgage")
    prov = config.provenance["nodes.verify"]
    assert (prov.source, prov.reason) == (Source.LAST_KNOWN_GOOD, Reason.INVALID_CONTENT)
    assert DB_MARKER in config.nodes["verify"].instructions
    assert config.provenance["nodes.greet"].source is Source.DATABASE
    (banner,) = [r for r in caplog.records if getattr(r, "event", None) == "config_fallback"]
    assert "Impact: Using last-known-good node config 'verify'" in banner.getMessage()
    cached = json.loads((tmp_path / "reverse_mortgage.livekit.json").read_text())
    assert DB_MARKER in cached["components"]["nodes.verify"]["value"]["instructions"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{ this is not json", "is corrupt (not JSON"),
        (b'{"schema_version": 1}', "is corrupt (no components object)"),
        (json.dumps({"schema_version": 99, "components": {}}).encode(), "schema_version 99"),
    ],
)
async def test_bad_cache_files_are_reported_and_skipped(
    seeded: SeededDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, fragment: str
) -> None:
    """Corrupt or newer-schema cache files get their own alarm and the snapshot is used instead."""
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    (tmp_path / "reverse_mortgage.livekit.json").write_bytes(content)
    async with Resolver(
        database=SupabaseSource(DEAD, seeded.key), last_known_good=LastKnownGoodCache(tmp_path), ttl=0
    ) as resolver:
        for _ in range(3):
            config = await resolver.resolve("reverse_mortgage", fresh=True)
    assert {p.source for p in config.provenance.values()} == {Source.SNAPSHOT}
    assert config.models.llm.value == shipped_snapshot()["models"]["livekit"]["llm"]
    problems = [r for r in caplog.records if getattr(r, "event", None) == "cache_problem"]
    assert len(problems) == 1 and fragment in problems[0].getMessage()


async def test_cache_entry_for_the_other_platform_is_not_used(seeded: SeededDatabase, tmp_path: Path) -> None:
    """A SignalWire copy is never served to a LiveKit resolution."""
    await _warm_cache(seeded, tmp_path, platform="signalwire")
    async with Resolver(
        database=SupabaseSource(DEAD, seeded.key), last_known_good=LastKnownGoodCache(tmp_path)
    ) as resolver:
        config = await resolver.resolve("reverse_mortgage", "livekit")
    assert {p.source for p in config.provenance.values()} == {Source.SNAPSHOT}


async def test_a_snapshot_taken_after_the_cache_beats_it(seeded: SeededDatabase, tmp_path: Path) -> None:
    """A cached copy read before the snapshot was taken is older than the snapshot, so the snapshot is served."""
    await _warm_cache(seeded, tmp_path)
    path = tmp_path / "reverse_mortgage.livekit.json"
    data = json.loads(path.read_text())
    for key, entry in data["components"].items():
        if key != "models.llm":
            entry["read_at"] = "2025-01-01T00:00:00+00:00"  # before the shipped snapshot (2025-11-21)
    path.write_text(json.dumps(data))
    async with Resolver(
        database=SupabaseSource(DEAD, seeded.key), last_known_good=LastKnownGoodCache(tmp_path)
    ) as resolver:
        config = await resolver.resolve("reverse_mortgage")
    assert config.provenance["models.llm"].source is Source.LAST_KNOWN_GOOD
    assert config.models.llm.value == DB_MODELS["livekit"]["llm"]
    others = {p.source for k, p in config.provenance.items() if k != "models.llm"}
    assert others == {Source.SNAPSHOT}
    assert config.provenance["theme"].reason is Reason.UNREACHABLE
