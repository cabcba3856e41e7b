"""The shipped Prometheus alert rules pass Prometheus' own checker and their unit tests.

``promtool`` (Debian's ``prometheus`` package) must be installed: ``.ci/run``
installs it, and without it this test fails rather than skips.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

RULES_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in the rules directory."""
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed (Debian package 'prometheus'; .ci/run installs it)"
    return subprocess.run([binary, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60)


def test_promtool_check_rules() -> None:
    """`promtool check rules` accepts the rules file and finds all eight rules."""
    done = promtool("check", "rules", "livekit-fallback.rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_promtool_test_rules() -> None:
    """`promtool test rules` passes: every rule fires on its firing series and stays quiet on the others."""
    done = promtool("test", "rules", "livekit-fallback.rules.test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
