"""Direct-psycopg helpers that put agent configuration into the test database.

``seed_vertical`` takes the parsed TOML of a snapshot file; the ``set_*`` helpers mutate
one component so a test can break or change exactly what it is about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import psycopg
from psycopg import sql

THEME_SECTIONS = ("identity", "output_rules", "conversational_flow", "tools", "guardrails")
THEME_HEADINGS = {
    "output_rules": "# Output rules",
    "conversational_flow": "# Conversational flow",
    "tools": "# Tools",
    "guardrails": "# Guardrails",
}
MODEL_TABLES = {
    ("livekit", "stt"): "livekit_available_stt_models",
    ("livekit", "llm"): "livekit_available_llm_models",
    ("livekit", "tts"): "livekit_available_voices",
    ("signalwire", "stt"): "signalwire_available_stt_models",
    ("signalwire", "llm"): "signalwire_available_llm_models",
    ("signalwire", "tts"): "signalwire_available_voices",
}
CONFIG_TABLES = ("theme_prompts", "prompts", "prompt_versions", *MODEL_TABLES.values())


def assemble_theme(sections: Mapping[str, str]) -> str:
    """Joins theme sections: identity first, then headed sections; empty ones are skipped.

    Args:
        sections: Any of ``identity``, ``output_rules``, ``conversational_flow``, ``tools``
            and ``guardrails``.
    """
    parts = []
    for name in THEME_SECTIONS:
        text = (sections.get(name) or "").strip()
        if text:
            parts.append(f"{THEME_HEADINGS[name]}\n\n{text}" if name in THEME_HEADINGS else text)
    return "\n\n".join(parts)


def reset_database(dsn: str) -> None:
    """Empties every configuration table."""
    tables = sql.SQL(", ").join(sql.Identifier("public", t) for t in CONFIG_TABLES)
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(tables))


def seed_vertical(dsn: str, snapshot: Mapping, *, vertical: str | None = None) -> None:
    """Writes a snapshot's theme, nodes and models as active rows, replacing the vertical's.

    Models are global (one active row per table), so seeding also replaces the active ones.

    Args:
        dsn: Database URL.
        snapshot: Parsed snapshot TOML (``vertical``, ``theme``, ``nodes``, ``models``).
        vertical: Overrides ``snapshot["vertical"]``.
    """
    vertical = vertical or snapshot["vertical"]
    with psycopg.connect(dsn) as conn:
        _write_theme(conn, vertical, snapshot.get("theme"))
        conn.execute("DELETE FROM public.prompts WHERE vertical = %s", (vertical,))
        for node, config in snapshot.get("nodes", {}).items():
            _add_version(conn, vertical, node, node_content(config))
        for platform, kinds in snapshot.get("models", {}).items():
            for kind, value in kinds.items():
                if kind != "backups":
                    _activate(conn, MODEL_TABLES[(platform, kind)], value, {})
            for kind, values in kinds.get("backups", {}).items():
                _rank(conn, MODEL_TABLES[(platform, kind)], values)


def set_backups(dsn: str, table: str, values: list[str]) -> None:
    """Makes ``values`` the table's ranked backups (``backup_rank`` 1, 2, ...), unranking every other row.

    Args:
        dsn: Database URL.
        table: A model table.
        values: Full model or voice ids, best first; missing rows are inserted inactive.
    """
    if table not in MODEL_TABLES.values():
        raise ValueError(f"not a model table: {table}")
    with psycopg.connect(dsn) as conn:
        _rank(conn, table, values)


def node_content(config: Mapping) -> dict:
    """Returns the ``prompt_versions.content`` of a snapshot node (``functions`` = ``tools``)."""
    content = dict(config)
    content.setdefault("functions", list(content.get("tools", [])))
    return content


def set_theme(dsn: str, vertical: str, theme: Mapping | None, *, is_active: bool = True) -> None:
    """Replaces a vertical's theme row, or deletes it when ``theme`` is None.

    Args:
        dsn: Database URL.
        vertical: Vertical name.
        theme: The five sections, or ``{"content": ...}`` for a legacy row.
        is_active: Value of ``is_active``.
    """
    with psycopg.connect(dsn) as conn:
        _write_theme(conn, vertical, theme, is_active)


def set_node_content(dsn: str, vertical: str, node: str, content: Mapping | str) -> int:
    """Adds a new active version (highest number) of a node, creating its prompt if needed.

    Args:
        dsn: Database URL.
        vertical: Vertical name.
        node: Node name.
        content: A dict, or raw JSON text (e.g. ``'"not an object"'``) for bad-data tests.

    Returns:
        The new version number.
    """
    with psycopg.connect(dsn) as conn:
        return _add_version(conn, vertical, node, content)


def delete_node(dsn: str, vertical: str, node: str) -> None:
    """Deletes a node's prompts and versions."""
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM public.prompts WHERE vertical = %s AND node_name = %s", (vertical, node))


