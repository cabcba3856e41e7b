"""How fast a call leaves a failing speech or language model: per-kind settings and the adapters using them.

LiveKit's ``FallbackAdapter`` defaults suit batch work, not a phone call: a
refusing TTS is retried twice with back-off before its backup speaks (2.1 s),
a hanging one gets three 10 s attempts (32 s of silence), a chain whose every
model fails is retried as a whole three more times (up to 21.6 s), and an LLM
gets 5 s. On a call the caller hears that as silence, so each model kind gets
settings chosen for a phone call, read from the environment when the chain is
built:

=====================================  =======  =================================================
Setting (environment variable)         Default  Meaning
=====================================  =======  =================================================
``LIVEKIT_FALLBACK_STT_ATTEMPT_TIMEOUT``   2.5  Seconds to connect, and seconds of audio sent to a
                                                streaming STT without any answer, before it is
                                                given up for the next model.
``LIVEKIT_FALLBACK_LLM_ATTEMPT_TIMEOUT``   2.0  Seconds to the first streamed token.
``LIVEKIT_FALLBACK_TTS_ATTEMPT_TIMEOUT``   2.0  Seconds to the first audio after text was sent.
``LIVEKIT_FALLBACK_{KIND}_RETRIES``          0  Retries of the same model before moving on (the
                                                next model is the retry).
``LIVEKIT_FALLBACK_{KIND}_RETRY_INTERVAL`` 0.5  Seconds between those retries.
=====================================  =======  =================================================

A failed model is tried again in the background by LiveKit's adapter (a
recovery probe after each failed request) and served again once a probe
succeeds; the chain as a whole is never retried, so when every model of a kind
fails the session gets one unrecoverable error and the call ends (see
:func:`~livekit_fallback.call.start_call`). A chain of one model uses the same
settings through the session's ``conn_options`` (:func:`session_connect_options`).

Some plugins hide a hang from the adapter with their own reconnect loop: the
Deepgram stream reconnects when its socket drops and otherwise waits for
results forever. :class:`BoundedDeepgramSTT` bounds it: audio sent for the STT
attempt timeout without a single message back (Deepgram answers even silence
with empty results) fails the stream, so the adapter switches.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping
from typing import Any

from livekit import rtc
from livekit.agents import APITimeoutError, llm, stt, tts
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.plugins import deepgram, openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config.keys import ModelKind

__all__ = [
    "BoundedDeepgramSTT",
    "FailoverSettings",
    "KindFailover",
    "build_adapter",
    "failover_settings",
    "session_connect_options",
]

ENV_PREFIX = "LIVEKIT_FALLBACK_"


class KindFailover(BaseModel):
    """One model kind's failover settings.

    Attributes:
        attempt_timeout: Seconds one model gets before the next one is tried (see the module docstring).
        retries: Retries of the same model before moving on.
        retry_interval: Seconds between those retries.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempt_timeout: float = Field(gt=0)
    retries: int = Field(default=0, ge=0)
    retry_interval: float = Field(default=0.5, ge=0)

    @property
    def connect_options(self) -> APIConnectOptions:
        """The options for one model's attempts (and for a chain of one model)."""
        return APIConnectOptions(
            max_retry=self.retries, timeout=self.attempt_timeout, retry_interval=self.retry_interval
        )

    @property
    def chain_options(self) -> APIConnectOptions:
        """The options for the chain as a whole: never retried, each model is the retry of the one before."""
        return APIConnectOptions(max_retry=0, timeout=self.attempt_timeout, retry_interval=self.retry_interval)


