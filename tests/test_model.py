"""Config models: node and model-string validation, theme assembly, whole-graph checks."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from livekit_fallback import AgentConfig, ModelChoice, Models, Node, Provenance, Source, Theme
from livekit_fallback.config.graph import DEFAULT_NODE_NAMES, dead_end_nodes, graph_errors, unreachable_nodes
from livekit_fallback.config.model import InvalidContent, component_keys

NODES = DEFAULT_NODE_NAMES


def _content(**overrides: object) -> dict:
    base = {"role": "r", "instructions": "i", "valid_contexts": ["verify"], "tools": ["mark_wrong_person"]}
    return {**base, **overrides}


def test_node_from_content_reads_livekit_and_signalwire_keys() -> None:
    """'tools' (LiveKit) and 'functions' (SignalWire) mean the same; the platform's own key wins."""
    content = _content(tools=["a_tool"], functions=["b_tool"], step_criteria="legacy words")
    assert Node.from_content("greet", content, platform="livekit", known_nodes=NODES).tools == ("a_tool",)
    sw = Node.from_content("greet", content, platform="signalwire", known_nodes=NODES)
    assert sw.tools == ("b_tool",)
    assert sw.step_criteria_sw == "legacy words"
    only_functions = _content(functions=["b_tool"])
    del only_functions["tools"]
    assert Node.from_content("greet", only_functions, platform="livekit", known_nodes=NODES).tools == ("b_tool",)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("greet", "{not json", "is a string that is not valid JSON"),
        ("greet", ["a", "list"], "expected a JSON object"),
        ("greet", _content(valid_contexts=["nowhere"]), "unknown node(s) ['nowhere']"),
        ("greet", _content(step_criteria_lk="os.system('x')"), "not allowed"),
        ("greet", _content(role=""), "role"),
        ("greet", _content(instructions=None), "instructions"),
        ("greet", _content(tools=["bad name"]), "not identifiers"),
        ("greet", _content(tools=["change_context"]), "reserved by SignalWire"),
        ("greet", _content(valid_contexts="verify"), "valid_contexts"),
        ("greet", _content(valid_contexts=["greet"]), "itself"),
        ("end", _content(valid_contexts=["goodbye"]), "terminal node"),
        ("greet", _content(extra_key=1), None),
    ],
)
def test_invalid_node_content_is_rejected_with_a_reason(name: str, content: object, fragment: str | None) -> None:
    """Malformed JSON, unknown targets, bad criteria and missing text are invalid content."""
    if fragment is None:  # unknown keys in stored content are tolerated, not fatal
        assert Node.from_content(name, content, platform="livekit", known_nodes=NODES).name == name
        return
    with pytest.raises(InvalidContent) as info:
        Node.from_content(name, content, platform="livekit", known_nodes=NODES)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("platform", "kind", "value", "provider", "model", "variant"),
    [
        ("livekit", "stt", "deepgram/nova-3:multi", "deepgram", "nova-3", "multi"),
        ("livekit", "llm", "openai/gpt-5", "openai", "gpt-5", None),
        ("livekit", "llm", "openai/gpt-4.1:2025", "openai", "gpt-4.1:2025", None),
        (
            "livekit",
            "tts",
            "elevenlabs/eleven_turbo_v2_5:EXAVITQu4vr4xnSDxMaL",
            "elevenlabs",
            "eleven_turbo_v2_5",
            "EXAVITQu4vr4xnSDxMaL",
        ),
        ("livekit", "tts", "cartesia/sonic-2", "cartesia", "sonic-2", None),
        ("signalwire", "stt", "deepgram:nova-3", "deepgram", "nova-3", None),
        ("signalwire", "llm", "gpt-4.1-mini", "", "gpt-4.1-mini", None),
        ("signalwire", "tts", "elevenlabs.rachel", "elevenlabs", "", None),
        ("signalwire", "tts", "amazon.Joanna:neural:en-US", "amazon", "neural", None),
    ],
)
def test_model_strings_parse(platform, kind, value, provider, model, variant) -> None:  # noqa: ANN001
    """Descriptor strings split into provider, model and variant the way each platform reads them."""
    choice = ModelChoice(kind=kind, platform=platform, value=value)
    assert (choice.provider, choice.model, choice.variant) == (provider, model, variant)


