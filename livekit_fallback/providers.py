"""Build real LiveKit STT / LLM / TTS instances from a resolved config's model choices.

A :class:`~livekit_fallback.config.model.ModelChoice` becomes the provider's own
plugin (``deepgram.STT``, ``openai.LLM``, ``elevenlabs.TTS``) when that
provider's key is set or the row needs it (a custom voice), else a LiveKit
Inference instance built from the same descriptor. :func:`build_stt`,
:func:`build_llm` and :func:`build_tts` add two safety nets: a configured
choice that cannot be built is replaced by the config's backup (the snapshot's
choice, see ``AgentConfig.backups``; with the model banner), and one that
differs from its backup gets it as the runtime backup through LiveKit's
``FallbackAdapter``.

Keys are read when building, never at import: ``DEEPGRAM_API_KEY``,
``OPENAI_API_KEY`` (and ``OPENAI_BASE_URL``), ``ELEVEN_API_KEY``; for Inference
``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET`` (or ``LIVEKIT_INFERENCE_API_*``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import openai as openai_sdk
from livekit.agents import inference, llm, stt, tts
from livekit.agents.types import NOT_GIVEN

# Plugins refuse to register off the main thread, so they are imported here, at module import.
from livekit.plugins import deepgram, elevenlabs, openai

from . import plugin as _plugin  # noqa: F401  (registers the LiveKit plugin)
from .config.alarms import Alarms, FallbackEvent
from .config.model import AgentConfig, ModelChoice, ModelKind, Reason, Source
from .config.sources.base import Failure, Found, format_exception
from .errors import ModelBuildError
from .log import logger

__all__ = ["BuiltModel", "ModelBuildError", "build_llm", "build_model", "build_stt", "build_tts"]

Instance = stt.STT[Any] | llm.LLM[Any] | tts.TTS[Any]

_ALARMS = Alarms()
"""Model-build fallbacks of this process: a full banner first, then counted short lines."""

PLUGIN_PATH = "provider plugin"
INFERENCE_PATH = "LiveKit Inference"


@dataclass(frozen=True)
class BuiltModel:
    """A built instance with the choice it came from (language and voice are private on plugins).

    Attributes:
        choice: The model choice.
        instance: The STT, LLM or TTS instance.
        path: ``plugin`` or ``inference``.
    """

    choice: ModelChoice
    instance: Instance
    path: Literal["plugin", "inference"]


@dataclass(frozen=True)
class _Plugin:
    package: str
    key_env: str
    build: Callable[[ModelChoice, Mapping[str, str]], Instance]

    def configured(self, env: Mapping[str, str]) -> bool:
        return bool(env.get(self.key_env)) or (self.key_env == "OPENAI_API_KEY" and bool(env.get("OPENAI_BASE_URL")))


def _deepgram_stt(choice: ModelChoice, env: Mapping[str, str]) -> stt.STT[Any]:
    key = env.get("DEEPGRAM_API_KEY", "")
    if choice.variant:
        return deepgram.STT(model=choice.model, language=choice.variant, api_key=key)
    return deepgram.STT(model=choice.model, api_key=key)


def _openai_llm(choice: ModelChoice, env: Mapping[str, str]) -> llm.LLM[Any]:
    base_url = env.get("OPENAI_BASE_URL") or NOT_GIVEN
    # A local OpenAI-compatible endpoint needs no key, but the SDK insists on one.
    key = env.get("OPENAI_API_KEY") or ("not-needed" if base_url else "")
    return openai.LLM(model=choice.model, api_key=key, base_url=base_url)


def _elevenlabs_tts(choice: ModelChoice, env: Mapping[str, str]) -> tts.TTS[Any]:
    key = env.get("ELEVEN_API_KEY", "")
    if choice.variant:
        return elevenlabs.TTS(model=choice.model, voice_id=choice.variant, api_key=key)
    return elevenlabs.TTS(model=choice.model, api_key=key)


_PLUGINS: dict[tuple[ModelKind, str], _Plugin] = {
    ("stt", "deepgram"): _Plugin("livekit-plugins-deepgram", "DEEPGRAM_API_KEY", _deepgram_stt),
    ("llm", "openai"): _Plugin("livekit-plugins-openai", "OPENAI_API_KEY", _openai_llm),
    ("tts", "elevenlabs"): _Plugin("livekit-plugins-elevenlabs", "ELEVEN_API_KEY", _elevenlabs_tts),
}


def _inference(choice: ModelChoice, env: Mapping[str, str]) -> Instance | None:
    key = env.get("LIVEKIT_INFERENCE_API_KEY") or env.get("LIVEKIT_API_KEY")
    secret = env.get("LIVEKIT_INFERENCE_API_SECRET") or env.get("LIVEKIT_API_SECRET")
    if not (key and secret):
        return None
    descriptor = f"{choice.provider}/{choice.model}"
    if choice.kind == "stt":
        return inference.STT(descriptor, language=choice.variant or NOT_GIVEN, api_key=key, api_secret=secret)
    if choice.kind == "tts":
        return inference.TTS(descriptor, voice=choice.variant or NOT_GIVEN, api_key=key, api_secret=secret)
    return inference.LLM(choice.value, api_key=key, api_secret=secret)


def build_model(choice: ModelChoice, *, env: Mapping[str, str] | None = None) -> BuiltModel:
    """Build one LiveKit model instance from a model choice (no network I/O).

    The provider plugin is used when its key is set (``OPENAI_BASE_URL`` alone
    counts for OpenAI); otherwise LiveKit Inference builds it from the same
    ``provider/model[:variant]`` descriptor. A custom voice (``is_custom``)
    can only use the plugin.

    Args:
        choice: A LiveKit model choice.
        env: Environment to read keys from (``os.environ`` by default).

    Returns:
        The instance, its choice and the path that built it.

    Raises:
        ValueError: ``choice`` is not a LiveKit choice.
        ModelBuildError: Neither path can build it; names each path and why.
    """
    if choice.platform != "livekit":
        raise ValueError(f"{choice.platform} model choice {choice.value!r} is not a LiveKit choice")
    env = os.environ if env is None else env
    secrets = [v for k, v in env.items() if k.endswith(("_API_KEY", "_API_SECRET")) and v]
    attempts: dict[str, str] = {}
    plugin = _PLUGINS.get((choice.kind, choice.provider))
    if plugin is None:
        supported = ", ".join(p for k, p in sorted(_PLUGINS) if k == choice.kind)
        attempts[PLUGIN_PATH] = f"no plugin supported for provider '{choice.provider}' (supported: {supported})"
    elif plugin.configured(env):
        try:
            return BuiltModel(choice, plugin.build(choice, env), "plugin")
        except (ValueError, openai_sdk.OpenAIError) as exc:
            attempts[PLUGIN_PATH] = f"{plugin.package}: {format_exception(exc, secrets)}"
    else:
        attempts[PLUGIN_PATH] = f"{plugin.key_env} not set"
    if choice.is_custom:
        attempts[INFERENCE_PATH] = "not possible for a custom voice (is_custom needs the provider plugin)"
        raise ModelBuildError(choice, attempts)
    try:
        instance = _inference(choice, env)
    except (ValueError, TypeError) as exc:
        attempts[INFERENCE_PATH] = format_exception(exc, secrets)
    else:
        if instance is not None:
            return BuiltModel(choice, instance, "inference")
        attempts[INFERENCE_PATH] = "LIVEKIT_API_KEY/LIVEKIT_API_SECRET (or LIVEKIT_INFERENCE_API_KEY/_SECRET) not set"
    raise ModelBuildError(choice, attempts)


def build_stt(config: AgentConfig, *, vad: Any = None, **options: Any) -> stt.STT[Any]:
    """Build the config's speech-to-text model; see :func:`build_llm` for ``options``.

    Args:
        config: A resolved LiveKit config.
        vad: A VAD for the runtime ``FallbackAdapter`` (needed only by non-streaming STTs).
        **options: ``runtime_fallback``, ``env``, ``alarms``.

    Raises:
        ModelBuildError: Neither the configured nor the snapshot's STT can be built.
    """
    adapter = lambda items: stt.FallbackAdapter(items, vad=vad)  # noqa: E731
    return _build(config, "stt", adapter, **options)  # type: ignore[return-value]


def build_llm(
    config: AgentConfig,
    *,
    runtime_fallback: bool = True,
    env: Mapping[str, str] | None = None,
    alarms: Alarms | None = None,
) -> llm.LLM[Any]:
    """Build the config's LLM, with snapshot fallback and runtime backup.

    If the configured choice cannot be built, the snapshot's is used and the
    model banner is logged. If it differs from the snapshot's, both are wrapped
    in ``llm.FallbackAdapter`` (configured first), so a provider outage mid-call
    moves to the snapshot's model (logged at ERROR).

    Args:
        config: A resolved LiveKit config.
        runtime_fallback: Offer the backup model (``config.backups``) as the runtime backup.
        env: Environment to read keys from (``os.environ`` by default).
        alarms: Where the model banner goes (a process-wide instance by default,
            so repeated failures are counted rather than bannered per call).

    Raises:
        ModelBuildError: Neither the configured nor the snapshot's LLM can be built.
    """
    options = {"runtime_fallback": runtime_fallback, "env": env, "alarms": alarms}
    return _build(config, "llm", llm.FallbackAdapter, **options)  # type: ignore[return-value,arg-type]


def build_tts(config: AgentConfig, **options: Any) -> tts.TTS[Any]:
    """Build the config's text-to-speech model; ``options`` as for :func:`build_llm`.

    Raises:
        ModelBuildError: Neither the configured nor the snapshot's TTS can be built.
    """
    return _build(config, "tts", tts.FallbackAdapter, **options)  # type: ignore[return-value]


def _build(
    config: AgentConfig,
    kind: ModelKind,
    adapter: Callable[[list[Any]], Instance],
    *,
    runtime_fallback: bool = True,
    env: Mapping[str, str] | None = None,
    alarms: Alarms | None = None,
) -> Instance:
    if config.platform != "livekit":
        raise ValueError(f"config is for {config.platform}, not livekit")
    choice: ModelChoice = getattr(config.models, kind)
    found = _backup_choice(config, kind)
    backup: ModelChoice | None = found.value if found and found.value != choice else None  # type: ignore[assignment]
    try:
        primary = build_model(choice, env=env)
    except ModelBuildError as exc:
        if backup is None or found is None:
            raise
        try:
            used = build_model(backup, env=env)
        except ModelBuildError as backup_exc:
            raise ModelBuildError(choice, exc.attempts, backup_exc) from None
        where = getattr(config.provenance.get(f"models.{kind}"), "location", None) or f"models.{kind}"
        (alarms or _ALARMS).fallback(
            FallbackEvent(
                f"models.{kind}",
                config.vertical,
                config.platform,
                Failure(Reason.INVALID_CONTENT, str(exc), where, exc),
                found,
                Source.SNAPSHOT,
                datetime.now(timezone.utc),
            )
        )
        return used.instance
    (alarms or _ALARMS).resolution(config.vertical, config.platform, (), healthy=[f"models.{kind}"])
    if not runtime_fallback or backup is None:
        return primary.instance
    try:
        second = build_model(backup, env=env)
        wrapped = adapter([primary.instance, second.instance])
    except (ModelBuildError, ValueError) as exc:
        logger.warning("No runtime backup for %s model '%s': %s", kind.upper(), choice.value, exc)
        return primary.instance
    _log_switches(wrapped, kind, {id(primary.instance): choice, id(second.instance): backup})
    return wrapped


def _backup_choice(config: AgentConfig, kind: ModelKind) -> Found | None:
    """The config's first backup for ``kind`` (the resolver fills it from the snapshot)."""
    for value, origin in config.backups.get(kind, ()):
        return Found(value, origin.taken_at, origin.location or origin.source.value)
    logger.warning("No snapshot %s model for %s to fall back to", kind.upper(), config.vertical)
    return None


def _log_switches(adapter: Any, kind: ModelKind, choices: Mapping[int, ModelChoice]) -> None:
    def changed(event: Any) -> None:
        instance = getattr(event, kind)
        choice = choices.get(id(instance))
        name = choice.value if choice else getattr(instance, "model", "?")
        if event.available:
            logger.warning("%s model '%s' is available again", kind.upper(), name)
        else:
            logger.error(
                "%s model '%s' failed mid-call; FallbackAdapter moves to the next model",
                kind.upper(),
                name,
                extra={"event": "model_runtime_fallback", "model_kind": kind, "model": name},
            )

    adapter.on(f"{kind}_availability_changed", changed)
