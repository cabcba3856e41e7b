"""Failover times of the package's own model chains against local provider stand-ins.

Run ``python -m benchmarks.failover`` (about a minute): each case builds the
shipped snapshot's chain with provider keys only (``build_chain``, default
failover settings), points the primary at the Deepgram / ElevenLabs stand-in
(``tests/speech_servers.py``) or the OpenAI stand-in in the failing mode, the
backups at the OpenAI stand-in, and times what the caller waits for. The rows
replace the ``Failover`` section of ``docs/benchmarks.md`` (``--out -`` prints
them instead); ``python -m benchmarks.run`` keeps that section when it
rewrites the page.

Cases (``before``: the same chains as LiveKit's ``FallbackAdapter`` with its
default settings, the figures this package had before its failover settings):

- TTS primary refusing / hanging: text sent to first audio heard from the backup;
- STT primary (Deepgram) accepting audio and never answering: first audio sent
  to the chain moving to the backup (spoken audio from espeak-ng, real-time pace);
  every STT refusing: the caller's first audio to the error (the batch backup
  fails only once an utterance is complete, so this includes the first words);
- LLM primary hanging: request to the backup's first token;
- whole chain failing (every model refusing): request to the error that ends the call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livekit import rtc
from livekit.agents import llm, utils

from benchmarks.report import FAILOVER_END as END
from benchmarks.report import FAILOVER_START as START
from benchmarks.run import PAGE
from livekit_fallback.config.model_alarms import ModelAlarms
from livekit_fallback.config.resolver import Resolver
from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.state import ResolutionState
from livekit_fallback.failover import FailoverSettings
from livekit_fallback.providers import ModelChain, build_chain
from tests.openai_server import OpenAICompatibleServer
from tests.speech_servers import Mode, SpeechProviderServer


def _alarms() -> ModelAlarms:
    """Model alarms over a state of their own (nothing shared with other runs)."""
    return ModelAlarms(ResolutionState(MemoryStorage(), "snapshot"))


@dataclass(frozen=True)
class Case:
    """One failover case: its name, the target, the issue's figure before, and how to measure one run."""

    name: str
    target: float
    before: str
    measure: Callable[[], Awaitable[float]]


async def _config() -> Any:
    return await Resolver(database=None).resolve("reverse_mortgage", "livekit")


def _env(primary: SpeechProviderServer, backup: OpenAICompatibleServer) -> dict[str, str]:
    return {
        "DEEPGRAM_API_KEY": "dg-bench",
        "DEEPGRAM_BASE_URL": primary.deepgram_url,
        "ELEVEN_API_KEY": "el-bench",
        "ELEVEN_BASE_URL": primary.elevenlabs_url,
        "OPENAI_API_KEY": "sk-bench",
        "OPENAI_BASE_URL": backup.base_url,
    }


async def _tts(mode: Mode, *, all_fail: bool = False) -> float:
    async with (
        SpeechProviderServer(mode) as primary,
        OpenAICompatibleServer(fail_models=["gpt-4o-mini-tts"] if all_fail else ()) as backup,
    ):
        chain = build_chain(await _config(), "tts", env=_env(primary, backup), alarms=_alarms())
        try:
            started = time.perf_counter()
            async with chain.instance.stream() as stream:  # type: ignore[union-attr]
                stream.push_text("Hello, am I speaking with the homeowner?")
                stream.flush()
                stream.end_input()
                try:
                    async for _ in stream:
                        return time.perf_counter() - started
                except Exception:
                    return time.perf_counter() - started
            raise RuntimeError("no audio and no error")
        finally:
            await chain.instance.aclose()


async def _llm(*, hang: bool) -> float:
    kind = {"hang_models": ["gpt-5"]} if hang else {"fail_models": ["gpt-5", "gpt-4.1-mini"]}
    async with OpenAICompatibleServer(lambda body: "Backup here.", **kind) as backup:  # type: ignore[arg-type]
        env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": backup.base_url}
        chain = build_chain(await _config(), "llm", env=env, alarms=_alarms())
        try:
            ctx = llm.ChatContext()
            ctx.add_message(role="user", content="Hello?")
            started = time.perf_counter()
            try:
                async with chain.instance.chat(chat_ctx=ctx) as stream:  # type: ignore[union-attr]
                    async for chunk in stream:
                        if chunk.delta and chunk.delta.content:
                            return time.perf_counter() - started
            except Exception:
                return time.perf_counter() - started
            raise RuntimeError("no token and no error")
        finally:
            await chain.instance.aclose()


