"""The rules split out of the models: names, model-string grammar, validation messages, TOML reading."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from livekit_fallback.config.model import ModelChoice, Node
from livekit_fallback.config.model_strings import model_of, provider_of, variant_of, voice_of
from livekit_fallback.config.names import check_vertical, is_node_name, is_tool_name, tool_name_problems
from livekit_fallback.config.tomlfile import TOMLDecodeError, loads_toml
from livekit_fallback.config.validation import error_message, field_errors, first_error, first_message

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "node", "tool"),
    [
        ("greet", True, True),
        ("Greet", False, True),
        ("_private", False, True),
        ("9lives", False, False),
        ("", False, False),
    ],
)
def test_node_and_tool_names(name: str, node: bool, tool: bool) -> None:
    """Node names are lowercase identifiers; tool names are identifiers of either case."""
    assert (is_node_name(name), is_tool_name(name)) == (node, tool)


def test_tool_list_problems_come_in_a_fixed_order() -> None:
    """Bad names, a repeated name and reserved names are each reported; a clean list has none."""
    assert tool_name_problems(["book", "lookup"]) == []
    assert tool_name_problems(["a-b", "x", "x", "next_step"]) == [
        "tool names ['a-b'] are not identifiers",
        "tools lists a name twice",
        "tool names ['next_step'] are reserved by SignalWire",
    ]


def test_vertical_names_become_file_names_safely() -> None:
    """A vertical with a path separator or dot is refused; a plain name is returned as is."""
    assert check_vertical("reverse_mortgage") == "reverse_mortgage"
    for bad in ("../etc", "a.b", "", "x" * 65):
        with pytest.raises(ValueError, match="is not a valid name"):
            check_vertical(bad)


@pytest.mark.parametrize(
    ("platform", "kind", "value", "parts"),
    [
        ("livekit", "stt", "deepgram/nova-3:multi", ("deepgram", "nova-3", "multi", None)),
        ("livekit", "llm", "openai/gpt-5", ("openai", "gpt-5", None, None)),
        ("livekit", "tts", "elevenlabs/eleven_turbo_v2_5:v1", ("elevenlabs", "eleven_turbo_v2_5", "v1", "v1")),
        ("livekit", "tts", "cartesia/sonic-2", ("cartesia", "sonic-2", None, "sonic-2")),
        ("signalwire", "stt", "deepgram:nova-3", ("deepgram", "nova-3", None, None)),
        ("signalwire", "llm", "gpt-4.1-mini", ("", "gpt-4.1-mini", None, None)),
        ("signalwire", "tts", "elevenlabs.rachel:eleven_turbo", ("elevenlabs", "eleven_turbo", None, "rachel")),
    ],
)
def test_model_strings_come_apart(platform: str, kind: str, value: str, parts: tuple[object, ...]) -> None:
    """Provider, model, variant and voice of each platform's descriptor strings, as ModelChoice reports them."""
    args = (platform, kind, value)
    assert (provider_of(*args), model_of(*args), variant_of(*args), voice_of(*args)) == parts  # type: ignore[arg-type]
    choice = ModelChoice(platform=platform, kind=kind, value=value)  # type: ignore[arg-type]
    assert (choice.provider, choice.model, choice.variant) == parts[:3]


def test_validation_messages_lose_pydantics_prefix() -> None:
    """Messages from validators read as the validator wrote them, with field paths where asked."""
    with pytest.raises(ValidationError) as caught:
        Node(name="Bad Name", role="r", instructions="i")
    exc = caught.value
    assert first_message(exc) == "node name 'Bad Name' is not a lowercase identifier"
    assert first_error(exc) == "name: node name 'Bad Name' is not a lowercase identifier"
    assert field_errors(exc) == [("name", "node name 'Bad Name' is not a lowercase identifier")]
    assert error_message({"msg": "Value error, plain"}) == "plain"
    assert first_message(ValueError("not pydantic")) == first_error(ValueError("not pydantic")) == "not pydantic"


def test_toml_reader() -> None:
    """The one TOML reader parses text and raises its own decode error for bad text."""
    assert loads_toml('a = """\nx \\\n  y"""') == {"a": "x y"}
    with pytest.raises(TOMLDecodeError):
        loads_toml("a = ")
