"""Shared helpers for the LiveKit tests: configs from the snapshot and the example registry."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from livekit_fallback import AgentConfig, Resolver, SupabaseSource
from livekit_fallback.tools import ToolRegistry

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VERTICAL = "reverse_mortgage"
DEAD_DATABASE = "http://127.0.0.1:1"
"""Nothing listens on port 1: connection refused, so every component falls back."""


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` (examples/ is not a package)."""
    module_name = f"_example_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def example_registry() -> ToolRegistry:
    """The example agent's registry with all eleven reverse-mortgage tools."""
    return load_example("reverse_mortgage_tools").build_registry()


async def snapshot_config() -> AgentConfig:
    """The vertical's LiveKit config resolved with no database (snapshot mode)."""
    return await Resolver(database=None).resolve(VERTICAL, "livekit")


async def database_down_config() -> AgentConfig:
    """The vertical's LiveKit config resolved while the database refuses connections."""
    async with Resolver(database=SupabaseSource(DEAD_DATABASE, "test-key")) as resolver:
        return await resolver.resolve(VERTICAL, "livekit")
