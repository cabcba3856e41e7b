r"""A local OpenAI-compatible chat-completions server speaking the real SSE wire format.

Tests point the real ``openai.LLM`` plugin at it (``base_url``) and assert on
the requests it received. It binds 127.0.0.1 only, sets TCP_NODELAY, and is
stopped by whoever started it. Replies come from a *responder*: a function of
the request body returning assistant text, :class:`ToolCall`\\ s, or a list of
both. Models in ``fail_models`` get HTTP 500 and models in ``hang_models``
never get an answer, to exercise runtime failover.

It also speaks OpenAI's audio endpoints for the ``openai.STT`` and
``openai.TTS`` plugins: ``POST /v1/audio/transcriptions`` answers
:attr:`OpenAICompatibleServer.transcript` and ``POST /v1/audio/speech`` a short
MP3 (failing or hanging the same way for the models named).

Run standalone as a scripted stand-in for smoke checks (``console --text``)::

    python -m tests.openai_server --port 8911
    OPENAI_BASE_URL=http://127.0.0.1:8911/v1 python examples/agent.py console --text

The standalone responder greets, echoes, and follows two commands typed as
the user: ``/move <node>`` (calls ``move_to_<node>``) and
``/call <tool> {json arguments}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from aiohttp import web

__all__ = ["OpenAICompatibleServer", "ToolCall", "demo_responder"]


@dataclass(frozen=True)
class ToolCall:
    """A tool call the server streams back."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


Reply = Union[str, ToolCall, "list[str | ToolCall]"]
Responder = Callable[[dict[str, Any]], Reply]
_ids = itertools.count(1)


class OpenAICompatibleServer:
    """``POST /v1/chat/completions`` (streaming) and ``GET /v1/models`` on 127.0.0.1.

    Args:
        responder: Produces each reply from the request body.
        fail_models: Model names answered with HTTP 500.
        port: TCP port (0 picks a free one).

    Attributes:
        requests: The JSON bodies of every chat-completions request, in order.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        fail_models: Iterable[str] = (),
        hang_models: Iterable[str] = (),
        transcript: str = "yes speaking",
        timeline: list[str] | None = None,
        port: int = 0,
    ) -> None:
        self.responder = responder or demo_responder
        self.fail_models = set(fail_models)
        self.hang_models = set(hang_models)
        self.transcript = transcript
        self.requests: list[dict[str, Any]] = []
        self.audio_requests: list[tuple[str, str]] = []
        """``(endpoint, model)`` of each audio request (``speech`` or ``transcriptions``)."""
        self.timeline = timeline if timeline is not None else []
        """Each audio request's endpoint, appended as it arrives (a list shared with other stand-ins)."""
        self._mp3: bytes | None = None
        self._released = asyncio.Event()
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        """The ``base_url`` for ``openai.LLM`` / ``OPENAI_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> OpenAICompatibleServer:
        """Bind and start serving."""
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", self._port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        """Stop serving and close the socket (hanging requests are let go first)."""
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> OpenAICompatibleServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def models_requested(self) -> list[str]:
        """The ``model`` field of each chat request, in order."""
        return [r.get("model", "") for r in self.requests]

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "local", "object": "model", "owned_by": "tests"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        model = body.get("model", "")
        if (failed := await self._fail(model)) is not None:
            return failed
        reply = self.responder(body)
        parts = reply if isinstance(reply, list) else [reply]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        completion_id, created = f"chatcmpl-{next(_ids)}", int(time.time())

        async def send(choices: list[dict[str, Any]], **extra: Any) -> None:
            chunk = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        for text in (p for p in parts if isinstance(p, str)):
            await send([{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}])
        calls = [p for p in parts if isinstance(p, ToolCall)]
        for index, call in enumerate(calls):
            delta = {
                "role": "assistant",
                "tool_calls": [
                    {
                        "index": index,
                        "id": f"call_{next(_ids)}",
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                ],
            }
            await send([{"index": 0, "delta": delta, "finish_reason": None}])
        await send([{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}])
        await send([], usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _fail(self, model: str) -> web.Response | None:
        """HTTP 500 for a failing model; a hanging one waits until the client gives up."""
        if model in self.hang_models:
            await self._released.wait()
            return web.Response(status=503)
        if model in self.fail_models:
            return web.json_response({"error": {"message": f"{model} is down", "type": "server_error"}}, status=500)
        return None

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body.get("model", "")
        self.audio_requests.append(("speech", model))
        self.timeline.append("speech")
        if (failed := await self._fail(model)) is not None:
            return failed
        if self._mp3 is None:
            from tests.speech_servers import mp3_tone

            self._mp3 = mp3_tone(rate=24000)
        return web.Response(body=self._mp3, content_type="audio/mpeg")

    async def _transcriptions(self, request: web.Request) -> web.Response:
        form = await request.post()
        model = str(form.get("model", ""))
        self.audio_requests.append(("transcriptions", model))
        self.timeline.append("transcriptions")
        if (failed := await self._fail(model)) is not None:
            return failed
        return web.json_response({"text": self.transcript})


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def demo_responder(body: dict[str, Any]) -> Reply:
    """A deterministic stand-in for a model: greets, echoes, and obeys ``/move`` and ``/call``."""
    messages = body.get("messages", [])
    system = " ".join(_text(m) for m in messages if m.get("role") in ("system", "developer"))
    step = (re.search(r"# Current step: (\w+)", system) or [None, "?"])[1]
    tools = {t["function"]["name"] for t in body.get("tools", []) if t.get("type") == "function"}
    last = messages[-1] if messages else {}
    tag = f"[{body.get('model')} @ {step}]"
    if last.get("role") == "tool":
        output = _text(last)
        reply = "We need to finish this step first." if output.startswith("Not moved") else "Done."
        return f"{tag} {reply} ({output[:160]})"
    if last.get("role") != "user":
        return f"{tag} Hello, this is the reverse mortgage team. Am I speaking with the homeowner?"
    said = _text(last).strip()
    if said.startswith("/move ") and said[6:].strip() == step:  # the new step opens after a handoff
        return f"{tag} We are now in the {step} step. How can I help?"
    if said.startswith("/move "):
        name = f"move_to_{said.split()[1]}"
        return ToolCall(name) if name in tools else f"{tag} I can't move there from here; I can use: {sorted(tools)}."
    if said.startswith("/call "):
        name, _, raw = said[6:].partition(" ")
        if name not in tools:
            return f"{tag} There is no tool {name} in this step; I can use: {sorted(tools)}."
        try:
            return ToolCall(name, json.loads(raw) if raw.strip() else {})
        except ValueError:
            return f"{tag} Those arguments are not valid JSON."
    return f"{tag} You said: {said}"


def main() -> None:
    """Serve the demo responder until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8911)
    args = parser.parse_args()

    async def serve() -> None:
        server = await OpenAICompatibleServer(port=args.port).start()
        print(f"serving on {server.base_url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
