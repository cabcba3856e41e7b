"""Draw a vertical's node flow as Mermaid or Graphviz DOT.

Nodes are the conversation nodes (with the tools each may call), edges are
their ``valid_contexts`` transitions, the start node and the terminal ``end``
have their own shapes. Problems are marked with classes (Mermaid) or styles
(DOT) and spelled out in the label: nodes unreachable from the start, nodes
that cannot reach ``end``, targets that are not nodes, and, for a live
resolution, nodes currently served from a fallback copy instead of the
database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..config.graph import END_NODE, START_NODE, dead_end_nodes, unreachable_nodes
from ..config.keys import ComponentKey
from ..config.model import AgentConfig, Platform, Source
from ..config.sources.snapshot import Snapshot
from .content import canonical_node

__all__ = ["FORMATS", "FlowGraph", "render_graph", "to_dot", "to_mermaid"]

FORMATS = ("mermaid", "dot")

_MERMAID_CLASSES = {
    "start": "fill:#e7f1ff,stroke:#0a58ca,stroke-width:2px",
    "terminal": "fill:#e9ecef,stroke:#495057,stroke-width:2px",
    "unreachable": "fill:#f8d7da,stroke:#b02a37,stroke-width:2px,stroke-dasharray:5 3",
    "deadend": "fill:#fff3cd,stroke:#b58100,stroke-width:2px,stroke-dasharray:5 3",
    "missing": "fill:#ffffff,stroke:#b02a37,stroke-width:2px,stroke-dasharray:2 2",
    "fallback": "fill:#ffe5d0,stroke:#fd7e14,stroke-width:3px",
}
_DOT_STYLES = {
    "unreachable": 'style="rounded,filled,dashed", fillcolor="#f8d7da", color="#b02a37"',
    "deadend": 'style="rounded,filled,dashed", fillcolor="#fff3cd", color="#b58100"',
    "missing": 'style="dotted", color="#b02a37"',
    "fallback": 'style="rounded,filled,bold", fillcolor="#ffe5d0", color="#fd7e14"',
}
_MARKS = {
    "unreachable": f"unreachable from {START_NODE}",
    "deadend": f"cannot reach {END_NODE}",
    "missing": "not a node",
}


@dataclass
class FlowGraph:
    """A node flow ready to draw.

    Attributes:
        title: What the graph shows, for a comment line.
        nodes: Node name to ``(targets, tools)``, in conversation order.
        fallback: Node name to the source serving it, for nodes not from the database.
    """

    title: str
    nodes: dict[str, tuple[list[str], list[str]]]
    fallback: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, platform: Platform = "livekit") -> FlowGraph:
        """The flow in a snapshot file, with the platform's tool names (drawn even if invalid)."""
        nodes = {}
        for name, content in snapshot.nodes.items():
            node = canonical_node(content)
            tools = node.get("functions", node["tools"]) if platform == "signalwire" else node["tools"]
            nodes[name] = (_strings(node["valid_contexts"]), _strings(tools))
        title = f"{snapshot.vertical} ({platform}) from snapshot {snapshot.path} taken {snapshot.taken_at.isoformat()}"
        return cls(title, nodes)

    @classmethod
    def from_config(cls, config: AgentConfig) -> FlowGraph:
        """The flow of a resolved config, marking nodes served from a fallback."""
        nodes = {name: (list(n.valid_contexts), list(n.tools)) for name, n in config.nodes.items()}
        fallback = {
            component.name: prov.source.value
            for component, prov in ((ComponentKey.parse(k), p) for k, p in config.provenance.items())
            if component.kind == "node" and prov.source is not Source.DATABASE
        }
        title = f"{config.vertical} ({config.platform}) resolved live at {config.resolved_at.isoformat()}"
        return cls(title, nodes, fallback)

    @property
    def edges(self) -> list[tuple[str, str]]:
        """Every transition, in node order."""
        return [(name, target) for name, (targets, _) in self.nodes.items() for target in targets]

    def marks(self) -> dict[str, list[str]]:
        """Node name (including missing targets) to its problem classes."""
        edges = {name: [t for t in targets if t in self.nodes] for name, (targets, _) in self.nodes.items()}
        marks: dict[str, list[str]] = {name: [] for name in self.nodes}
        if START_NODE in edges:
            for name in unreachable_nodes(edges, START_NODE):
                marks[name].append("unreachable")
        if END_NODE in edges:
            for name in dead_end_nodes(edges, END_NODE):
                marks[name].append("deadend")
        for name in self.fallback:
            marks.setdefault(name, []).append("fallback")
        for _, target in self.edges:
            if target not in self.nodes:
                marks[target] = ["missing"]
        return marks


