"""The public API is explicit and pinned: changes to it are deliberate."""

from __future__ import annotations

import livekit_fallback

EXPECTED = {
    "AgentConfig",
    "Alarms",
    "ConfigSource",
    "ConfigUnavailableError",
    "Criteria",
    "CriteriaError",
    "ModelChoice",
    "Models",
    "Node",
    "Provenance",
    "Reason",
    "Resolver",
    "Settings",
    "SettingsError",
    "SnapshotError",
    "SnapshotSource",
    "Source",
    "SupabaseSource",
    "Theme",
    "ThemeSections",
    "default_resolver",
    "parse_criteria",
    "resolve_agent_config",
}


def test_package_all_is_pinned() -> None:
    """livekit_fallback.__all__ lists exactly the supported names, and each exists."""
    assert set(livekit_fallback.__all__) == EXPECTED
    for name in livekit_fallback.__all__:
        assert getattr(livekit_fallback, name) is not None


def test_config_core_does_not_import_livekit() -> None:
    """The config core and the CLI load without importing the livekit SDK."""
    import subprocess
    import sys

    code = (
        "import sys, livekit_fallback, livekit_fallback.cli, livekit_fallback.tools;"
        "print(sorted(m for m in sys.modules if m == 'livekit' or m.startswith('livekit.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_importing_does_not_configure_logging() -> None:
    """Importing the package adds no handlers to the root or package logger."""
    import logging

    assert logging.getLogger("livekit_fallback").handlers == []