def set_active_model(dsn: str, table: str, value: str | None, **columns: object) -> None:
    """Makes ``value`` the only active row of a model table (None: no active row).

    Args:
        dsn: Database URL.
        table: One of :data:`MODEL_TABLES`' values.
        value: The ``model_id_full`` / ``voice_id_full``, e.g. ``"deepgram/nova-3:multi"``.
        **columns: Extra column values, e.g. ``is_custom=True``.
    """
    if table not in MODEL_TABLES.values():
        raise ValueError(f"not a model table: {table}")
    with psycopg.connect(dsn) as conn:
        _activate(conn, table, value, columns)


def model_row(table: str, value: str) -> dict[str, object]:
    """Splits a full model or voice id into the table's columns.

    ``deepgram/nova-3:multi`` gives provider ``deepgram`` and model_name ``nova-3``;
    ``elevenlabs/eleven_turbo_v2_5:VOICE`` gives provider, model and voice_id ``VOICE``.
    SignalWire tables only get their ``*_full`` column.
    """
    if table.startswith("signalwire_"):
        return {"voice_id_full" if table.endswith("_voices") else "model_id_full": value}
    provider, _, rest = value.partition("/") if "/" in value else ("", "", value)
    if table.endswith("_voices"):
        model, _, voice_id = rest.rpartition(":")
        return {
            "provider": provider,
            "voice_name": voice_id,
            "voice_id": voice_id,
            "voice_id_full": value,
            "model": model or None,
        }
    return {"provider": provider, "model_name": rest.split(":")[0], "model_id_full": value}


def _write_theme(conn: psycopg.Connection, vertical: str, theme: Mapping | None, is_active: bool = True) -> None:
    conn.execute("DELETE FROM public.theme_prompts WHERE vertical = %s", (vertical,))
    if theme is None:
        return
    structured, content = None, theme.get("content")
    if any(name in theme for name in THEME_SECTIONS):
        structured = json.dumps({name: theme.get(name, "") for name in THEME_SECTIONS})
        content = assemble_theme(theme)
    conn.execute(
        "INSERT INTO public.theme_prompts (vertical, content, content_structured, is_active)"
        " VALUES (%s, %s, %s::jsonb, %s)",
        (vertical, content, structured, is_active),
    )


def _add_version(conn: psycopg.Connection, vertical: str, node: str, content: Mapping | str) -> int:
    prompt = conn.execute(
        "SELECT id FROM public.prompts WHERE vertical = %s AND node_name = %s ORDER BY created_at DESC LIMIT 1",
        (vertical, node),
    ).fetchone()
    if prompt is None:
        prompt = conn.execute(
            "INSERT INTO public.prompts (name, vertical, node_name) VALUES (%s, %s, %s) RETURNING id",
            (f"{vertical}.{node}", vertical, node),
        ).fetchone()
    raw = content if isinstance(content, str) else json.dumps(content)
    (version,) = conn.execute(
        "INSERT INTO public.prompt_versions"
        " (prompt_id, version_number, content, is_active, is_draft, created_by)"
        " SELECT %(id)s, coalesce(max(version_number), 0) + 1, %(raw)s::jsonb, true, false, 'seed'"
        " FROM public.prompt_versions WHERE prompt_id = %(id)s RETURNING version_number",
        {"id": prompt[0], "raw": raw},
    ).fetchone()
    conn.execute("UPDATE public.prompts SET current_version = %s WHERE id = %s", (version, prompt[0]))
    return version


def _rank(conn: psycopg.Connection, table: str, values: list[str]) -> None:
    target = sql.Identifier("public", table)
    key = sql.Identifier("voice_id_full" if table.endswith("_voices") else "model_id_full")
    conn.execute(sql.SQL("UPDATE {} SET backup_rank = NULL WHERE backup_rank IS NOT NULL").format(target))
    for rank, value in enumerate(values, start=1):
        row = {**model_row(table, value), "backup_rank": rank}
        names = [sql.Identifier(name) for name in row]
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET backup_rank = {}").format(
            target,
            sql.SQL(", ").join(names),
            sql.SQL(", ").join(sql.Placeholder() * len(row)),
            key,
            sql.Literal(rank),
        )
        conn.execute(statement, list(row.values()))


def _activate(conn: psycopg.Connection, table: str, value: str | None, columns: Mapping[str, object]) -> None:
    target = sql.Identifier("public", table)
    conn.execute(sql.SQL("UPDATE {} SET is_active = false WHERE is_active").format(target))
    if value is None:
        return
    row = {**model_row(table, value), **columns, "is_active": True}
    key = "voice_id_full" if table.endswith("_voices") else "model_id_full"
    names = [sql.Identifier(name) for name in row]
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}").format(
        target,
        sql.SQL(", ").join(names),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
        sql.Identifier(key),
        sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(n) for n in names),
    )
    conn.execute(statement, list(row.values()))
