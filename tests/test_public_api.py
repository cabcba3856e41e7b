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
    "LivekitFallbackError",
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


def test_version_comes_from_the_installed_metadata() -> None:
    """__version__ is the installed distribution's version, written once in pyproject.toml."""
    from importlib import metadata

    assert livekit_fallback.__version__ == metadata.version("livekit-fallback")


def test_every_package_exception_shares_one_base() -> None:
    """Every public exception class the package defines lives in errors.py, under LivekitFallbackError."""
    import importlib
    import inspect
    import pkgutil

    import swaig_fallback
    from livekit_fallback import errors

    defined = set()
    for package in (livekit_fallback, swaig_fallback):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                public = not cls.__name__.startswith("_")
                if public and issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    defined.add(cls)
    assert {c.__module__ for c in defined} == {errors.__name__}
    assert {c.__name__ for c in defined} == set(errors.__all__)
    assert all(issubclass(c, livekit_fallback.LivekitFallbackError) for c in defined)


def test_importing_does_not_configure_logging() -> None:
    """Importing the package adds no handlers to the root or package logger."""
    import logging

    assert logging.getLogger("livekit_fallback").handlers == []
