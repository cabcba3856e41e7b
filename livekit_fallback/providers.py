"""Build real LiveKit STT / LLM / TTS instances from a resolved config's model choices.

A :class:`~livekit_fallback.config.model.ModelChoice` becomes the provider's own
plugin when that provider's key is set: ``deepgram.STT``, ``openai.STT``,
``openai.LLM``, ``openai.TTS``, ``elevenlabs.TTS`` (OpenAI serves all three
kinds, so it is the cross-provider backup a chain can have with provider keys
only). A provider without a plugin here, or whose key is missing, is built
through LiveKit Inference from the same descriptor, but only where Inference
can answer (:func:`inference_status`: LiveKit Cloud, ``LIVEKIT_INFERENCE_URL``,
or ``LIVEKIT_FALLBACK_INFERENCE=1``); a self-hosted LiveKit server has none, so
there such a choice is unbuildable and says why, rather than adding an entry
that cannot answer.

:func:`build_chain` (and :func:`build_stt`, :func:`build_llm`,
:func:`build_tts`, which return only its instance) builds each model kind's
backup chain: the active choice, then ``AgentConfig.backups`` (the database's
ranked rows, the snapshot's backup list, the snapshot's active choice), then
the active model through the other route (plugin <-> LiveKit Inference) when
both are possible, without duplicates. Entries this process cannot build are
left out (one line each, once per process); two or more entries are wrapped in
LiveKit's ``FallbackAdapter`` with the call-tuned settings of
:mod:`livekit_fallback.failover`, so a provider failing mid-call moves the call
to the next entry within seconds (counted in
``livekit_fallback_model_switches_total``). An active choice that cannot be
built at all is the ``unbuildable`` failure: the ``MODEL UNAVAILABLE`` banner,
a ``fallbacks_total`` series, the degraded gauge, and the chain's provenance
(:func:`effective_config` puts it into the call's config).

Keys are read when building, never at import: ``DEEPGRAM_API_KEY``,
``OPENAI_API_KEY``, ``ELEVEN_API_KEY`` (and ``DEEPGRAM_BASE_URL``,
``OPENAI_BASE_URL``, ``ELEVEN_BASE_URL`` for a regional endpoint or proxy); for Inference
``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET`` (or ``LIVEKIT_INFERENCE_API_*``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import openai as openai_sdk
from livekit.agents import inference, llm, stt, tts
from livekit.agents.types import NOT_GIVEN

# Plugins refuse to register off the main thread, so they are imported here, at module import.
from livekit.plugins import deepgram, elevenlabs, openai  # noqa: F401

from . import metrics
from . import plugin as _plugin  # noqa: F401  (registers the LiveKit plugin)
from .config.alarms import FallbackEvent
from .config.model import AgentConfig, ModelChoice, ModelKind, Models, Provenance, Reason, Source
from .config.model_alarms import ModelAlarms
from .config.sources.base import Failure, Found, format_exception
from .errors import ModelBuildError
from .failover import BoundedDeepgramSTT, build_adapter, failover_settings
from .log import logger
from .switches import watch_switches

__all__ = [
    "BuiltModel",
    "ModelBuildError",
    "ModelChain",
    "build_chain",
    "build_llm",
    "build_model",
    "build_stt",
    "build_tts",
    "effective_config",
    "inference_status",
]

Route = Literal["plugin", "inference"]

Instance = stt.STT[Any] | llm.LLM[Any] | tts.TTS[Any]

_ALARMS = ModelAlarms()
"""Model-build fallbacks of this process: a full banner first, then counted short lines."""

PLUGIN_PATH = "provider plugin"
INFERENCE_PATH = "LiveKit Inference"
INFERENCE_ENV = "LIVEKIT_FALLBACK_INFERENCE"
"""``1`` / ``0``: LiveKit Inference can / cannot answer here, whatever ``LIVEKIT_URL`` says."""


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
    path: Route


@dataclass(frozen=True)
class ModelChain:
    """One model kind's runtime chain, as built for a call.

    Attributes:
        kind: ``stt``, ``llm`` or ``tts``.
        instance: What the session uses: the ``FallbackAdapter`` over
            ``models`` when there are two or more, else the one model.
        models: The built entries, in order; the call starts on the first.
        provenance: Where the first entry came from; its reason is
            ``unbuildable`` when the configured choice could not be built.
        unbuildable: The configured choice's build error, when it could not be built.
    """

    kind: ModelKind
    instance: Instance
    models: tuple[BuiltModel, ...]
    provenance: Provenance
    unbuildable: ModelBuildError | None = None


@dataclass(frozen=True)
class _Plugin:
    package: str
    key_env: str
    build: Callable[[ModelChoice, Mapping[str, str]], Instance]

    keyless_base_url: bool = False
    """A local OpenAI-compatible LLM endpoint (``OPENAI_BASE_URL``) needs no key; speech endpoints do."""

    def configured(self, env: Mapping[str, str]) -> bool:
        return bool(env.get(self.key_env)) or (self.keyless_base_url and bool(env.get("OPENAI_BASE_URL")))


def _deepgram_stt(choice: ModelChoice, env: Mapping[str, str]) -> stt.STT[Any]:
    options: dict[str, Any] = {"model": choice.model, "api_key": env.get("DEEPGRAM_API_KEY", "")}
    if choice.variant:
        options["language"] = choice.variant
    if env.get("DEEPGRAM_BASE_URL"):
        options["base_url"] = env["DEEPGRAM_BASE_URL"]
    return BoundedDeepgramSTT(silence_limit=failover_settings(env).stt.attempt_timeout, **options)


def _openai_access(env: Mapping[str, str]) -> dict[str, Any]:
    base_url = env.get("OPENAI_BASE_URL") or NOT_GIVEN
    # A local OpenAI-compatible endpoint needs no key, but the SDK insists on one.
    return {"api_key": env.get("OPENAI_API_KEY") or ("not-needed" if base_url else ""), "base_url": base_url}


def _openai_llm(choice: ModelChoice, env: Mapping[str, str]) -> llm.LLM[Any]:
    return openai.LLM(model=choice.model, **_openai_access(env))


def _openai_stt(choice: ModelChoice, env: Mapping[str, str]) -> stt.STT[Any]:
    return openai.STT(model=choice.model, language=choice.variant or "en", **_openai_access(env))


def _openai_tts(choice: ModelChoice, env: Mapping[str, str]) -> tts.TTS[Any]:
    if choice.variant:
        return openai.TTS(model=choice.model, voice=choice.variant, **_openai_access(env))
    return openai.TTS(model=choice.model, **_openai_access(env))


def _elevenlabs_tts(choice: ModelChoice, env: Mapping[str, str]) -> tts.TTS[Any]:
    options: dict[str, Any] = {"model": choice.model, "api_key": env.get("ELEVEN_API_KEY", "")}
    if choice.variant:
        options["voice_id"] = choice.variant
    if env.get("ELEVEN_BASE_URL"):
        options["base_url"] = env["ELEVEN_BASE_URL"]
    return elevenlabs.TTS(**options)


_PLUGINS: dict[tuple[ModelKind, str], _Plugin] = {
    ("stt", "deepgram"): _Plugin("livekit-plugins-deepgram", "DEEPGRAM_API_KEY", _deepgram_stt),
    ("stt", "openai"): _Plugin("livekit-plugins-openai", "OPENAI_API_KEY", _openai_stt),
    ("llm", "openai"): _Plugin("livekit-plugins-openai", "OPENAI_API_KEY", _openai_llm, keyless_base_url=True),
    ("tts", "openai"): _Plugin("livekit-plugins-openai", "OPENAI_API_KEY", _openai_tts),
    ("tts", "elevenlabs"): _Plugin("livekit-plugins-elevenlabs", "ELEVEN_API_KEY", _elevenlabs_tts),
}


def inference_status(env: Mapping[str, str] | None = None) -> str | None:
    """Whether LiveKit Inference can answer from this process: ``None`` if it can, else why not.

    It can on LiveKit Cloud (``LIVEKIT_URL`` on ``livekit.cloud``), through a gateway
    named by ``LIVEKIT_INFERENCE_URL``, or when ``LIVEKIT_FALLBACK_INFERENCE=1``
    says so; ``LIVEKIT_FALLBACK_INFERENCE=0`` turns it off. A self-hosted LiveKit
    server has no Inference, though its workers have ``LIVEKIT_API_KEY`` / ``_SECRET``.
    """
    env = os.environ if env is None else env
    switch = env.get(INFERENCE_ENV, "").strip().lower()
    if switch in ("1", "true", "yes", "on"):
        return None
    if switch in ("0", "false", "no", "off"):
        return f"turned off by {INFERENCE_ENV}={env[INFERENCE_ENV].strip()}"
    if env.get("LIVEKIT_INFERENCE_URL"):
        return None
    host = urlsplit(env.get("LIVEKIT_URL", "")).hostname or ""
    if host == "livekit.cloud" or host.endswith(".livekit.cloud"):
        return None
    where = f"LIVEKIT_URL {host} is not LiveKit Cloud" if host else "LIVEKIT_URL is not set"
    return (
        f"not available here ({where} and LIVEKIT_INFERENCE_URL is not set;"
        f" set {INFERENCE_ENV}=1 if this server has Inference)"
    )


def _inference_credentials(env: Mapping[str, str]) -> tuple[str, str] | None:
    key = env.get("LIVEKIT_INFERENCE_API_KEY") or env.get("LIVEKIT_API_KEY")
    secret = env.get("LIVEKIT_INFERENCE_API_SECRET") or env.get("LIVEKIT_API_SECRET")
    return (key, secret) if key and secret else None


def _inference(choice: ModelChoice, env: Mapping[str, str]) -> Instance | None:
    credentials = _inference_credentials(env)
    if credentials is None:
        return None
    key, secret = credentials
    descriptor = f"{choice.provider}/{choice.model}"
    if choice.kind == "stt":
        return inference.STT(descriptor, language=choice.variant or NOT_GIVEN, api_key=key, api_secret=secret)
    if choice.kind == "tts":
        return inference.TTS(descriptor, voice=choice.variant or NOT_GIVEN, api_key=key, api_secret=secret)
    return inference.LLM(choice.value, api_key=key, api_secret=secret)


def build_model(choice: ModelChoice, *, env: Mapping[str, str] | None = None, route: Route | None = None) -> BuiltModel:
    """Build one LiveKit model instance from a model choice (no network I/O).

    The provider plugin is used when its key is set (``OPENAI_BASE_URL`` alone
    counts for OpenAI); otherwise LiveKit Inference builds it from the same
    ``provider/model[:variant]`` descriptor. A custom voice (``is_custom``)
    can only use the plugin.

    Args:
        choice: A LiveKit model choice.
        env: Environment to read keys from (``os.environ`` by default).
        route: Only this route (``plugin`` or ``inference``); both in that order by default.

    Returns:
        The instance, its choice and the path that built it.

    Raises:
        ValueError: ``choice`` is not a LiveKit choice.
        ModelBuildError: No allowed route can build it; names each route and why.
    """
    if choice.platform != "livekit":
        raise ValueError(f"{choice.platform} model choice {choice.value!r} is not a LiveKit choice")
    env = os.environ if env is None else env
    secrets = [v for k, v in env.items() if k.endswith(("_API_KEY", "_API_SECRET")) and v]
    attempts: dict[str, str] = {}
    if route != "inference":
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
    if route == "plugin":
        raise ModelBuildError(choice, attempts)
    if choice.is_custom:
        attempts[INFERENCE_PATH] = "not possible for a custom voice (is_custom needs the provider plugin)"
        raise ModelBuildError(choice, attempts)
    unavailable = inference_status(env)
    try:
        instance = _inference(choice, env) if unavailable is None else None
    except (ValueError, TypeError) as exc:
        attempts[INFERENCE_PATH] = format_exception(exc, secrets)
    else:
        if instance is not None:
            return BuiltModel(choice, instance, "inference")
        attempts[INFERENCE_PATH] = (
            "LIVEKIT_API_KEY/LIVEKIT_API_SECRET (or LIVEKIT_INFERENCE_API_KEY/_SECRET) not set"
            if not _inference_credentials(env)
            else unavailable or "not built"
        )
    raise ModelBuildError(choice, attempts)


def build_stt(config: AgentConfig, *, vad: Any = None, **options: Any) -> stt.STT[Any]:
    """Build the config's speech-to-text chain; see :func:`build_llm` for ``options``.

    Args:
        config: A resolved LiveKit config.
        vad: A VAD for the runtime ``FallbackAdapter`` (needed only by non-streaming STTs).
        **options: ``runtime_fallback``, ``env``, ``alarms``.

    Raises:
        ModelBuildError: No entry of the chain can be built.
    """
    return cast("stt.STT[Any]", build_chain(config, "stt", vad=vad, **options).instance)


def build_llm(
    config: AgentConfig,
    *,
    runtime_fallback: bool = True,
    env: Mapping[str, str] | None = None,
    alarms: ModelAlarms | None = None,
) -> llm.LLM[Any]:
    """Build the config's LLM chain (see :func:`build_chain`) and return what the session uses.

    Args:
        config: A resolved LiveKit config.
        runtime_fallback: Wrap the buildable chain in ``llm.FallbackAdapter``
            (with ``False``: only the first buildable entry).
        env: Environment to read keys from (``os.environ`` by default).
        alarms: Where the ``MODEL UNAVAILABLE`` banner goes (by default through
            the default resolver's state: one banner per model per incident
            per machine, then counted lines).

    Raises:
        ModelBuildError: No entry of the chain can be built.
    """
    chain = build_chain(config, "llm", runtime_fallback=runtime_fallback, env=env, alarms=alarms)
    return cast("llm.LLM[Any]", chain.instance)


def build_tts(config: AgentConfig, **options: Any) -> tts.TTS[Any]:
    """Build the config's text-to-speech chain; ``options`` as for :func:`build_llm`.

    Raises:
        ModelBuildError: No entry of the chain can be built.
    """
    return cast("tts.TTS[Any]", build_chain(config, "tts", **options).instance)


def build_chain(
    config: AgentConfig,
    kind: ModelKind,
    *,
    runtime_fallback: bool = True,
    env: Mapping[str, str] | None = None,
    alarms: ModelAlarms | None = None,
    vad: Any = None,
) -> ModelChain:
    """Build one model kind's backup chain for a call (no network I/O; builds TLS contexts).

    The chain is the active choice, ``config.backups[kind]`` in order, then the
    active model through its other route, without duplicates; entries that
    cannot be built here are left out (logged once per process). When the
    active choice itself cannot be built, the first buildable entry replaces
    it and the failure is reported as ``unbuildable`` (banner, metrics).

    Args:
        config: A resolved LiveKit config.
        kind: ``stt``, ``llm`` or ``tts``.
        runtime_fallback: Build and wrap the whole chain; ``False`` builds only its first buildable entry.
        env: Environment to read keys from (``os.environ`` by default).
        alarms: Where the ``MODEL UNAVAILABLE`` banner goes.
        vad: A VAD for the STT ``FallbackAdapter`` (non-streaming STTs need one).

    Raises:
        ValueError: ``config`` is not a LiveKit config.
        ModelBuildError: No entry can be built (names the active choice and the first backup).
    """
    if config.platform != "livekit":
        raise ValueError(f"config is for {config.platform}, not livekit")
    key = f"models.{kind}"
    active: ModelChoice = getattr(config.models, kind)
    active_origin = config.provenance.get(key) or Provenance(source=Source.DATABASE)
    candidates = [(active, active_origin)]
    for choice, origin in config.backups.get(kind, ()):
        if all(choice.value != seen.value for seen, _ in candidates):
            candidates.append((choice, origin))
    built: list[tuple[BuiltModel, Provenance]] = []
    failed: ModelBuildError | None = None
    backups_failed: list[ModelBuildError] = []
    for position, (choice, origin) in enumerate(candidates):
        if built and not runtime_fallback:
            break
        try:
            built.append((build_model(choice, env=env), origin))
        except ModelBuildError as exc:
            if position == 0:
                failed = exc
            else:
                backups_failed.append(exc)
                _left_out(kind, exc)
    if not built:
        assert failed is not None
        raise ModelBuildError(active, failed.attempts, _nested(backups_failed))
    if failed is None and runtime_fallback:
        other: Route = "inference" if built[0][0].path == "plugin" else "plugin"
        with contextlib.suppress(ModelBuildError):  # the other route is not configured: nothing to add
            built.append((build_model(active, env=env, route=other), active_origin))
    sink = alarms or _ALARMS
    first, origin = built[0]
    provenance = active_origin
    if failed is not None:
        provenance = _report_unbuildable(config, kind, failed, first.choice, origin, sink)
    else:
        sink.buildable(config.vertical, config.platform, key)
    models = tuple(b for b, _ in built)
    instance = first.instance
    if len(models) > 1:
        try:
            instance = build_adapter(kind, [m.instance for m in models], vad=vad, settings=failover_settings(env))
        except ValueError as exc:
            logger.warning("No runtime backup for %s model '%s': %s", kind.upper(), first.choice.value, exc)
            models = models[:1]
        else:
            watch_switches(instance, kind, {id(m.instance): _label(m) for m in models}, config, sink)
    return ModelChain(kind, instance, models, provenance, failed)


def _nested(errors: list[ModelBuildError]) -> ModelBuildError | None:
    """The backups' build errors as one chain (each names the next), so the final error lists them all."""
    nested: ModelBuildError | None = None
    for error in reversed(errors):
        nested = ModelBuildError(error.choice, error.attempts, nested)
    return nested


