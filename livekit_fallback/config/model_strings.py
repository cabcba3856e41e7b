"""The grammar of model descriptor strings, per platform and model kind.

LiveKit values look like ``deepgram/nova-3:multi`` (STT: variant is the
language), ``openai/gpt-5`` (LLM: never split) and
``elevenlabs/eleven_turbo_v2_5:<voice id>`` (TTS: variant is the voice).
SignalWire values look like ``deepgram:nova-3``, ``gpt-4.1-mini`` and
``elevenlabs.rachel``. :func:`check_model_value` accepts a string and the
``*_of`` functions take an accepted one apart.
"""

from __future__ import annotations

import re

from .keys import ModelKind, Platform

__all__ = ["KNOWN_PROVIDERS", "check_model_value", "model_of", "provider_of", "variant_of", "voice_of"]

KNOWN_PROVIDERS: dict[tuple[Platform, ModelKind], frozenset[str]] = {
    ("livekit", "stt"): frozenset(
        {"deepgram", "assemblyai", "cartesia", "speechmatics", "openai", "google", "azure", "elevenlabs"}
    ),
    ("livekit", "llm"): frozenset(
        {
            "openai",
            "google",
            "anthropic",
            "xai",
            "deepseek",
            "groq",
            "cerebras",
            "baseten",
            "azure",
            "moonshotai",
            "qwen",
            "mistral",
        }
    ),
    ("livekit", "tts"): frozenset(
        {"elevenlabs", "cartesia", "deepgram", "rime", "inworld", "openai", "google", "azure", "xai", "fishaudio"}
    ),
    ("signalwire", "stt"): frozenset({"deepgram", "gcloud", "azure", "openai", "assemblyai"}),
    ("signalwire", "tts"): frozenset(
        {"elevenlabs", "amazon", "polly", "gcloud", "azure", "cartesia", "rime", "deepgram", "openai"}
    ),
}
"""Providers (engines) a model string may name, per platform and kind."""

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_PATTERNS: dict[tuple[Platform, ModelKind], re.Pattern[str]] = {
    ("livekit", "stt"): re.compile(rf"^({_SEGMENT})/({_SEGMENT})(:[A-Za-z0-9_\-]+)?$"),
    ("livekit", "llm"): re.compile(rf"^({_SEGMENT})/([A-Za-z0-9][A-Za-z0-9_.:\-/]*)$"),
    ("livekit", "tts"): re.compile(rf"^({_SEGMENT})/({_SEGMENT})(:[A-Za-z0-9_\-]+)?$"),
    ("signalwire", "stt"): re.compile(rf"^([a-z0-9_]+):({_SEGMENT})$"),
    ("signalwire", "llm"): re.compile(rf"^{_SEGMENT}$"),
    ("signalwire", "tts"): re.compile(r"^([a-z0-9_]+)\.([A-Za-z0-9_\-]+)(:[A-Za-z0-9_.:\-]+)?$"),
}
_EXPECTED = {
    ("livekit", "stt"): "provider/model[:language], e.g. deepgram/nova-3:multi",
    ("livekit", "llm"): "provider/model, e.g. openai/gpt-5",
    ("livekit", "tts"): "provider/model[:voice], e.g. elevenlabs/eleven_turbo_v2_5:<voice id>",
    ("signalwire", "stt"): "engine:model, e.g. deepgram:nova-3",
    ("signalwire", "llm"): "a model name, e.g. gpt-4.1-mini",
    ("signalwire", "tts"): "engine.voice[:model], e.g. elevenlabs.rachel",
}


def check_model_value(platform: Platform, kind: ModelKind, value: str) -> None:
    """Check a model descriptor string's format and provider.

    Raises:
        ValueError: The string does not match the platform's format for this
            kind, or names an unknown provider.
    """
    pattern = _PATTERNS[(platform, kind)]
    if not pattern.match(value):
        raise ValueError(f"{platform} {kind} model {value!r} is not {_EXPECTED[(platform, kind)]}")
    known = KNOWN_PROVIDERS.get((platform, kind))
    if known is not None:
        provider = value.split("/", 1)[0] if platform == "livekit" else re.split(r"[:.]", value, maxsplit=1)[0]
        if provider not in known:
            raise ValueError(f"{platform} {kind} model {value!r}: unknown provider {provider!r}")


def provider_of(platform: Platform, kind: ModelKind, value: str) -> str:
    """The provider or engine prefix (``deepgram``, ``openai``; ``""`` for a bare SignalWire LLM)."""
    if platform == "livekit":
        return value.split("/", 1)[0]
    if kind == "stt":
        return value.split(":", 1)[0]
    if kind == "tts":
        return value.split(".", 1)[0]
    return ""


def model_of(platform: Platform, kind: ModelKind, value: str) -> str:
    """The model name without provider or variant (``nova-3``, ``gpt-5``)."""
    if platform == "livekit":
        rest = value.split("/", 1)[1]
        return rest if kind == "llm" else rest.rsplit(":", 1)[0]
    if kind == "stt":
        return value.split(":", 1)[1]
    if kind == "tts":
        parts = value.split(".", 1)[1].split(":")
        return parts[1] if len(parts) > 1 else ""
    return value


def variant_of(platform: Platform, kind: ModelKind, value: str) -> str | None:
    """LiveKit STT language or TTS voice id (after the last ``:``); ``None`` otherwise."""
    if platform != "livekit" or kind == "llm":
        return None
    rest = value.split("/", 1)[1]
    return rest.rsplit(":", 1)[1] if ":" in rest else None


def voice_of(platform: Platform, kind: ModelKind, value: str) -> str | None:
    """The voice a TTS value names: LiveKit's variant (else its model), SignalWire's name after the engine.

    ``None`` for STT and LLM values.
    """
    if kind != "tts":
        return None
    if platform == "livekit":
        return variant_of(platform, kind, value) or model_of(platform, kind, value)
    return value.split(".", 1)[1].split(":", 1)[0]
