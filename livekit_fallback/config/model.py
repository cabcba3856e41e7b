"""Frozen, strict models for a resolved agent configuration.

Everything read from the database or a file is turned into these models before
use, so a component either validates whole or falls back whole. The models
carry no I/O and no LiveKit imports: both platforms share them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import InvalidContent
from . import keys
from .content import as_object, node_fields
from .criteria import CriteriaError, parse_criteria
from .graph import END_NODE, START_NODE, graph_errors, unknown_targets
from .keys import MODEL_KINDS, ModelKind, Platform
from .model_strings import check_model_value, model_of, provider_of, variant_of
from .names import RESERVED_TOOL_NAMES, check_vertical, is_node_name, tool_name_problems
from .validation import field_errors, first_error

__all__ = [
    "RESERVED_TOOL_NAMES",
    "AgentConfig",
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
]


_FROZEN = ConfigDict(frozen=True, extra="forbid", strict=True)
_Names = Annotated[tuple[str, ...], Field(strict=False)]


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
    UNBUILDABLE = "unbuildable"
    """The database (or a copy) names a model this process cannot build: a key or plugin is missing."""

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
            data = as_object(structured, "content_structured")
            try:
                sections = ThemeSections.model_validate(data)
            except ValueError as exc:
                raise InvalidContent(f"content_structured: {first_error(exc)}") from None
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
        if not is_node_name(value):
            raise ValueError(f"node name {value!r} is not a lowercase identifier")
        return value

    @field_validator("tools")
    @classmethod
    def _check_tools(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problems = tool_name_problems(value)
        if problems:
            raise ValueError(problems[0])
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
        fields = {"name": name, **node_fields(as_object(content, "content"), platform=platform)}
        try:
            node = cls.model_validate(fields)
        except ValidationError as exc:
            raise InvalidContent(first_error(exc), field_errors(exc)) from None
        unknown = unknown_targets(node.valid_contexts, known_nodes)
        if unknown:
            message = f"valid_contexts names unknown node(s) {unknown}"
            raise InvalidContent(message, [("valid_contexts", message)])
        return node


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
        return provider_of(self.platform, self.kind, self.value)

    @property
    def model(self) -> str:
        """The model name without provider or variant (``nova-3``, ``gpt-5``)."""
        return model_of(self.platform, self.kind, self.value)

    @property
    def variant(self) -> str | None:
        """LiveKit STT language or TTS voice id (after the last ``:``); ``None`` otherwise."""
        return variant_of(self.platform, self.kind, self.value)


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


def component_keys(node_names: Iterable[str]) -> list[str]:
    """The text form of one platform's component keys (see :func:`.keys.component_keys`)."""
    return [str(key) for key in keys.component_keys(node_names)]


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
        backups: Per model kind, the ordered backup choices and where each
            came from: the database's ranked rows, the snapshot's backup list,
            then the snapshot's active choice (duplicates and the active choice
            left out); used when the active model cannot be built or fails mid-call.
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
        for kind in MODEL_KINDS:
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
        """Components not served as the database holds them, by component key.

        A fallback copy (last-known-good, snapshot) is degraded; so is a model
        the database names that could not be built (reason ``unbuildable``),
        even when its replacement is one of the database's own backups.
        """
        return {k: p for k, p in self.provenance.items() if p.source is not Source.DATABASE or p.reason is not None}

    @property
    def is_degraded(self) -> bool:
        """True when any component came from a fallback copy."""
        return bool(self.degraded)
