"""Speech and LLM chains on the wire: the real plugins against local provider stand-ins that refuse or hang.

Each chain is the package's own (the shipped snapshot's models and backups,
built by ``build_chain``); the primaries run against the Deepgram / ElevenLabs
stand-in, the backups against the OpenAI stand-in. How fast each case fails
over is measured by ``benchmarks/failover.py``, not here.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import APIConnectionError, llm, stt, utils

from livekit_fallback.config.model_alarms import ModelAlarms
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.state import ResolutionState
from livekit_fallback.metrics import REGISTRY
from livekit_fallback.providers import ModelChain, build_chain
from tests.helpers_livekit import snapshot_config
from tests.openai_server import OpenAICompatibleServer
from tests.speech_servers import Mode, SpeechProviderServer

pytestmark = pytest.mark.integration

SAID = "Yes, I am the homeowner."


def _alarms() -> ModelAlarms:
    """Model alarms over a state of their own (nothing shared with other runs)."""
    return ModelAlarms(ResolutionState(MemoryStorage(), "snapshot"))


def switches(kind: str, source: str, target: str) -> float:
    """How often a chain of ``kind`` moved from one model to another."""
    labels = {"kind": kind, "from": source, "to": target}
    return REGISTRY.get_sample_value("livekit_fallback_model_switches_total", labels) or 0.0


@pytest.fixture(autouse=True)
async def http_session() -> AsyncIterator[None]:
    """The HTTP session LiveKit's job context gives plugins (closed after the test)."""
    async with utils.http_context.open():
        yield


@pytest.fixture
def timeline() -> list[str]:
    """Requests to the primary's and the backup's stand-ins, in the order they arrived."""
    return []


@pytest.fixture
async def backup(timeline: list[str]) -> AsyncIterator[OpenAICompatibleServer]:
    """The OpenAI stand-in serving the backups (chat, speech, transcriptions)."""
    async with OpenAICompatibleServer(
        lambda body: "Backup here.", transcript="yes I am the homeowner", timeline=timeline
    ) as srv:
        yield srv


def keys(primary: SpeechProviderServer, backup: OpenAICompatibleServer, **extra: str) -> dict[str, str]:
    """Provider keys only (no LiveKit Inference), each plugin pointed at its stand-in."""
    return {
        "DEEPGRAM_API_KEY": "dg-test",
        "DEEPGRAM_BASE_URL": primary.deepgram_url,
        "ELEVEN_API_KEY": "el-test",
        "ELEVEN_BASE_URL": primary.elevenlabs_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": backup.base_url,
        **extra,
    }


async def close(chain: ModelChain) -> None:
    """Close the chain (and so every model it built)."""
    await chain.instance.aclose()


async def speak(chain: ModelChain, text: str) -> int:
    """Stream ``text`` through a TTS chain the way a session does; returns the audio bytes heard."""
    heard = 0
    async with chain.instance.stream() as stream:  # type: ignore[union-attr]
        stream.push_text(text)
        stream.flush()
        stream.end_input()
        async for audio in stream:
            heard += len(audio.frame.data.tobytes())
    return heard


@pytest.mark.parametrize("mode", ["refuse", "hang"])
async def test_a_failing_elevenlabs_primary_is_replaced_by_the_openai_backup(
    mode: Mode, backup: OpenAICompatibleServer, timeline: list[str]
) -> None:
    """ElevenLabs refusing or never answering: the caller hears the openai TTS backup, once, no retries first."""
    config = await snapshot_config()
    before = switches("tts", config.models.tts.value, "openai/gpt-4o-mini-tts:alloy")
    async with SpeechProviderServer(mode, timeline=timeline) as primary:
        chain = build_chain(config, "tts", env=keys(primary, backup), alarms=_alarms())
        try:
            assert [m.choice.value for m in chain.models] == [config.models.tts.value, "openai/gpt-4o-mini-tts:alloy"]
            assert await speak(chain, "Hello, am I speaking with the homeowner?") > 0
        finally:
            await close(chain)
    assert timeline[:2] == ["tts", "speech"]  # not retried before the backup spoke (later: recovery probes)
    assert backup.audio_requests[0] == ("speech", "gpt-4o-mini-tts")
    assert switches("tts", config.models.tts.value, "openai/gpt-4o-mini-tts:alloy") == before + 1


async def test_a_healthy_elevenlabs_primary_speaks_and_the_backup_stays_idle(backup: OpenAICompatibleServer) -> None:
    """The default path: ElevenLabs answers, the openai backup gets no request."""
    config = await snapshot_config()
    async with SpeechProviderServer("ok") as primary:
        chain = build_chain(config, "tts", env=keys(primary, backup), alarms=_alarms())
        try:
            assert await speak(chain, "Hello, am I speaking with the homeowner?") > 0
        finally:
            await close(chain)
    assert primary.texts and backup.audio_requests == []


