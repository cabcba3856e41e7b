"""Component keys: one parser and formatter for every name a component goes by."""

from __future__ import annotations

import pytest

from livekit_fallback.config.keys import MODEL_KINDS, PLATFORMS, ComponentKey, component_keys

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("theme", ComponentKey("theme")),
        ("nodes.verify", ComponentKey("node", "verify")),
        ("models.llm", ComponentKey("model", "llm")),
        ("models.signalwire.tts", ComponentKey("model", "tts", "signalwire")),
    ],
)
def test_parse_and_format_round_trip(text: str, key: ComponentKey) -> None:
    """Each key form parses to its parts and formats back to the same text."""
    assert ComponentKey.parse(text) == key
    assert str(key) == text


@pytest.mark.parametrize("text", ["", "themes", "theme.x", "nodes.", "models.gpu", "models.zoom.llm", "verify"])
def test_parse_rejects_what_is_not_a_key(text: str) -> None:
    """Text that names no component is refused with a message quoting it."""
    with pytest.raises(ValueError, match="not a component key"):
        ComponentKey.parse(text)


def test_component_keys_orders_theme_nodes_models() -> None:
    """One platform's keys are theme, the nodes in order, then stt, llm, tts."""
    keys = [str(k) for k in component_keys(["greet", "end"])]
    assert keys == ["theme", "nodes.greet", "nodes.end", "models.stt", "models.llm", "models.tts"]


def test_component_keys_across_platforms_name_each_platform() -> None:
    """With platforms given, each model key carries its platform."""
    keys = component_keys([], PLATFORMS)
    assert [str(k) for k in keys[1:]] == [f"models.{p}.{k}" for p in PLATFORMS for k in MODEL_KINDS]
    assert keys[-1].model_kind == "tts"
    with pytest.raises(ValueError):
        _ = ComponentKey.theme().model_kind
