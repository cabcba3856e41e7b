"""The livekit-fallback command as a real process: stream split and process exit status.

Everything else about the command is tested in-process in ``tests/unit/test_cli.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def _run(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LIVEKIT_FALLBACK_"))}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


def test_process_prints_json_on_stdout_and_the_banner_on_stderr() -> None:
    """`python -m livekit_fallback.cli resolve --json` writes only JSON to stdout and its warning to stderr, exit 0."""
    result = _run("livekit_fallback.cli", "resolve", "--vertical", "reverse_mortgage", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["vertical"] == "reverse_mortgage" and data["health"]["status"] == "degraded"
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "snapshot mode" in warnings[0]


@pytest.mark.parametrize(
    ("args", "env", "code"),
    [
        (("resolve", "--vertical", "solar"), {}, 4),
        (("resolve", "--vertical", "reverse_mortgage"), {"LIVEKIT_FALLBACK_DEADLINE": "soon"}, 2),
        (("resolve",), {}, 2),
    ],
    ids=["failed", "bad_setting", "argparse_usage"],
)
def test_process_exit_status_is_the_exit_code(args: tuple[str, ...], env: dict[str, str], code: int) -> None:
    """`python -m livekit_fallback` exits with the ExitCode number itself, with no traceback."""
    result = _run("livekit_fallback", *args, env=env)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
