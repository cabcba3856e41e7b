"""livekit-fallback: resolve voice-agent configuration from Supabase, never fail a call.

Resolve once per call with :func:`resolve_agent_config`; each component (theme,
each node, each model) comes from the database or, when that fails or holds
bad data, from the next source (last-known-good copy, then the shipped
snapshot), with provenance recorded and the fallback logged loudly.
"""

from importlib import metadata as _metadata

from .config.alarms import Alarms
from .config.criteria import Criteria, CriteriaError, parse_criteria
from .config.model import (
    AgentConfig,
    ModelChoice,
    Models,
    Node,
    Provenance,
    Reason,
    Source,
    Theme,
    ThemeSections,
)
from .config.resolver import ConfigUnavailableError, Resolver, default_resolver, resolve_agent_config
from .config.settings import Settings, SettingsError
from .config.sources import ConfigSource, SnapshotError, SnapshotSource, SupabaseSource
from .errors import LivekitFallbackError

try:
    __version__ = _metadata.version("livekit-fallback")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
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
]
