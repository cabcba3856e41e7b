"""The package's loggers, named once.

Everything the package logs goes through :data:`logger` (``livekit_fallback``)
or its child :data:`swaig_logger` (``livekit_fallback.swaig``, the SignalWire
server's requests), so an application routes or silences the package with one
``logging.getLogger("livekit_fallback")``. The package never configures
logging on import; the CLI adds its own handler when it runs.
"""

from __future__ import annotations

import logging

__all__ = ["LOGGER_NAME", "logger", "swaig_logger"]

LOGGER_NAME = "livekit_fallback"

logger = logging.getLogger(LOGGER_NAME)
"""The package logger: fallbacks, alarms, resolutions, model builds."""

swaig_logger = logging.getLogger(f"{LOGGER_NAME}.swaig")
"""The SignalWire server's logger: requests, function calls, refusals."""