async def test_a_tts_chain_failing_entirely_fails_once_without_retrying_the_chain(
    backup: OpenAICompatibleServer, timeline: list[str]
) -> None:
    """Both TTS models down: one error for the session (which ends the call), each model tried once."""
    config = await snapshot_config()
    backup.fail_models.add("gpt-4o-mini-tts")
    async with SpeechProviderServer("refuse", timeline=timeline) as primary:
        chain = build_chain(config, "tts", env=keys(primary, backup), alarms=_alarms())
        errors: list[Any] = []
        chain.instance.on("error", errors.append)
        try:
            with pytest.raises(APIConnectionError, match="all TTSs failed"):
                await speak(chain, "Hello?")
        finally:
            await close(chain)
    assert timeline[:2] == ["tts", "speech"] and primary.connections["tts"] <= 2  # the second: a recovery probe
    assert [e.recoverable for e in errors] == [False]


async def test_an_llm_that_hangs_is_replaced_by_the_next_model(backup: OpenAICompatibleServer) -> None:
    """gpt-5 accepting and never answering: gpt-4.1-mini answers the same request."""
    config = await snapshot_config()
    backup.hang_models.add("gpt-5")
    env = {
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": backup.base_url,
        "LIVEKIT_FALLBACK_LLM_ATTEMPT_TIMEOUT": "0.5",
    }
    chain = build_chain(config, "llm", env=env, alarms=_alarms())
    try:
        ctx = llm.ChatContext()
        ctx.add_message(role="user", content="Hello?")
        text = ""
        async with chain.instance.chat(chat_ctx=ctx) as stream:  # type: ignore[union-attr]
            async for chunk in stream:
                text += (chunk.delta.content or "") if chunk.delta else ""
    finally:
        await close(chain)
    assert text == "Backup here."
    assert backup.models_requested[0] == "gpt-5" and "gpt-4.1-mini" in backup.models_requested  # (and probes)


def spoken(text: str, tmp: Path) -> list[rtc.AudioFrame]:
    """``text`` spoken by espeak-ng, as 20 ms frames."""
    path = tmp / "said.wav"
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
    with wave.open(str(path)) as wav:
        rate, data = wav.getframerate(), wav.readframes(wav.getnframes())
    return frames(data, rate)


def frames(data: bytes, rate: int) -> list[rtc.AudioFrame]:
    """16-bit mono PCM as 20 ms frames."""
    step = rate // 50 * 2
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    return [rtc.AudioFrame(c, rate, 1, len(c) // 2) for c in chunks if len(c) == step]


def silence(seconds: float, rate: int = 22050) -> list[rtc.AudioFrame]:
    """Silent 20 ms frames (at espeak-ng's rate: a stream takes one rate)."""
    return frames(bytes(int(seconds * rate) * 2), rate)


@pytest.fixture
def espeak() -> Iterator[None]:
    """espeak-ng is needed to speak to the STT (``.ci/run`` installs it)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (.ci/run installs it)")
    yield


async def listen(chain: ModelChain, audio: list[rtc.AudioFrame]) -> list[str]:
    """Push audio in real time to an STT chain; the final transcripts it produced."""
    finals: list[str] = []
    stream = chain.instance.stream()  # type: ignore[union-attr]

    async def read() -> None:
        async for event in stream:
            if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT and event.alternatives[0].text:
                finals.append(event.alternatives[0].text)

    reader = asyncio.create_task(read())
    try:
        for frame in audio:
            stream.push_frame(frame)
            await asyncio.sleep(frame.duration)
        stream.end_input()
        await asyncio.wait_for(reader, timeout=10)
    finally:
        reader.cancel()
        await stream.aclose()
    return finals


@pytest.mark.parametrize("mode", ["hang", "refuse"])
async def test_a_deepgram_primary_that_never_answers_is_replaced_by_the_openai_backup(
    mode: Mode, backup: OpenAICompatibleServer, timeline: list[str], espeak: None, tmp_path: Path
) -> None:
    """Deepgram accepting audio and never answering (or refusing): the openai STT backup transcribes the caller."""
    config = await snapshot_config()
    async with SpeechProviderServer(mode, timeline=timeline) as primary:
        env = keys(primary, backup, LIVEKIT_FALLBACK_STT_ATTEMPT_TIMEOUT="1.0")
        chain = build_chain(config, "stt", env=env, alarms=_alarms())
        try:
            assert [m.choice.value for m in chain.models][:2] == [
                config.models.stt.value,
                "openai/gpt-4o-mini-transcribe:en",
            ]
            finals = await listen(chain, [*silence(2.0), *spoken(SAID, tmp_path), *silence(1.0)])
        finally:
            await close(chain)
    assert finals == ["yes I am the homeowner"]
    assert timeline[0] == "listen" and primary.connections["listen"] <= 2  # one attempt (and one recovery probe)
    assert ("transcriptions", "gpt-4o-mini-transcribe") in backup.audio_requests


async def test_a_healthy_deepgram_primary_transcribes_and_the_backup_stays_idle(
    backup: OpenAICompatibleServer, espeak: None, tmp_path: Path
) -> None:
    """The default path: Deepgram answers (also during silence), so the watchdog never fires."""
    config = await snapshot_config()
    async with SpeechProviderServer("ok", transcript="yes speaking") as primary:
        chain = build_chain(config, "stt", env=keys(primary, backup))
        try:
            finals = await listen(chain, [*silence(2.0), *spoken(SAID, tmp_path), *silence(1.0)])
        finally:
            await close(chain)
    assert finals and set(finals) == {"yes speaking"}
    assert primary.connections["listen"] == 1 and backup.audio_requests == []
