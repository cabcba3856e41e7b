"""Frozen, strict models for a resolved agent configuration.

Everything read from the database or a file is turned into these models before
use, so a component either validates whole or falls back whole. The models
carry no I/O and no LiveKit imports: both platforms share them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import InvalidContent
from .criteria import CriteriaError, parse_criteria
from .graph import END_NODE, START_NODE, graph_errors, unknown_targets
from .keys import ComponentKind, ModelKind, Platform

__all__ = [
    "AgentConfig",
    "ComponentKind",
    "InvalidContent",
    "ModelChoice",
    "ModelKind",
    "Models",
    "Node",
    "Platform",
    "Provenance",
    "Reason",
    "Source",
    "Theme",
    "ThemeSections",
    "check_vertical",
    "component_keys",
    "node_fields",
]


_FROZEN = ConfigDict(frozen=True, extra="forbid", strict=True)
_Names = Annotated[tuple[str, ...], Field(strict=False)]
_NODE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_TOOL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,63}$")
RESERVED_TOOL_NAMES = frozenset({"next_step", "change_context", "gather_submit"})
"""Names SignalWire reserves for its native tools; a node may not use them."""


class Source(str, Enum):
    """Where a component's value came from, best first."""

    DATABASE = "database"
    LAST_KNOWN_GOOD = "last_known_good"
    SNAPSHOT = "snapshot"


class Reason(str, Enum):
    """Why a component did not come from the database (its reason class)."""

    NOT_CONFIGURED = "not_configured"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    HTTP_ERROR = "http_error"
    AUTH = "auth"
    BAD_RESPONSE = "bad_response"
    MISSING_ROW = "missing_row"
    INVALID_CONTENT = "invalid_content"
    CIRCUIT_OPEN = "circuit_open"

    @property
    def is_connection_level(self) -> bool:
        """True for failures of the connection itself, not of the data."""
        return self in (Reason.UNREACHABLE, Reason.TIMEOUT, Reason.CIRCUIT_OPEN)


class ThemeSections(BaseModel):
    """The five sections of a structured theme prompt."""

    model_config = _FROZEN

    identity: str = Field(min_length=1)
    output_rules: str = Field(min_length=1)
    conversational_flow: str = Field(min_length=1)
    tools: str = Field(min_length=1)
    guardrails: str = Field(min_length=1)

    def assemble(self) -> str:
        """Join the sections into one prompt: identity first, then headed sections."""
        return "\n\n".join(
            [
                self.identity.strip(),
                f"# Output rules\n\n{self.output_rules.strip()}",
                f"# Conversational flow\n\n{self.conversational_flow.strip()}",
                f"# Tools\n\n{self.tools.strip()}",
                f"# Guardrails\n\n{self.guardrails.strip()}",
            ]
        )


class Theme(BaseModel):
    """The vertical's theme prompt, prepended to every node's instructions.

    Attributes:
        vertical: The business vertical, e.g. ``reverse_mortgage``.
        text: The assembled prompt text.
        sections: The structured sections, or ``None`` for a legacy text-only theme.
    """

    model_config = _FROZEN

    vertical: str = Field(min_length=1)
    text: str = Field(min_length=1)
    sections: ThemeSections | None = None

    @classmethod
    def from_content(cls, vertical: str, *, structured: Any = None, content: Any = None) -> Theme:
        """Build a theme, preferring ``content_structured`` over legacy ``content``.

        Raises:
            InvalidContent: Neither form holds a usable prompt.
        """
        if structured is not None:
            data = _as_object(structured, "content_structured")
            try:
                sections = ThemeSections.model_validate(data)
            except ValueError as exc:
                raise InvalidContent(f"content_structured: {_first_error(exc)}") from None
            return cls(vertical=vertical, text=sections.assemble(), sections=sections)
        if isinstance(content, str) and content.strip():
            return cls(vertical=vertical, text=content.strip())
        raise InvalidContent("theme has neither content_structured nor non-empty content")


