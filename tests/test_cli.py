"""The livekit-fallback command with no database: snapshot mode, table and JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

NODE_NAMES = ["greet", "verify", "qualify", "quote", "answer", "objections", "book", "goodbye", "end"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE_")}
    return subprocess.run(
        [sys.executable, "-m", "livekit_fallback.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


@pytest.mark.parametrize("platform", ["livekit", "signalwire"])
def test_resolve_json_without_database_is_all_snapshot(platform: str) -> None:
    """With no database configured every component is from the snapshot, and one WARNING says so."""
    result = _run("resolve", "--vertical", "reverse_mortgage", "--platform", platform, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["vertical"] == "reverse_mortgage" and data["platform"] == platform
    assert isinstance(data["elapsed_ms"], (int, float))
    assert data["theme"]["source"] == "snapshot" and data["theme"]["reason"] == "not_configured"
    assert list(data["nodes"]) == NODE_NAMES
    assert all(n["source"] == "snapshot" for n in data["nodes"].values())
    assert set(data["models"]) == {"stt", "llm", "tts"}
    expected_llm = "openai/gpt-5" if platform == "livekit" else "gpt-4.1-mini"
    assert data["models"]["llm"] == {**data["models"]["llm"], "source": "snapshot", "value": expected_llm}
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "snapshot mode" in warnings[0]
    assert "DATABASE FAILURE" not in result.stderr


def test_resolve_table_lists_every_component() -> None:
    """The human table has one row per component with its source and reason."""
    result = _run("resolve", "--vertical", "reverse_mortgage")
    assert result.returncode == 0, result.stderr
    rows = [line.split()[:3] for line in result.stdout.splitlines()[3:]]
    assert [r[0] for r in rows] == [
        "theme",
        *(f"nodes.{n}" for n in NODE_NAMES),
        "models.stt",
        "models.llm",
        "models.tts",
    ]
    assert {(r[1], r[2]) for r in rows} == {("snapshot", "not_configured")}


def test_unknown_vertical_fails_with_a_clear_message() -> None:
    """A vertical with neither database nor snapshot exits 4 (failed) with a one-line reason, no trace."""
    result = _run("resolve", "--vertical", "solar")
    assert result.returncode == 4
    assert "no usable configuration for solar/livekit" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SUPABASE_URL": "db.example.com", "SUPABASE_SERVICE_KEY": "k"}, "must start with http"),
        ({"SUPABASE_URL": "https://db.example.com"}, "SUPABASE_SERVICE_KEY (or SUPABASE_KEY) is not set"),
        ({"LIVEKIT_FALLBACK_DEADLINE": "soon"}, "must be a number of seconds"),
    ],
)
def test_bad_settings_exit_2_naming_the_setting(env: dict[str, str], fragment: str) -> None:
    """Unusable environment settings are a usage error naming the variable, without a trace."""
    result = _run("resolve", "--vertical", "reverse_mortgage", env=env)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr
