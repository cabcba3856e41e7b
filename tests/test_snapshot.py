"""Snapshot files: the shipped snapshot is complete and valid; bad files fail clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from livekit_fallback import Resolver, SnapshotError, SnapshotSource
from livekit_fallback.config.graph import DEFAULT_NODE_NAMES, dead_end_nodes, unreachable_nodes
from livekit_fallback.config.sources.snapshot import default_snapshot_dir, load_snapshot

SHIPPED = default_snapshot_dir() / "reverse_mortgage.toml"


def test_shipped_snapshot_has_every_component_for_both_platforms() -> None:
    """The reverse_mortgage snapshot holds the theme, 9 nodes and both platforms' models, all valid."""
    snap = load_snapshot(SHIPPED)
    assert snap.node_names == DEFAULT_NODE_NAMES
    assert snap.taken_at.year >= 2025 and snap.source
    for platform in ("livekit", "signalwire"):
        for key in ["theme", *(f"nodes.{n}" for n in snap.node_names), "models.stt", "models.llm", "models.tts"]:
            snap.component(key, platform)  # raises InvalidContent if not valid
    assert snap.model_value("livekit", "stt") == ("deepgram/nova-3:multi", False)
    assert snap.model_value("livekit", "llm") == ("openai/gpt-5", False)
    assert snap.model_value("livekit", "tts") == ("elevenlabs/eleven_turbo_v2_5:EXAVITQu4vr4xnSDxMaL", False)
    assert snap.model_value("signalwire", "llm") == ("gpt-4.1-mini", False)
    assert snap.model_value("signalwire", "stt") == ("deepgram:nova-3", False)
    assert snap.model_value("signalwire", "tts") == ("elevenlabs.rachel", False)


def test_shipped_snapshot_graph_is_fully_connected() -> None:
    """Every node is reachable from greet and every node can reach end."""
    snap = load_snapshot(SHIPPED)
    edges = {name: node["valid_contexts"] for name, node in snap.nodes.items()}
    assert unreachable_nodes(edges) == []
    assert dead_end_nodes(edges) == []


def test_theme_has_the_five_sections() -> None:
    """The shipped theme is structured, so it assembles with the four headings."""
    theme = load_snapshot(SHIPPED).component("theme", "livekit")
    for heading in ("# Output rules", "# Conversational flow", "# Tools", "# Guardrails"):
        assert heading in theme.text


async def test_user_directory_comes_before_the_packaged_one(tmp_path: Path) -> None:
    """A snapshot in the user's directory wins over the shipped one for the same vertical."""
    text = SHIPPED.read_text(encoding="utf-8").replace('llm = "gpt-4.1-mini"', 'llm = "gpt-4.1-nano"')
    (tmp_path / "reverse_mortgage.toml").write_text(text, encoding="utf-8")
    async with Resolver(snapshots=SnapshotSource([tmp_path])) as resolver:
        config = await resolver.resolve("reverse_mortgage", "signalwire")
    assert config.models.llm.value == "gpt-4.1-nano"
    assert config.provenance["models.llm"].location == str(tmp_path / "reverse_mortgage.toml")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("schema_version = 1\nvertical = [", "not valid TOML"),
        ("schema_version = 99\n", "schema_version 99"),
        ("schema_version = 1\nvertical = 'x'\n", "not a valid snapshot"),
    ],
)
def test_broken_snapshot_files_raise_a_clear_error(tmp_path: Path, text: str, fragment: str) -> None:
    """Unparsable, newer-schema and incomplete files are reported with the reason."""
    path = tmp_path / "reverse_mortgage.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SnapshotError, match=fragment):
        load_snapshot(path)


def test_unknown_vertical_has_no_snapshot(tmp_path: Path) -> None:
    """Asking for a vertical with no file names the directories searched."""
    with pytest.raises(SnapshotError, match="no snapshot for vertical 'solar'"):
        SnapshotSource([tmp_path]).snapshot("solar")
    with pytest.raises(SnapshotError, match="not a valid name"):
        SnapshotSource([tmp_path]).snapshot("../etc/passwd")


def test_snapshot_reload_follows_file_changes(tmp_path: Path) -> None:
    """An edited snapshot file is re-read, not served stale from the parse cache."""
    path = tmp_path / "reverse_mortgage.toml"
    shutil.copy(SHIPPED, path)
    assert load_snapshot(path).source == load_snapshot(SHIPPED).source
    path.write_text(path.read_text(encoding="utf-8").replace('source = "', 'source = "edited '), encoding="utf-8")
    import os

    os.utime(path, ns=(1, 10**18))
    assert load_snapshot(path).source.startswith("edited ")
