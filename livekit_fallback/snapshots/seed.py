"""Write a snapshot into the database as active rows, through the supabase client.

For new projects, local development and demos. Seeding is planned per
component first: ``create`` (the database has no usable active row), ``same``
(it already holds this exact value: nothing is written) or ``conflict`` (it
holds a different active value). Conflicts are refused unless forced, before
anything is written, so a second run changes nothing. Model tables hold one
active row globally, not per vertical: replacing a model affects every vertical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from supabase import AsyncClient

from ..config.keys import PLATFORMS, ComponentKey, ModelKind, Platform, component_keys
from ..config.model import ModelChoice, ThemeSections
from ..config.model_strings import voice_of
from ..config.sources.rows import RANK_COLUMN
from ..config.sources.supabase import MODEL_TABLES, THEME_TABLE
from .content import backup_keys, node_order, parse_backup_key
from .read import DatabaseConfig, run_query

__all__ = ["SEED_AUTHOR", "SeedStep", "apply_plan", "plan_seed"]

SEED_AUTHOR = "livekit-fallback snapshot seed"
"""``prompt_versions.created_by`` of the versions seed writes."""


@dataclass(frozen=True)
class SeedStep:
    """What seeding does to one component.

    Attributes:
        key: Component key (``theme``, ``nodes.<name>``, ``models.<platform>.<kind>``).
        action: ``create``, ``same`` or ``conflict``.
        value: The snapshot's canonical value.
        detail: Why, for ``conflict`` (what the database holds).
    """

    key: str
    action: str
    value: Any
    detail: str = ""


def plan_seed(snapshot_values: Mapping[str, Any], database: DatabaseConfig) -> list[SeedStep]:
    """Decide, per component of the snapshot, whether seeding creates, skips or conflicts."""
    components = [ComponentKey.parse(key) for key in snapshot_values if parse_backup_key(key) is None]
    names = node_order([component.name for component in components if component.kind == "node"])
    steps = []
    for key in map(str, component_keys(names, PLATFORMS)):
        value, current = snapshot_values[key], database.value(key)
        if current == value:
            steps.append(SeedStep(key, "same", value))
        elif current is None and not _occupied(key, database):
            steps.append(SeedStep(key, "create", value))
        else:
            steps.append(SeedStep(key, "conflict", value, _conflict_detail(key, current, database)))
    for key in backup_keys():
        value, current = snapshot_values.get(key, []), database.value(key)
        if current == value:
            steps.append(SeedStep(key, "same", value))
        elif not current:
            steps.append(SeedStep(key, "create", value))
        else:
            shown = ", ".join(repr(entry["value"]) for entry in current)
            detail = f"database ranks {shown} as backups (model tables are global: shared by every vertical)"
            steps.append(SeedStep(key, "conflict", value, detail))
    return steps


async def apply_plan(
    client: AsyncClient, steps: list[SeedStep], database: DatabaseConfig, *, key: str, summary: str
) -> None:
    """Write every ``create`` and ``conflict`` step (conflicts only when the caller forces them).

    Args:
        client: An open supabase client (see :func:`~.read.open_client`).
        steps: The plan from :func:`plan_seed`.
        database: What the database held when the plan was made.
        key: The service key, redacted from error messages.
        summary: ``prompt_versions.change_summary`` of new node versions.

    Raises:
        DatabaseReadError: A request failed; components written before it stay written.
    """
    writer = _Writer(client, database, key, summary)
    for step in steps:
        if step.action == "same":
            continue
        listed = parse_backup_key(step.key)
        if listed is not None:
            await writer.backups(*listed, step.value)
            continue
        component = ComponentKey.parse(step.key)
        if component.kind == "theme":
            await writer.theme(step.value)
        elif component.kind == "node":
            await writer.node(component.name, step.value)
        else:
            assert component.platform is not None  # seed plans name both platforms' models
            await writer.model(component.platform, component.model_kind, step.value)


def _occupied(key: str, database: DatabaseConfig) -> bool:
    """True when the database has active rows for the component, even unusable ones."""
    problem = database.problems.get(key, "")
    return bool(problem) and not problem.startswith("no row in ")


def _conflict_detail(key: str, current: Any, database: DatabaseConfig) -> str:
    if current is None:
        return f"database: {database.problems.get(key, 'unusable active row')}"
    if key.startswith("models."):
        return f"database has {current['value']!r} active (model tables are global: shared by every vertical)"
    return "database has a different active value"


class _Writer:
    """The requests that write one component each (supabase client, PostgREST)."""

    def __init__(self, client: AsyncClient, database: DatabaseConfig, key: str, summary: str) -> None:
        self.client = client
        self.database = database
        self.key = key
        self.summary = summary
        self.now = datetime.now(timezone.utc).isoformat()

    async def _run(self, builder: Any, location: str) -> list[Mapping[str, Any]]:
        return await run_query(builder, location, self.key)

    async def theme(self, theme: Mapping[str, Any]) -> None:
        if "content" in theme:
            row = {"content": theme["content"], "content_structured": None}
        else:
            row = {"content": ThemeSections.model_validate(dict(theme)).assemble(), "content_structured": dict(theme)}
        row.update(is_active=True, updated_at=self.now)
        vertical = self.database.vertical
        table = self.client.table(THEME_TABLE)
        updated = await self._run(table.update(row).eq("vertical", vertical), THEME_TABLE)
        if not updated:
            await self._run(self.client.table(THEME_TABLE).insert({"vertical": vertical, **row}), THEME_TABLE)

    async def node(self, name: str, content: Mapping[str, Any]) -> None:
        prompt_ids = self.database.prompt_ids.get(name, [])
        if prompt_ids:
            prompt_id, extra = prompt_ids[0], prompt_ids[1:]
        else:
            prompt_id, extra = await self._prompt_for(name), []
        latest = await self._run(
            self.client.table("prompt_versions")
            .select("version_number")
            .eq("prompt_id", prompt_id)
            .order("version_number", desc=True)
            .limit(1),
            "prompt_versions",
        )
        number = int(latest[0]["version_number"]) + 1 if latest else 1
        stored = {**content, "functions": content.get("functions", content.get("tools", []))}
        version = {
            "prompt_id": prompt_id,
            "version_number": number,
            "content": stored,
            "is_active": True,
            "is_draft": False,
            "created_by": SEED_AUTHOR,
            "change_summary": self.summary,
        }
        (row,) = await self._run(self.client.table("prompt_versions").insert(version), "prompt_versions")
        await self._run(
            self.client.table("prompt_versions")
            .update({"is_active": False})
            .eq("prompt_id", prompt_id)
            .eq("is_active", True)
            .neq("id", row["id"]),
            "prompt_versions",
        )
        await self._run(
            self.client.table("prompts").update({"current_version": number, "is_active": True}).eq("id", prompt_id),
            "prompts",
        )
        if extra:
            await self._run(self.client.table("prompts").update({"is_active": False}).in_("id", extra), "prompts")

    async def _prompt_for(self, name: str) -> str:
        vertical = self.database.vertical
        found = await self._run(
            self.client.table("prompts")
            .select("id")
            .eq("vertical", vertical)
            .eq("node_name", name)
            .eq("is_active", True)
            .order("created_at", desc=True)
            .limit(1),
            "prompts",
        )
        if found:
            return str(found[0]["id"])
        prompt = {"name": f"{vertical}.{name}", "vertical": vertical, "node_name": name, "is_active": True}
        (row,) = await self._run(self.client.table("prompts").insert(prompt), "prompts")
        return str(row["id"])

    async def model(self, platform: Platform, kind: ModelKind, entry: Mapping[str, Any]) -> None:
        """Make ``entry`` the table's one active row without ever leaving it with none.

        The new catalogue row is written (inactive) first; only then is the old
        active row switched off and the new one on. If switching the new one on
        fails, the old row is switched back on.
        """
        table, column = MODEL_TABLES[(platform, kind)]
        value = entry["value"]
        flags: dict[str, Any] = {}
        if table == "livekit_available_voices":
            flags["is_custom"] = bool(entry.get("is_custom"))
        existing = await self._run(self.client.table(table).select("id").eq(column, value).limit(1), table)
        if existing:
            row_id = existing[0]["id"]
        else:
            row = {**_catalogue_row(platform, kind, table, column, value), **flags, "is_active": False}
            (created,) = await self._run(self.client.table(table).insert(row), table)
            row_id = created["id"]
        current = self.database.models.get((platform, kind))
        previous: list[Any] = []
        if current is None or current["value"] != value:  # free the one active slot
            previous = await self._run(
                self.client.table(table).update({"is_active": False}).eq("is_active", True).neq("id", row_id), table
            )
        try:
            await self._run(self.client.table(table).update({**flags, "is_active": True}).eq("id", row_id), table)
        except BaseException:
            for old in previous or []:
                await self._run(self.client.table(table).update({"is_active": True}).eq("id", old["id"]), table)
            raise

    async def backups(self, platform: Platform, kind: ModelKind, entries: list[Mapping[str, Any]]) -> None:
        """Rank ``entries`` 1, 2, ... as the table's backups; other rows lose their rank.

        Missing catalogue rows are written (inactive) first; the active row is
        never touched, so seeding backups cannot leave a table without one.
        """
        table, column = MODEL_TABLES[(platform, kind)]
        ids = []
        for entry in entries:
            value = entry["value"]
            existing = await self._run(self.client.table(table).select("id").eq(column, value).limit(1), table)
            if existing:
                ids.append(existing[0]["id"])
                continue
            row = {**_catalogue_row(platform, kind, table, column, value), "is_active": False}
            if table == "livekit_available_voices":
                row["is_custom"] = bool(entry.get("is_custom"))
            (created,) = await self._run(self.client.table(table).insert(row), table)
            ids.append(created["id"])
        ranked = self.client.table(table).update({RANK_COLUMN: None}).not_.is_(RANK_COLUMN, "null")
        if ids:
            ranked = ranked.not_.in_("id", ids)
        await self._run(ranked, table)
        for rank, row_id in enumerate(ids, start=1):
            await self._run(self.client.table(table).update({RANK_COLUMN: rank}).eq("id", row_id), table)


def _catalogue_row(platform: Platform, kind: ModelKind, table: str, column: str, value: str) -> dict[str, Any]:
    """The descriptive columns of a new catalogue row, derived from the full model string."""
    choice = ModelChoice(kind=kind, platform=platform, value=value)
    row: dict[str, Any] = {column: value, "provider": choice.provider or None}
    if table == "livekit_available_voices":
        row.update(voice_name=voice_of(platform, kind, value), voice_id=choice.variant or "", model=choice.model)
    elif table == "signalwire_available_voices":
        row["voice_name"] = voice_of(platform, kind, value)
    else:
        row["model_name"] = choice.model
    return row
