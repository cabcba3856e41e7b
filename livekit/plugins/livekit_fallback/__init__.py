"""livekit-fallback in LiveKit's plugin namespace, so ``python -m livekit.agents download-files`` finds it.

LiveKit's command imports every package under ``livekit.plugins`` and runs each
registered plugin's download step; importing this one registers
:class:`livekit_fallback.plugin.FallbackPlugin`. Agents import
``livekit_fallback`` itself, never this module.
"""

from livekit_fallback.plugin import FallbackPlugin

__all__ = ["FallbackPlugin"]
