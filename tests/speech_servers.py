"""Local stand-ins for the speech providers, speaking their WebSocket protocols, on 127.0.0.1.

:class:`SpeechProviderServer` serves Deepgram's live transcription socket
(``/v1/listen``) and ElevenLabs' multi-stream-input TTS socket
(``/v1/text-to-speech/<voice>/multi-stream-input``), so the real
``deepgram.STT`` and ``elevenlabs.TTS`` plugins run against it. Its ``mode``
is the failure under test:

- ``ok``: answers like the provider (transcripts every half second of audio,
  MP3 audio for each text flush);
- ``refuse``: answers the upgrade with HTTP 503;
- ``hang``: accepts the socket, reads everything and never answers.

Point the package at it with ``DEEPGRAM_BASE_URL`` / ``ELEVEN_BASE_URL`` (see
:attr:`SpeechProviderServer.deepgram_url` and ``elevenlabs_url``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import socket
import time
import uuid
from typing import Any, Literal

import av
from aiohttp import WSMsgType, web

__all__ = ["Mode", "SpeechProviderServer", "mp3_tone"]

Mode = Literal["ok", "refuse", "hang"]


def mp3_tone(seconds: float = 0.4, rate: int = 22050, frequency: float = 440.0) -> bytes:
    """A short MP3 tone, the way ElevenLabs and OpenAI send audio by default."""
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp3") as container:
        stream = container.add_stream("mp3", rate=rate)
        stream.layout = "mono"  # type: ignore[union-attr]
        samples = int(seconds * rate)
        pcm = bytearray()
        for n in range(samples):
            pcm += int(8000 * math.sin(2 * math.pi * frequency * n / rate)).to_bytes(2, "little", signed=True)
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(bytes(pcm))
        frame.sample_rate = rate
        for packet in stream.encode(frame):  # type: ignore[union-attr]
            container.mux(packet)
        for packet in stream.encode(None):  # type: ignore[union-attr]
            container.mux(packet)
    return out.getvalue()


class SpeechProviderServer:
    """Deepgram live STT and ElevenLabs streaming TTS on one local port, failing as ``mode`` says.

    Args:
        mode: ``ok``, ``refuse`` or ``hang``.
        transcript: What the Deepgram socket hears in every half second of audio (``ok`` mode).

    Attributes:
        connections: Sockets accepted (or refused), by path prefix (``listen``, ``tts``).
        audio_bytes: Bytes of audio received on Deepgram sockets.
        texts: Text received on ElevenLabs sockets.
        timeline: Each socket's path prefix, appended as it arrives (a list shared with other stand-ins).
    """

    def __init__(
        self, mode: Mode = "ok", *, transcript: str = "yes speaking", timeline: list[str] | None = None
    ) -> None:
        self.mode: Mode = mode
        self.transcript = transcript
        self.connections: dict[str, int] = {"listen": 0, "tts": 0}
        self.audio_bytes = 0
        self.texts: list[str] = []
        self.timeline = timeline if timeline is not None else []
        self._mp3 = mp3_tone()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port: int | None = None

    @property
    def deepgram_url(self) -> str:
        """``DEEPGRAM_BASE_URL`` for this server."""
        return f"http://127.0.0.1:{self.port}/v1/listen"

    @property
    def elevenlabs_url(self) -> str:
        """``ELEVEN_BASE_URL`` for this server."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> SpeechProviderServer:
        """Bind 127.0.0.1 and serve."""
        app = web.Application()
        app.router.add_get("/v1/listen", self._listen)
        app.router.add_get("/v1/text-to-speech/{voice}/multi-stream-input", self._tts)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        """Close every open socket and stop serving."""
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SpeechProviderServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _accept(self, request: web.Request, kind: str) -> web.WebSocketResponse | None:
        self.connections[kind] += 1
        self.timeline.append(kind)
        if self.mode == "refuse":
            return None
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        return ws

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        ws = await self._accept(request, "listen")
        if ws is None:
            return web.Response(status=503, text="service unavailable")
        request_id = str(uuid.uuid4())
        heard = 0  # bytes of audio not yet answered
        rate = int(request.query.get("sample_rate", "16000"))
        started = time.monotonic()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    self.audio_bytes += len(msg.data)
                    heard += len(msg.data)
                    if self.mode == "ok" and heard >= rate:  # half a second of 16-bit audio
                        heard = 0
                        await ws.send_str(json.dumps(self._result(request_id, time.monotonic() - started)))
                elif msg.type == WSMsgType.TEXT and json.loads(msg.data).get("type") == "CloseStream":
                    break
        finally:
            self._sockets.discard(ws)
        return ws

    def _result(self, request_id: str, at: float) -> dict[str, Any]:
        words = [
            {"word": w, "start": at, "end": at + 0.2, "confidence": 0.99, "punctuated_word": w}
            for w in self.transcript.split()
        ]
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": 0.5,
            "start": at,
            "is_final": True,
            "speech_final": True,
            "channel": {"alternatives": [{"transcript": self.transcript, "confidence": 0.99, "words": words}]},
            "metadata": {"request_id": request_id, "model_info": {"name": "stand-in"}},
        }

    async def _tts(self, request: web.Request) -> web.StreamResponse:
        ws = await self._accept(request, "tts")
        if ws is None:
            return web.Response(status=503, text="service unavailable")
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                context = data.get("context_id")
                text = data.get("text") or ""
                if text.strip():
                    self.texts.append(text)
                if self.mode != "ok" or context is None:
                    continue
                if data.get("flush") or data.get("close_context"):
                    audio = base64.b64encode(self._mp3).decode()
                    if data.get("flush"):
                        await ws.send_str(json.dumps({"audio": audio, "contextId": context}))
                    if data.get("close_context"):
                        await ws.send_str(json.dumps({"isFinal": True, "contextId": context}))
                if data.get("close_socket"):
                    break
                await asyncio.sleep(0)
        finally:
            self._sockets.discard(ws)
        return ws
