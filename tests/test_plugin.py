"""livekit-fallback as a LiveKit plugin: registration on import and the download-files step."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from livekit_fallback.config.sources.snapshot import default_snapshot_dir
from livekit_fallback.errors import SnapshotError
from livekit_fallback.plugin import FallbackPlugin
from tests.conftest import SeededDatabase
from tests.support.proxy import FaultProxy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter with this source tree first on the path."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_"))}
    full.update(env, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=full)


def test_importing_the_livekit_edge_registers_the_plugin() -> None:
    """Importing livekit_fallback.agents registers FallbackPlugin once, with title, version, package and logger."""
    code = (
        "import livekit_fallback, livekit_fallback.tools\n"
        "from livekit.agents import Plugin\n"
        "before = [p.package for p in Plugin.registered_plugins]\n"
        "import livekit_fallback.agents, livekit_fallback.providers, livekit_fallback.call\n"
        "ours = [p for p in Plugin.registered_plugins if p.package == 'livekit_fallback']\n"
        "same = ours[0].version == livekit_fallback.__version__\n"
        "print(before.count('livekit_fallback'), len(ours), ours[0].title, same, ours[0].logger.name)\n"
    )
    done = run_python(code, {})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0", "1", "livekit-fallback", "True", "livekit_fallback"]


def test_livekits_download_files_stores_the_databases_config(seeded: SeededDatabase, tmp_path: Path) -> None:
    """LiveKit's own download-files command, with a database, writes the last-known-good copy from it."""
    code = (
        "import sys, livekit_fallback.agents\n"
        "from livekit.agents.__main__ import main\n"
        "sys.exit(main(['download-files']))\n"
    )
    env = {"SUPABASE_URL": seeded.url, "SUPABASE_SERVICE_KEY": seeded.key, "LIVEKIT_FALLBACK_CACHE_DIR": str(tmp_path)}
    done = run_python(code, env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "downloading files for livekit_fallback" in done.stderr
    with closing(sqlite3.connect(tmp_path / "state.sqlite3")) as store:
        rows = dict(
            store.execute(
                "SELECT component, value FROM last_known_good WHERE vertical = 'reverse_mortgage' "
                "AND platform = 'livekit'"
            ).fetchall()
        )
    assert json.loads(rows["models.llm"])["value"] == "openai/gpt-4.1"  # the database's LLM (the snapshot has gpt-5)
    assert all(seeded.key not in value for value in rows.values()) and len(rows) == 13


def test_without_a_database_download_files_checks_the_snapshots(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no database the step only checks the snapshots; a broken one fails it, naming the file."""
    monkeypatch.setenv("LIVEKIT_FALLBACK_CACHE_DIR", str(tmp_path / "cache"))
    FallbackPlugin().download_files()
    assert not (tmp_path / "cache").exists()
    broken = tmp_path / "snapshots"
    broken.mkdir()
    text = (default_snapshot_dir() / "reverse_mortgage.toml").read_text(encoding="utf-8")
    (broken / "reverse_mortgage.toml").write_text(text.replace("[nodes.greet]", "[nodes.greet_renamed]", 1))
    monkeypatch.setenv("LIVEKIT_FALLBACK_SNAPSHOT_DIR", str(broken))
    with pytest.raises(SnapshotError, match="reverse_mortgage.toml"):
        FallbackPlugin().download_files()


def test_the_livekit_command_alone_bakes_a_copy_another_user_finds(
    seeded: SeededDatabase, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """``python -m livekit.agents download-files`` finds the package; a runtime user with another home reads its copy.

    The image sets ``LIVEKIT_FALLBACK_CACHE_DIR``; the build user's and the runtime user's
    per-user cache directories differ, and the runtime meets a database outage.
    """
    image = {"LIVEKIT_FALLBACK_CACHE_DIR": str(tmp_path / "image-cache")}
    build = {**image, "HOME": str(tmp_path / "build-home"), "XDG_CACHE_HOME": str(tmp_path / "build-home" / ".cache")}
    build |= {"SUPABASE_URL": fault_proxy.url, "SUPABASE_SERVICE_KEY": seeded.key}
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_"))}
    done = subprocess.run(
        [sys.executable, "-m", "livekit.agents", "download-files"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**full, **build, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "downloading files for livekit_fallback" in done.stderr
    assert "read from the database" in done.stderr
    code = (
        "import asyncio\n"
        "from livekit_fallback import Resolver\n"
        "async def main():\n"
        "    async with Resolver.from_settings() as resolver:\n"
        "        config = await resolver.resolve('reverse_mortgage', 'livekit')\n"
        "    print(config.models.llm.value)\n"
        "asyncio.run(main())\n"
    )
    runtime = {**image, "HOME": str(tmp_path / "run-home"), "XDG_CACHE_HOME": str(tmp_path / "run-home" / ".cache")}
    runtime |= {"SUPABASE_URL": fault_proxy.url, "SUPABASE_SERVICE_KEY": "runtime-key"}
    fault_proxy.set_mode("refuse")  # the same database, down when the image runs
    ran = run_python(code, runtime)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.split() == ["openai/gpt-4.1"]  # the database's model (the snapshot has gpt-5), baked at build


def test_a_job_process_imports_no_database_client_until_it_reads_the_database() -> None:
    """Importing the LiveKit edge loads neither supabase nor its HTTP stack; building a client does."""
    code = (
        "import sys\n"
        "import livekit_fallback.call, livekit_fallback.prewarm, livekit_fallback.plugin\n"
        "heavy = ('supabase', 'postgrest', 'supabase_auth', 'realtime', 'storage3')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}) or 'none')\n"
        "from livekit_fallback.config.sources.supabase import build_client\n"
        "build_client('https://example.invalid', 'key', timeout=1.0)\n"
        "print('supabase' in sys.modules)\n"
    )
    done = run_python(code, {})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["none", "True"]
