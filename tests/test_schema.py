"""The migration on a real PostgreSQL: active-version rule, one active model, row level security."""

from __future__ import annotations

import psycopg
import pytest

from .conftest import SeededDatabase
from .support.seed import set_node_content

TABLES = [
    "theme_prompts",
    "prompts",
    "prompt_versions",
    "livekit_available_stt_models",
    "livekit_available_llm_models",
    "livekit_available_voices",
    "signalwire_available_llm_models",
    "signalwire_available_stt_models",
    "signalwire_available_voices",
]


def test_every_table_has_row_level_security(seeded: SeededDatabase) -> None:
    """RLS is on for every config table, so the public anon key cannot read or rewrite prompts."""
    with psycopg.connect(seeded.dsn) as conn:
        rows = conn.execute(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'", (TABLES,)
        ).fetchall()
    assert dict(rows) == dict.fromkeys(TABLES, True)


def test_the_view_serves_the_highest_active_non_draft_version(seeded: SeededDatabase) -> None:
    """A newer draft or inactive version never replaces the active one; a newer active one does."""
    base = {"role": "r", "instructions": "i", "valid_contexts": ["qualify"]}
    active = set_node_content(seeded.dsn, "reverse_mortgage", "verify", {**base, "instructions": "active"})
    with psycopg.connect(seeded.dsn) as conn:
        (prompt_id,) = conn.execute(
            "SELECT prompt_id FROM active_node_prompts WHERE vertical = 'reverse_mortgage' AND node_name = 'verify'"
        ).fetchone()
        conn.execute(
            "INSERT INTO prompt_versions (prompt_id, version_number, content, is_active, is_draft) VALUES"
            ' (%s, %s, \'{"role": "draft"}\', true, true), (%s, %s, \'{"role": "off"}\', false, false)',
            (prompt_id, active + 1, prompt_id, active + 2),
        )
        rows = conn.execute(
            "SELECT version_number, content->>'instructions' FROM active_node_prompts"
            " WHERE vertical = 'reverse_mortgage' AND node_name = 'verify'"
        ).fetchall()
    assert rows == [(active, "active")]


def test_a_second_active_model_row_is_refused(seeded: SeededDatabase) -> None:
    """The partial unique index keeps at most one active row per model table."""
    with psycopg.connect(seeded.dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO livekit_available_llm_models (provider, model_name, model_id_full, is_active)"
            " VALUES ('openai', 'gpt-4o', 'openai/gpt-4o', true)"
        )


def test_the_migration_can_be_applied_twice(seeded: SeededDatabase) -> None:
    """Re-applying the migration to a project that has it changes nothing and does not fail."""
    from .support.pg import apply_migrations

    apply_migrations(seeded.dsn)
    with psycopg.connect(seeded.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM active_node_prompts").fetchone()[0] == 9