def render_graph(graph: FlowGraph, fmt: str = "mermaid") -> str:
    """Render in ``mermaid`` or ``dot``.

    Raises:
        ValueError: Unknown format.
    """
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "dot":
        return to_dot(graph)
    raise ValueError(f"unknown graph format {fmt!r} (expected one of {FORMATS})")


def to_mermaid(graph: FlowGraph) -> str:
    """A Mermaid ``flowchart``; node ids are ``n_<name>`` (``end`` is reserved in Mermaid)."""
    marks = graph.marks()
    lines = ["flowchart TD", f"    %% livekit-fallback node flow: {graph.title}"]
    for name, classes in marks.items():
        label = _label(graph, name, classes, "<br/>").replace('"', "#quot;")
        if name == END_NODE:
            shape = f'((("{label}")))'
        elif name == START_NODE:
            shape = f'(["{label}"])'
        else:
            shape = f'["{label}"]'
        lines.append(f"    {_id(name)}{shape}")
    lines += [f"    {_id(source)} --> {_id(target)}" for source, target in graph.edges]
    used = {c for classes in marks.values() for c in classes}
    used |= {c for c, node in (("start", START_NODE), ("terminal", END_NODE)) if node in graph.nodes}
    lines += [f"    classDef {name} {style}" for name, style in _MERMAID_CLASSES.items() if name in used]
    if START_NODE in graph.nodes:
        lines.append(f"    class {_id(START_NODE)} start")
    if END_NODE in graph.nodes:
        lines.append(f"    class {_id(END_NODE)} terminal")
    for name, classes in marks.items():
        lines += [f"    class {_id(name)} {c}" for c in classes]
    return "\n".join(lines) + "\n"


def to_dot(graph: FlowGraph) -> str:
    """A Graphviz ``digraph``."""
    marks = graph.marks()
    lines = [
        f"// livekit-fallback node flow: {graph.title}",
        "digraph flow {",
        "    rankdir=TB;",
        '    node [shape=box, style="rounded", fontname="Helvetica"];',
    ]
    for name, classes in marks.items():
        attrs = [f"label={_quote(_label(graph, name, classes, chr(10)))}"]
        if name == END_NODE:
            attrs.append("shape=doublecircle")
        elif name == START_NODE:
            attrs.append("peripheries=2")
        attrs += [_DOT_STYLES[c] for c in classes[:1]]  # the first, most telling mark
        lines.append(f"    {_quote(name)} [{', '.join(attrs)}];")
    lines += [f"    {_quote(source)} -> {_quote(target)};" for source, target in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _label(graph: FlowGraph, name: str, classes: list[str], newline: str) -> str:
    parts = [name]
    tools = graph.nodes.get(name, ([], []))[1]
    if tools:
        parts.append("tools: " + ", ".join(tools))
    parts += [f"⚠ {_MARKS[c]}" for c in classes if c in _MARKS]
    if "fallback" in classes:
        parts.append(f"⚠ served from {graph.fallback[name]}")
    return newline.join(parts)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else []


def _id(name: str) -> str:
    return "n_" + re.sub(r"\W", "_", name)