@pytest.mark.parametrize(
    ("platform", "kind", "value", "fragment"),
    [
        ("livekit", "stt", "nova-3", "is not provider/model"),
        ("livekit", "llm", "acme/gpt-5", "unknown provider 'acme'"),
        ("livekit", "tts", "elevenlabs/", "is not provider/model"),
        ("signalwire", "stt", "deepgram/nova-3", "is not engine:model"),
        ("signalwire", "tts", "rachel", "is not engine.voice"),
        ("signalwire", "tts", "acme.rachel", "unknown provider 'acme'"),
        ("signalwire", "llm", "gpt 4", "is not a model name"),
    ],
)
def test_bad_model_strings_are_rejected(platform, kind, value, fragment) -> None:  # noqa: ANN001
    """Malformed strings and unknown providers are invalid, naming the expected format."""
    with pytest.raises(ValidationError) as info:
        ModelChoice(kind=kind, platform=platform, value=value)
    assert fragment in str(info.value)


def test_structured_theme_is_assembled_in_order_and_preferred() -> None:
    """content_structured wins over legacy content and assembles identity then headed sections."""
    sections = {k: f"<{k}>" for k in ("identity", "output_rules", "conversational_flow", "tools", "guardrails")}
    theme = Theme.from_content("v", structured=sections, content="legacy")
    assert theme.text == (
        "<identity>\n\n# Output rules\n\n<output_rules>\n\n# Conversational flow\n\n<conversational_flow>"
        "\n\n# Tools\n\n<tools>\n\n# Guardrails\n\n<guardrails>"
    )
    assert Theme.from_content("v", structured=None, content="  legacy  ").text == "legacy"
    with pytest.raises(InvalidContent, match="guardrails"):
        Theme.from_content("v", structured={**sections, "guardrails": ""})
    with pytest.raises(InvalidContent, match="neither"):
        Theme.from_content("v", structured=None, content="   ")


def _config(edges: dict[str, list[str]]) -> AgentConfig:
    nodes = {n: Node(name=n, role="r", instructions="i", valid_contexts=t) for n, t in edges.items()}
    prov = {k: Provenance(source=Source.DATABASE) for k in component_keys(nodes)}
    models = Models(
        stt=ModelChoice(kind="stt", platform="livekit", value="deepgram/nova-3:multi"),
        llm=ModelChoice(kind="llm", platform="livekit", value="openai/gpt-5"),
        tts=ModelChoice(kind="tts", platform="livekit", value="cartesia/sonic-2"),
    )
    return AgentConfig(
        vertical="v",
        platform="livekit",
        theme=Theme(vertical="v", text="t"),
        nodes=nodes,
        models=models,
        provenance=prov,
        resolved_at=datetime.now(timezone.utc),
    )


def test_whole_config_checks_the_graph() -> None:
    """A config whose targets dangle or whose start node is missing does not validate."""
    assert _config({"greet": ["end"], "end": []}).start_node == "greet"
    with pytest.raises(ValidationError, match="target 'book' is not a node"):
        _config({"greet": ["book"], "end": []})
    with pytest.raises(ValidationError, match="start node 'greet' is missing"):
        _config({"verify": ["end"], "end": []})


def test_config_models_are_frozen() -> None:
    """Resolved configs cannot be modified after validation."""
    config = _config({"greet": ["end"], "end": []})
    with pytest.raises(ValidationError):
        config.vertical = "other"  # type: ignore[misc]


def test_graph_reachability_helpers() -> None:
    """Unreachable nodes and nodes that cannot reach 'end' are found; structure errors are listed."""
    edges = {"greet": ["verify"], "verify": ["end"], "orphan": ["end"], "loop": ["loop2"], "loop2": ["loop"], "end": []}
    assert unreachable_nodes(edges) == ["orphan", "loop", "loop2"]
    assert dead_end_nodes(edges) == ["loop", "loop2"]
    assert graph_errors({"greet": ["x"], "end": ["greet"]}) == [
        "terminal node 'end' must have no valid_contexts, has ['greet']",
        "node 'greet': valid_contexts target 'x' is not a node",
    ]
