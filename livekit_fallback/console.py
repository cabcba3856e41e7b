"""Console mode: run a call text-only without voice keys, and show the agent's opening line.

LiveKit's console runs the entrypoint as a local mock job (``ctx.is_fake_job()``)
and, in text mode, prints only what each typed turn produced. Two gaps follow
for node agents, closed here:

- An STT or TTS that cannot be built (no Deepgram or ElevenLabs key) would stop
  the call before it starts, though a typed conversation needs neither.
  :func:`voice_model` leaves such a model out in console mode (with a
  warning), so only an LLM endpoint is needed; on a real call it still raises.
- The opening line a node speaks on entry (the greeting) is not produced by a
  typed turn, so the text console never shows it. :func:`show_opening` prints
  it the way the console prints agent turns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from livekit.agents import JobContext
from livekit.agents.voice import SpeechHandle

from . import plugin as _plugin  # noqa: F401  (registers the LiveKit plugin)
from .config.model import AgentConfig
from .errors import ModelBuildError
from .log import logger

__all__ = ["in_text_console", "show_opening", "voice_model"]

M = TypeVar("M")


def voice_model(build: Callable[[AgentConfig], M], config: AgentConfig, ctx: JobContext | None) -> M | None:
    """Build an STT or TTS; in console mode one that cannot be built means text-only, not an error.

    Args:
        build: :func:`~livekit_fallback.providers.build_stt` or ``build_tts``.
        config: The resolved config.
        ctx: The job (``None`` counts as not console).

    Returns:
        The model, or ``None`` in console mode when it cannot be built.

    Raises:
        ModelBuildError: It cannot be built and this is a real call.
    """
    try:
        return build(config)
    except ModelBuildError as exc:
        if ctx is None or not ctx.is_fake_job():
            raise
        logger.warning("Console: running text-only, %s", exc, extra={"event": "console_text_only"})
        return None


def _console() -> Any:
    from livekit.agents.cli import cli

    return cli.AgentsConsole.get_instance()


def in_text_console() -> bool:
    """LiveKit's local console is running, in text mode."""
    console = _console()
    return bool(console.enabled and console.console_mode == "text")


async def show_opening(opening: SpeechHandle | None) -> str | None:
    """In the text console, print a node's opening line once generated (elsewhere: nothing).

    Args:
        opening: The node's entry reply (``NodeAgent.opening``), or ``None``.

    Returns:
        The text printed, or ``None``.
    """
    if opening is None or not in_text_console():
        return None
    await opening
    text = "\n".join(
        item.text_content or ""
        for item in opening.chat_items
        if item.type == "message" and item.role == "assistant" and item.text_content
    )
    printer = getattr(_console(), "console", None)  # the rich console of the text UI
    if not text or printer is None:
        return None
    from rich.text import Text

    printer.print()
    printer.print(Text.assemble(("  \u25cf ", "#6BCB77"), ("Agent", "bold #6BCB77")))
    for line in text.split("\n"):
        printer.print(Text(f"    {line}"))
    return text