def _spoken(text: str) -> list[rtc.AudioFrame]:
    """``text`` spoken by espeak-ng between silences, as 20 ms frames at its 22.05 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "said.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        with wave.open(str(path)) as wav:
            rate, data = wav.getframerate(), wav.readframes(wav.getnframes())
    data = bytes(rate) + data + bytes(rate * 3)  # 0.5 s before, 1.5 s after
    step = rate // 50 * 2
    return [rtc.AudioFrame(data[i : i + step], rate, 1, step // 2) for i in range(0, len(data) - step + 1, step)]


async def _stt(*, all_fail: bool = False) -> float:
    mode: Mode = "refuse" if all_fail else "hang"
    async with (
        SpeechProviderServer(mode) as primary,
        OpenAICompatibleServer(fail_models=["gpt-4o-mini-transcribe"] if all_fail else ()) as backup,
    ):
        chain: ModelChain = build_chain(await _config(), "stt", env=_env(primary, backup), alarms=_alarms())
        moved = asyncio.get_running_loop().create_future()
        chain.instance.on(
            "stt_availability_changed", lambda ev: None if ev.available or moved.done() else moved.set_result(None)
        )
        stream = chain.instance.stream()  # type: ignore[union-attr]
        audio = _spoken("Yes, I am the homeowner.") * 3
        started = time.perf_counter()

        async def drain() -> None:
            async for _ in stream:
                pass

        reader = asyncio.create_task(drain())
        try:
            for frame in audio:  # real-time pace, as from a phone call
                if reader.done() or (moved.done() and not all_fail):
                    break
                stream.push_frame(frame)
                await asyncio.sleep(frame.duration)
            if all_fail and not reader.done():
                raise RuntimeError("the chain did not fail")
            return time.perf_counter() - started
        finally:
            reader.cancel()
            await stream.aclose()
            await chain.instance.aclose()


def cases() -> list[Case]:
    """Every failover case, with its target and the figure before."""
    settings = FailoverSettings()
    return [
        Case("TTS primary refusing: backup's first audio", 0.8, "2.1 s", lambda: _tts("refuse")),
        Case("TTS primary hanging: backup's first audio", 3.0, "32 s", lambda: _tts("hang")),
        Case("TTS chain all refusing: error ending the call", 6.0, "21.6 s", lambda: _tts("refuse", all_fail=True)),
        Case(
            f"STT primary accepting, never answering: chain moves on (limit {settings.stt.attempt_timeout:g} s)",
            3.0,
            "never (100 s)",
            _stt,
        ),
        Case(
            "STT chain all refusing: caller's first words to the error ending the call",
            6.0,
            "5.4 s",
            lambda: _stt(all_fail=True),
        ),
        Case("LLM primary hanging: backup's first token", 2.5, "5.0 s", lambda: _llm(hang=True)),
        Case("LLM chain all refusing: error ending the call", 6.0, "4.6 s", lambda: _llm(hang=False)),
    ]


async def measure(runs: int, progress: Callable[[str], None]) -> list[tuple[Case, list[float]]]:
    """Run every case ``runs`` times inside one HTTP context (as a job process has)."""
    results = []
    async with utils.http_context.open():
        for case in cases():
            times = []
            for _ in range(runs):
                times.append(await case.measure())
            progress(f"{case.name}: median {statistics.median(times) * 1000:.0f} ms")
            results.append((case, times))
    return results


def rows(results: list[tuple[Case, list[float]]], runs: int) -> str:
    """The Failover section: one row per case."""
    lines = [
        START,
        "## Failover",
        "",
        "Measured by `python -m benchmarks.failover` on the shipped snapshot's chains built with provider keys",
        "only and the default failover settings (`livekit_fallback.failover`), against the tests' local",
        f"Deepgram / ElevenLabs / OpenAI stand-ins; {runs} runs per case. Before: LiveKit's `FallbackAdapter`",
        "defaults, which the chains used until then.",
        "",
        "| Case | Before | Median | Worst | Target | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for case, times in results:
        median, worst = statistics.median(times), max(times)
        met = "met" if worst <= case.target else "MISSED"
        lines.append(f"| {case.name} | {case.before} | {median:.2f} s | {worst:.2f} s | < {case.target:g} s | {met} |")
    lines += ["", END, ""]
    return "\n".join(lines)


def publish(section: str, page: Path = PAGE) -> None:
    """Replace the Failover section of the page (appended the first time)."""
    text = page.read_text(encoding="utf-8")
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    page.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and publish; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.failover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", metavar="PATH", help="'-' for stdout (default: the Failover section of the page)")
    args = parser.parse_args(argv)
    results = asyncio.run(measure(args.runs, lambda m: print(f"... {m}", file=sys.stderr, flush=True)))
    section = rows(results, args.runs)
    if args.out == "-":
        sys.stdout.write(section)
    else:
        publish(section, Path(args.out) if args.out else PAGE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
