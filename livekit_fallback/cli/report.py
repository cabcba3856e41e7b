"""Render a resolved config's provenance as the JSON contract and as a table.

The JSON shape is a contract other tools read::

    {"vertical": ..., "platform": ..., "elapsed_ms": ...,
     "degraded": bool,
     "theme": {"source": ..., "reason": ...},
     "nodes": {"greet": {"source": ..., "reason": ...}, ...},
     "models": {"stt": {"source": ..., "reason": ..., "value": ...}, ...},
     "health": {...}}

``source`` is ``database`` | ``last_known_good`` | ``snapshot``; ``reason`` is
the reason class, ``null`` when the component came from the database. Extra
keys (``detail``, ``taken_at``, ``location``) may be added, never removed.
``resolve --json`` adds ``health``, the resolver's health record in the one
shape ``status`` prints (:meth:`~livekit_fallback.config.status.Status.to_json`).
"""

from __future__ import annotations

from typing import Any

from ..config.model import AgentConfig, Provenance

__all__ = ["provenance_json", "provenance_table"]


def _entry(prov: Provenance) -> dict[str, Any]:
    return {
        "source": prov.source.value,
        "reason": prov.reason.value if prov.reason else None,
        "detail": prov.detail,
        "taken_at": prov.taken_at.isoformat() if prov.taken_at else None,
        "location": prov.location,
    }


def provenance_json(config: AgentConfig, elapsed_ms: float) -> dict[str, Any]:
    """The machine-readable provenance record of one resolution."""
    models: dict[str, Any] = {}
    for kind in ("stt", "llm", "tts"):
        choice = getattr(config.models, kind)
        models[kind] = {**_entry(config.provenance[f"models.{kind}"]), "value": choice.value}
    return {
        "vertical": config.vertical,
        "platform": config.platform,
        "elapsed_ms": round(elapsed_ms, 1),
        "degraded": config.is_degraded,
        "theme": _entry(config.provenance["theme"]),
        "nodes": {name: _entry(config.provenance[f"nodes.{name}"]) for name in config.nodes},
        "models": models,
    }


def provenance_table(config: AgentConfig, elapsed_ms: float) -> str:
    """A human-readable table: each component, its source, its reason."""
    degraded = len(config.degraded)
    total = len(config.provenance)
    status = f"DEGRADED: {degraded} of {total} components from fallbacks" if degraded else "all from database"
    rows = [("COMPONENT", "SOURCE", "REASON", "VALUE / DETAIL")]
    for key, prov in config.provenance.items():
        value = ""
        if key.startswith("models."):
            value = getattr(config.models, key.split(".", 1)[1]).value
        if prov.detail:
            value = f"{value}  ({prov.detail})" if value else prov.detail
        rows.append((key, prov.source.value, prov.reason.value if prov.reason else "-", value))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{config.vertical} / {config.platform}: resolved in {elapsed_ms:.0f} ms ({status})", ""]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
    return "\n".join(line.rstrip() for line in lines)