class Node(BaseModel):
    """One conversation node's prompt config.

    Attributes:
        name: Node name, e.g. ``verify``.
        role: Who the agent is in this node.
        instructions: What to do in this node.
        valid_contexts: Nodes this one may hand off to.
        tools: Tool names callable in this node (``functions`` on SignalWire).
        step_criteria_lk: Boolean expression over call state that must hold
            before leaving the node (LiveKit); empty means always.
        step_criteria_sw: The same condition in natural language (SignalWire).
    """

    model_config = _FROZEN

    name: str
    role: str = Field(min_length=1)
    instructions: str = Field(min_length=1)
    valid_contexts: _Names = ()
    tools: _Names = ()
    step_criteria_lk: str = ""
    step_criteria_sw: str = ""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NODE_NAME.match(value):
            raise ValueError(f"node name {value!r} is not a lowercase identifier")
        return value

    @field_validator("tools")
    @classmethod
    def _check_tools(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in value if not _TOOL_NAME.match(t)]
        if bad:
            raise ValueError(f"tool names {bad} are not identifiers")
        if len(set(value)) != len(value):
            raise ValueError("tools lists a name twice")
        reserved = [t for t in value if t in RESERVED_TOOL_NAMES]
        if reserved:
            raise ValueError(f"tool names {reserved} are reserved by SignalWire")
        return value

    @field_validator("step_criteria_lk")
    @classmethod
    def _check_criteria(cls, value: str) -> str:
        try:
            parse_criteria(value)
        except CriteriaError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _check_terminal(self) -> Node:
        if self.name == END_NODE and self.valid_contexts:
            raise ValueError(f"terminal node {END_NODE!r} must have no valid_contexts")
        if self.name in self.valid_contexts:
            raise ValueError("valid_contexts lists the node itself")
        return self

    @classmethod
    def from_content(
        cls,
        name: str,
        content: Any,
        *,
        platform: Platform,
        known_nodes: Iterable[str],
    ) -> Node:
        """Build a node from a ``prompt_versions.content`` object and check its targets.

        ``tools`` (LiveKit) and ``functions`` (SignalWire) mean the same; the
        platform's own key wins when both are present. Legacy ``step_criteria``
        stands in for a missing ``step_criteria_sw``.

        Raises:
            InvalidContent: The content is not an object, a field is invalid, or a
                ``valid_contexts`` target is not one of ``known_nodes``.
        """
        fields = {"name": name, **node_fields(_as_object(content, "content"), platform=platform)}
        try:
            node = cls.model_validate(fields)
        except ValidationError as exc:
            raise InvalidContent(_first_error(exc), _field_errors(exc)) from None
        unknown = unknown_targets(node.valid_contexts, known_nodes)
        if unknown:
            message = f"valid_contexts names unknown node(s) {unknown}"
            raise InvalidContent(message, [("valid_contexts", message)])
        return node


def node_fields(content: Mapping[str, Any], *, platform: Platform) -> dict[str, Any]:
    """The :class:`Node` fields (all but ``name``) one platform reads from stored node content.

    ``tools`` (LiveKit) and ``functions`` (SignalWire) mean the same; the
    platform's own key wins when both are present and a null list is empty.
    Empty criteria are ``""``; legacy ``step_criteria`` stands in for a missing
    ``step_criteria_sw``. Keys the resolver does not read are dropped.
    """
    own, other = ("tools", "functions") if platform == "livekit" else ("functions", "tools")
    tools = content.get(own, content.get(other, []))
    return {
        "role": content.get("role"),
        "instructions": content.get("instructions"),
        "valid_contexts": content.get("valid_contexts", []),
        "tools": tools if tools is not None else [],
        "step_criteria_lk": content.get("step_criteria_lk") or "",
        "step_criteria_sw": content.get("step_criteria_sw") or content.get("step_criteria") or "",
    }


class ModelChoice(BaseModel):
    """The active model of one kind, as the platform's own descriptor string.

    LiveKit values look like ``deepgram/nova-3:multi`` (STT: variant is the
    language), ``openai/gpt-5`` (LLM: never split) and
    ``elevenlabs/eleven_turbo_v2_5:<voice id>`` (TTS: variant is the voice).
    SignalWire values look like ``deepgram:nova-3``, ``gpt-4.1-mini`` and
    ``elevenlabs.rachel``.

    Attributes:
        kind: ``stt``, ``llm`` or ``tts``.
        platform: ``livekit`` or ``signalwire``.
        value: The descriptor string.
        is_custom: A custom voice that needs the provider plugin (LiveKit TTS).
    """

    model_config = _FROZEN

    kind: ModelKind
    platform: Platform
    value: str
    is_custom: bool = False

    @model_validator(mode="after")
    def _check_value(self) -> ModelChoice:
        check_model_value(self.platform, self.kind, self.value)
        return self

    @property
    def provider(self) -> str:
        """The provider or engine prefix (``deepgram``, ``openai``; ``""`` for a bare SignalWire LLM)."""
        if self.platform == "livekit":
            return self.value.split("/", 1)[0]
        if self.kind == "stt":
            return self.value.split(":", 1)[0]
        if self.kind == "tts":
            return self.value.split(".", 1)[0]
        return ""

    @property
    def model(self) -> str:
        """The model name without provider or variant (``nova-3``, ``gpt-5``)."""
        if self.platform == "livekit":
            rest = self.value.split("/", 1)[1]
            return rest if self.kind == "llm" else rest.rsplit(":", 1)[0]
        if self.kind == "stt":
            return self.value.split(":", 1)[1]
        if self.kind == "tts":
            parts = self.value.split(".", 1)[1].split(":")
            return parts[1] if len(parts) > 1 else ""
        return self.value

    @property
    def variant(self) -> str | None:
        """LiveKit STT language or TTS voice id (after the last ``:``); ``None`` otherwise."""
        if self.platform != "livekit" or self.kind == "llm":
            return None
        rest = self.value.split("/", 1)[1]
        return rest.rsplit(":", 1)[1] if ":" in rest else None


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


