"""A scripted fake LLM for driving AgentSessions offline (livekit-agents ships none).

Each ``chat()`` call takes the next scripted step and streams it: text, tool
calls, or both. Every call records what the model was shown (instructions,
offered tool names, messages, tool choice) so tests can assert on it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Union

from livekit.agents import llm
from livekit.agents.llm import ChatChunk, ChoiceDelta, FunctionToolCall
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr

_ids = itertools.count(1)


@dataclass(frozen=True)
class Call:
    """One scripted tool call."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


Step = Union[str, Call, "list[str | Call]", Callable[["Seen"], Any]]


@dataclass(frozen=True)
class Seen:
    """What one ``chat()`` call showed the model.

    Attributes:
        instructions: Text of the system/developer messages, joined.
        tools: Names of the tools offered.
        messages: ``(role, text)`` of user and assistant messages, in order.
        tool_choice: The tool choice passed, or ``None``.
        tool_outputs: Outputs of the tool calls in the history, in order.
    """

    instructions: str
    tools: tuple[str, ...]
    messages: tuple[tuple[str, str], ...]
    tool_choice: Any
    tool_outputs: tuple[str, ...] = ()


class FakeLLM(llm.LLM):
    """An ``llm.LLM`` that replays a script.

    Args:
        script: Steps, one per ``chat()`` call: a string (assistant text), a
            :class:`Call`, a list mixing both, or a callable receiving the
            :class:`Seen` request and returning one of those.
        default: Reply used once the script is exhausted.
    """

    def __init__(self, script: Iterable[Step] = (), *, default: str = "Okay.") -> None:
        super().__init__()
        self.script = list(script)
        self.default = default
        self.seen: list[Seen] = []

    @property
    def model(self) -> str:
        return "fake-scripted"

    @property
    def provider(self) -> str:
        return "tests"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> llm.LLMStream:
        seen = Seen(
            instructions="\n".join(
                m.text_content or ""
                for m in chat_ctx.items
                if m.type == "message" and m.role in ("system", "developer")
            ),
            tools=tuple(sorted(t.info.name for t in tools or () if hasattr(t, "info"))),
            messages=tuple(
                (m.role, m.text_content or "")
                for m in chat_ctx.items
                if m.type == "message" and m.role in ("user", "assistant")
            ),
            tool_choice=tool_choice if tool_choice is not NOT_GIVEN else None,
            tool_outputs=tuple(i.output for i in chat_ctx.items if i.type == "function_call_output"),
        )
        self.seen.append(seen)
        step: Any = self.script.pop(0) if self.script else self.default
        if callable(step) and not isinstance(step, Call):
            step = step(seen)
        parts = step if isinstance(step, list) else [step]
        return _Stream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options, parts=parts)


class _Stream(llm.LLMStream):
    def __init__(self, fake: FakeLLM, *, parts: list[Any], **kwargs: Any) -> None:
        super().__init__(fake, **kwargs)
        self._parts = parts

    async def _run(self) -> None:
        request_id = f"fake-{next(_ids)}"
        calls = [
            FunctionToolCall(name=p.name, arguments=json.dumps(p.arguments), call_id=f"call_{next(_ids)}")
            for p in self._parts
            if isinstance(p, Call)
        ]
        for text in (p for p in self._parts if isinstance(p, str)):
            self._event_ch.send_nowait(ChatChunk(id=request_id, delta=ChoiceDelta(role="assistant", content=text)))
        if calls:
            self._event_ch.send_nowait(ChatChunk(id=request_id, delta=ChoiceDelta(role="assistant", tool_calls=calls)))