class FailoverSettings(BaseModel):
    """Failover settings of the three model kinds (defaults chosen for a phone call)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stt: KindFailover = KindFailover(attempt_timeout=2.5)
    llm: KindFailover = KindFailover(attempt_timeout=2.0)
    tts: KindFailover = KindFailover(attempt_timeout=2.0)

    def of(self, kind: ModelKind) -> KindFailover:
        """The settings of one kind."""
        found: KindFailover = getattr(self, kind)
        return found


_FIELDS = {"attempt_timeout": "ATTEMPT_TIMEOUT", "retries": "RETRIES", "retry_interval": "RETRY_INTERVAL"}


def failover_settings(env: Mapping[str, str] | None = None) -> FailoverSettings:
    """Read the failover settings from the environment (``LIVEKIT_FALLBACK_{KIND}_{SETTING}``).

    Raises:
        ValueError: A variable is set to something that is not a valid value; names the variable.
    """
    env = os.environ if env is None else env
    defaults = FailoverSettings()
    kinds: dict[str, KindFailover] = {}
    for kind in ("stt", "llm", "tts"):
        values: dict[str, Any] = defaults.of(kind).model_dump()
        for field, suffix in _FIELDS.items():
            name = f"{ENV_PREFIX}{kind.upper()}_{suffix}"
            if env.get(name, "").strip():
                values[field] = env[name].strip()
        try:
            kinds[kind] = KindFailover(**values)
        except ValidationError as exc:
            wrong = ", ".join(f"{ENV_PREFIX}{kind.upper()}_{_FIELDS[str(e['loc'][0])]}" for e in exc.errors())
            raise ValueError(f"invalid failover setting {wrong}: {exc.errors()[0]['msg']}") from None
    return FailoverSettings(**kinds)


def session_connect_options(settings: FailoverSettings | None = None) -> SessionConnectOptions:
    """``AgentSession(conn_options=...)`` with the call-tuned settings (for chains of one model).

    The session's first unrecoverable error of a kind already means its whole chain failed.
    """
    settings = settings or failover_settings()
    return SessionConnectOptions(
        stt_conn_options=settings.stt.connect_options,
        llm_conn_options=settings.llm.connect_options,
        tts_conn_options=settings.tts.connect_options,
    )


_UNCHOSEN = (DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions(max_retry=0, timeout=DEFAULT_API_CONNECT_OPTIONS.timeout))
"""LiveKit's default options (the session's and the adapters'): replaced by ours, unlike a caller's own."""


def _chain_options(given: APIConnectOptions, settings: KindFailover) -> APIConnectOptions:
    return settings.chain_options if given in _UNCHOSEN else given


async def _close_all(instances: list[Any]) -> None:
    """The chain built its models, so closing the chain closes them (LiveKit's adapter leaves them open)."""
    for instance in instances:
        model = getattr(instance, "wrapped_stt", instance)  # LiveKit's StreamAdapter around a batch STT
        for closing in dict.fromkeys((instance, model)):
            with contextlib.suppress(Exception):
                await closing.aclose()
        if isinstance(model, openai.STT):  # its aclose leaves the HTTP client it built open
            await model._client.close()


class _STTChain(stt.FallbackAdapter):
    def __init__(self, instances: list[stt.STT[Any]], vad: Any, settings: KindFailover) -> None:
        super().__init__(
            instances,
            vad=vad,
            attempt_timeout=settings.attempt_timeout,
            max_retry_per_stt=settings.retries,
            retry_interval=settings.retry_interval,
        )
        self._failover = settings

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        return super().stream(language=language, conn_options=_chain_options(conn_options, self._failover))

    async def aclose(self) -> None:
        await super().aclose()
        await _close_all(self._stt_instances)


class _LLMChain(llm.FallbackAdapter):
    def __init__(self, instances: list[llm.LLM[Any]], settings: KindFailover) -> None:
        super().__init__(
            instances,
            attempt_timeout=settings.attempt_timeout,
            max_retry_per_llm=settings.retries,
            retry_interval=settings.retry_interval,
        )
        self._failover = settings

    def chat(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS, **kwargs: Any) -> llm.LLMStream:
        return super().chat(conn_options=_chain_options(conn_options, self._failover), **kwargs)

    async def aclose(self) -> None:
        await super().aclose()
        await _close_all(self._llm_instances)


class _TTSChain(tts.FallbackAdapter):
    """Each TTS attempt's timeout is the stream's: the chain's options carry the kind's attempt timeout."""

    def __init__(self, instances: list[tts.TTS[Any]], settings: KindFailover) -> None:
        super().__init__(instances, max_retry_per_tts=settings.retries)
        self._failover = settings

    def synthesize(  # type: ignore[override]
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return super().synthesize(text, conn_options=_chain_options(conn_options, self._failover))

    def stream(  # type: ignore[override]
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        return super().stream(conn_options=_chain_options(conn_options, self._failover))

    async def aclose(self) -> None:
        await super().aclose()
        await _close_all(self._tts_instances)


def build_adapter(
    kind: ModelKind, instances: list[Any], *, vad: Any = None, settings: FailoverSettings | None = None
) -> stt.STT[Any] | llm.LLM[Any] | tts.TTS[Any]:
    """Wrap a kind's built models in LiveKit's ``FallbackAdapter`` with the call-tuned settings.

    An STT chain with a non-streaming model (``openai/gpt-4o-mini-transcribe``)
    needs a VAD to cut the audio into utterances: the session's when given, else
    LiveKit's local Silero VAD.

    Raises:
        ValueError: LiveKit refuses the combination.
    """
    settings = settings or failover_settings()
    if kind == "stt":
        if vad is None and not all(i.capabilities.streaming for i in instances):
            from livekit.agents.inference import VAD  # local Silero, loaded only when a chain needs it

            vad = VAD(model="silero")
        return _STTChain(instances, vad, settings.stt)
    if kind == "tts":
        return _TTSChain(instances, settings.tts)
    return _LLMChain(instances, settings.llm)


class BoundedDeepgramSTT(deepgram.STT):
    """``deepgram.STT`` whose stream fails when audio goes unanswered for the STT attempt timeout.

    Args:
        silence_limit: Seconds of audio sent without any message back before the stream fails.
        **options: ``deepgram.STT``'s arguments.
    """

    def __init__(self, *, silence_limit: float, **options: Any) -> None:
        super().__init__(**options)
        self._silence_limit = silence_limit

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> deepgram.stt.SpeechStream:
        """A Deepgram stream that fails when its audio goes unanswered (see the class docstring)."""
        config = self._sanitize_options(language=language)
        stream = _BoundedSpeechStream(
            stt=self,
            conn_options=conn_options,
            opts=config,
            api_key=self._api_key,
            http_session=self._ensure_session(),
            base_url=self._opts.endpoint_url,
            silence_limit=self._silence_limit,
        )
        self._streams.add(stream)
        return stream


class _BoundedSpeechStream(deepgram.stt.SpeechStream):
    def __init__(self, *, silence_limit: float, **options: Any) -> None:
        super().__init__(**options)
        self._silence_limit = silence_limit
        self._unanswered_since: float | None = None
        self._given_up = False

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        if self._given_up:  # the adapter may forward a few more frames before it switches
            return
        super().push_frame(frame)
        if self._unanswered_since is None:
            self._unanswered_since = time.monotonic()

    def _process_stream_event(self, data: dict[str, Any]) -> None:
        self._unanswered_since = None
        super()._process_stream_event(data)

    async def _run(self) -> None:
        self._unanswered_since = None
        run = asyncio.ensure_future(super()._run())
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=min(0.25, self._silence_limit / 4))
                since = self._unanswered_since
                if not run.done() and since is not None and time.monotonic() - since > self._silence_limit:
                    self._given_up = True
                    raise APITimeoutError(
                        f"deepgram sent nothing back for {self._silence_limit:.1f} s of audio", retryable=True
                    )
            await run
        finally:
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run