class Models(BaseModel):
    """The active STT, LLM and TTS choices of one platform."""

    model_config = _FROZEN

    stt: ModelChoice
    llm: ModelChoice
    tts: ModelChoice


class Provenance(BaseModel):
    """Where one component came from, why, and how old that copy is.

    Attributes:
        source: The source that supplied the value.
        reason: Why the database did not supply it (``None`` when it did).
        detail: The exact error, e.g. ``httpx.ConnectError: All connection attempts failed``.
        taken_at: When the copy was read from the database (snapshot date or
            last-known-good write time); the resolution time for database values.
        location: The table(s) or file the value came from.
    """

    model_config = _FROZEN

    source: Source
    reason: Reason | None = None
    detail: str | None = None
    taken_at: datetime | None = None
    location: str | None = None


_VERTICAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def check_vertical(vertical: str) -> str:
    """Return ``vertical`` if it is a plain name; it becomes part of snapshot and cache file names.

    Raises:
        ValueError: It is empty, too long, or holds anything but letters, digits, ``_`` and ``-``.
    """
    if not isinstance(vertical, str) or not _VERTICAL.match(vertical):
        raise ValueError(f"vertical {vertical!r} is not a valid name")
    return vertical


def component_keys(node_names: Iterable[str]) -> list[str]:
    """All component keys of a config: ``theme``, ``nodes.<name>``, ``models.stt|llm|tts``."""
    return ["theme", *(f"nodes.{n}" for n in node_names), "models.stt", "models.llm", "models.tts"]


class AgentConfig(BaseModel):
    """A complete, validated agent configuration with per-component provenance.

    Attributes:
        vertical: The business vertical.
        platform: ``livekit`` or ``signalwire``.
        theme: The theme prompt.
        nodes: Node name to node config, in conversation order.
        models: The platform's active STT, LLM and TTS.
        provenance: Component key (see :func:`component_keys`) to its provenance.
        start_node: The node each call starts in.
        resolved_at: When this config was resolved.
        backups: Per model kind, the ordered backup choices (today the
            snapshot's choice for the platform) and where each came from; used
            when the active model cannot be built or fails mid-call.
    """

    model_config = _FROZEN

    vertical: str
    platform: Platform
    theme: Theme
    nodes: Annotated[dict[str, Node], Field(strict=False)]
    models: Models
    provenance: Annotated[dict[str, Provenance], Field(strict=False)]
    start_node: str = START_NODE
    resolved_at: datetime
    backups: Annotated[dict[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]], Field(strict=False)] = {}

    @model_validator(mode="after")
    def _check_whole(self) -> AgentConfig:
        problems = graph_errors({name: node.valid_contexts for name, node in self.nodes.items()}, start=self.start_node)
        problems += [f"nodes[{k!r}] is named {n.name!r}" for k, n in self.nodes.items() if k != n.name]
        for kind in ("stt", "llm", "tts"):
            choice: ModelChoice = getattr(self.models, kind)
            if choice.kind != kind or choice.platform != self.platform:
                problems.append(f"models.{kind} is a {choice.platform} {choice.kind} choice")
        missing = [k for k in component_keys(self.nodes) if k not in self.provenance]
        if missing:
            problems.append(f"provenance missing for {missing}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def degraded(self) -> dict[str, Provenance]:
        """Components not served from the database, by component key."""
        return {k: p for k, p in self.provenance.items() if p.source is not Source.DATABASE}

    @property
    def is_degraded(self) -> bool:
        """True when any component came from a fallback copy."""
        return bool(self.degraded)


def _as_object(value: Any, what: str) -> Mapping[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidContent(f"{what} is a string that is not valid JSON, expected a JSON object") from None
    if not isinstance(value, Mapping):
        raise InvalidContent(f"{what} is a {type(value).__name__}, expected a JSON object")
    return value


def _field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [
        (".".join(str(p) for p in err["loc"] if not isinstance(p, int)), str(err["msg"]).removeprefix("Value error, "))
        for err in exc.errors()
    ]


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return "; ".join(parts)
    return str(exc)
