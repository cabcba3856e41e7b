"""Component keys and the fixed vocabularies: platforms, model kinds, component kinds.

A config is made of components (the theme, each node, each model), each
resolved on its own. Everywhere a component is named (provenance, banners,
metrics labels, the ``resolve --json`` contract, snapshot diffs) it is named
by its key's text form: ``theme``, ``nodes.<name>``, ``models.<kind>``, or
``models.<platform>.<kind>`` where both platforms are in view (snapshot
tools). :class:`ComponentKey` is the one parser and formatter of that text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "MODEL_KINDS",
    "PLATFORMS",
    "ComponentKey",
    "ComponentKind",
    "ModelKind",
    "Platform",
    "component_keys",
]

Platform = Literal["livekit", "signalwire"]
ModelKind = Literal["stt", "llm", "tts"]
ComponentKind = Literal["theme", "node", "model"]

PLATFORMS: tuple[Platform, ...] = get_args(Platform)
"""Every platform, in display order."""

MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)
"""Every model kind, in display order."""

_PREFIX = {"node": "nodes", "model": "models"}


@dataclass(frozen=True)
class ComponentKey:
    """The name of one component of a config.

    Attributes:
        kind: ``theme``, ``node`` or ``model``.
        name: The node name, or the model kind; empty for the theme.
        platform: For model keys that span both platforms (snapshot tools), the
            platform; ``None`` inside one platform's config.
    """

    kind: ComponentKind
    name: str = ""
    platform: Platform | None = None

    @classmethod
    def theme(cls) -> ComponentKey:
        """The theme prompt's key."""
        return cls("theme")

    @classmethod
    def node(cls, name: str) -> ComponentKey:
        """A node's key."""
        return cls("node", name)

    @classmethod
    def model(cls, kind: ModelKind, platform: Platform | None = None) -> ComponentKey:
        """A model's key, with the platform where both platforms are in view."""
        return cls("model", kind, platform)

    @classmethod
    def parse(cls, text: str) -> ComponentKey:
        """Read a key's text form.

        Raises:
            ValueError: ``text`` is not ``theme``, ``nodes.<name>``,
                ``models.<kind>`` or ``models.<platform>.<kind>``.
        """
        head, _, rest = text.partition(".")
        if head == "theme" and not rest:
            return cls.theme()
        if head == "nodes" and rest:
            return cls.node(rest)
        if head == "models":
            platform, _, kind = rest.rpartition(".")
            if kind in MODEL_KINDS and (not platform or platform in PLATFORMS):
                return cls("model", kind, platform or None)
        raise ValueError(f"not a component key: {text!r} (expected theme, nodes.<name> or models.<kind>)")

    @property
    def model_kind(self) -> ModelKind:
        """The model kind of a model key.

        Raises:
            ValueError: This is not a model key.
        """
        if self.kind != "model":
            raise ValueError(f"{self} is not a model key")
        return self.name  # type: ignore[return-value]

    def __str__(self) -> str:
        if self.kind == "theme":
            return "theme"
        platform = f"{self.platform}." if self.platform else ""
        return f"{_PREFIX[self.kind]}.{platform}{self.name}"


def component_keys(node_names: Iterable[str], platforms: Sequence[Platform] = ()) -> list[ComponentKey]:
    """Every component key of a config, in display order: theme, nodes, models.

    Args:
        node_names: The config's node names, in order.
        platforms: Name each model once per platform (``models.<platform>.<kind>``);
            empty for one platform's config (``models.<kind>``).
    """
    models = (
        [ComponentKey.model(k, p) for p in platforms for k in MODEL_KINDS]
        if platforms
        else [ComponentKey.model(k) for k in MODEL_KINDS]
    )
    return [ComponentKey.theme(), *(ComponentKey.node(n) for n in node_names), *models]
