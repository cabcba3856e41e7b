"""SignalWire side of livekit-fallback: SWML from the resolved config, and the SWAIG webhook server.

:func:`build_swml` turns a config resolved for ``signalwire`` into a SWML
document; :func:`create_app` builds the aiohttp server that resolves per
request, dispatches SWAIG function calls to the shared tool registry, and
reports health and metrics. :class:`~swaig_fallback.sdk.ResolvedAgent` (with
the ``signalwire`` extra) is the same agent as a SignalWire Agents SDK
``AgentBase``; it is imported on first use, so this package does not need the SDK.
"""

from typing import TYPE_CHECKING, Any

from .auth import Credentials, InsecureServerError, credentials_from_env
from .calls import CallInfo, CallStateHook, initial_global_data
from .parameters import SwaigSchemaError, swaig_parameters
from .server import DEFAULT_MAX_BODY, DEFAULT_VERTICAL, PATHS, create_app, run_server
from .swaig import FALLBACK_RESPONSE, NEXT_NODE_KEY, BadSwaigRequest, SwaigCall, parse_swaig_call, swaig_reply
from .swml import (
    DEFAULT_CONTEXT,
    DEFAULT_LANGUAGE,
    HANGUP_FUNCTION,
    NODE_KEY,
    CallerContext,
    Language,
    MappedConfig,
    build_swml,
    config_tool_names,
    map_config,
    swaig_functions,
)

if TYPE_CHECKING:
    from .sdk import ResolvedAgent

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_LANGUAGE",
    "DEFAULT_MAX_BODY",
    "DEFAULT_VERTICAL",
    "FALLBACK_RESPONSE",
    "HANGUP_FUNCTION",
    "NEXT_NODE_KEY",
    "NODE_KEY",
    "PATHS",
    "BadSwaigRequest",
    "CallInfo",
    "CallStateHook",
    "CallerContext",
    "Credentials",
    "InsecureServerError",
    "Language",
    "MappedConfig",
    "ResolvedAgent",
    "SwaigCall",
    "SwaigSchemaError",
    "build_swml",
    "config_tool_names",
    "create_app",
    "credentials_from_env",
    "initial_global_data",
    "map_config",
    "parse_swaig_call",
    "run_server",
    "swaig_parameters",
    "swaig_functions",
    "swaig_reply",
]


def __getattr__(name: str) -> Any:
    """Import :class:`~swaig_fallback.sdk.ResolvedAgent` on first use (it needs signalwire-sdk)."""
    if name == "ResolvedAgent":
        from .sdk import ResolvedAgent

        return ResolvedAgent
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