def effective_config(config: AgentConfig, chains: Iterable[ModelChain]) -> AgentConfig:
    """The config as the call runs it: each kind's first built model, and its provenance.

    An ``unbuildable`` active choice is replaced by the model used instead,
    with provenance reason ``unbuildable``, so ``config.is_degraded`` and
    ``config.degraded`` say so.
    """
    changed = [chain for chain in chains if chain.unbuildable is not None]
    if not changed:
        return config
    models = {kind: getattr(config.models, kind) for kind in ("stt", "llm", "tts")}
    provenance = dict(config.provenance)
    for chain in changed:
        models[chain.kind] = chain.models[0].choice
        provenance[f"models.{chain.kind}"] = chain.provenance
    return config.model_copy(update={"models": Models(**models), "provenance": provenance})


def _label(model: BuiltModel) -> str:
    suffix = (
        " (LiveKit Inference)"
        if model.path == "inference" and _PLUGINS.get((model.choice.kind, model.choice.provider))
        else ""
    )
    return model.choice.value + suffix


_LEFT_OUT: set[tuple[str, str]] = set()


def _left_out(kind: ModelKind, exc: ModelBuildError) -> None:
    """Say once per process that a backup cannot be built here (the chain is shorter than configured)."""
    if (kind, exc.choice.value) in _LEFT_OUT:
        return
    _LEFT_OUT.add((kind, exc.choice.value))
    logger.warning(
        "%s backup model '%s' cannot be built in this process and is left out of the backup chain: %s",
        kind.upper(),
        exc.choice.value,
        "; ".join(f"{route}: {why}" for route, why in exc.attempts.items()),
        extra={"event": "model_backup_unbuildable", "model_kind": kind, "model": exc.choice.value},
    )


def _report_unbuildable(
    config: AgentConfig,
    kind: ModelKind,
    exc: ModelBuildError,
    used: ModelChoice,
    origin: Provenance,
    sink: ModelAlarms,
) -> Provenance:
    """The MODEL UNAVAILABLE banner and metrics; the provenance of the model used instead."""
    key = f"models.{kind}"
    configured = config.provenance.get(key)
    location = (configured.location if configured else None) or key
    failure = Failure(Reason.UNBUILDABLE, str(exc), location, exc)
    found = Found(used, origin.taken_at, origin.location or origin.source.value)
    now = datetime.now(timezone.utc)
    sink.unbuildable(FallbackEvent(key, config.vertical, config.platform, failure, found, origin.source, now))
    metrics.FALLBACKS.labels(key, config.platform, origin.source.value, Reason.UNBUILDABLE.value).inc()
    return Provenance(
        source=origin.source,
        reason=Reason.UNBUILDABLE,
        detail=str(exc),
        taken_at=origin.taken_at,
        location=origin.location,
    )
