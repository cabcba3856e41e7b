"""The state file's schema and every query on it, beside each other.

:func:`transaction` gives the file's
:class:`~livekit_fallback.config.state.storage.Transaction`: one
deployment's rows. :func:`migrate` creates the schema and drops rows of an
earlier version that cannot say whose they are; :func:`all_rows` reads every
deployment at once for status views.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from ...log import logger
from .records import BreakerRecord, IncidentRecord, OutageRecord, StoredConfig
from .storage import DeploymentRows, LastKnownGood, Transaction

__all__ = ["SCHEMA_VERSION", "all_rows", "migrate", "transaction"]

SCHEMA_VERSION = 2
"""2: every row keyed by its deployment. Rows of version 1 say nothing of theirs and are dropped."""

HISTORY_KEPT = 200
"""Ended outages kept per deployment."""

_OLD_TABLES = ("configs", "leases", "breaker", "incidents", "outages", "last_known_good", "notices", "outage_history")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS configs (
    deployment TEXT NOT NULL, vertical TEXT NOT NULL, platform TEXT NOT NULL, payload TEXT NOT NULL,
    read_at REAL NOT NULL, degraded INTEGER NOT NULL, PRIMARY KEY (deployment, vertical, platform));
CREATE TABLE IF NOT EXISTS leases (
    deployment TEXT NOT NULL, name TEXT NOT NULL, holder TEXT NOT NULL, until REAL NOT NULL,
    PRIMARY KEY (deployment, name));
CREATE TABLE IF NOT EXISTS breaker (
    deployment TEXT PRIMARY KEY, state TEXT NOT NULL, failures INTEGER NOT NULL, opened_at REAL, last_error TEXT);
CREATE TABLE IF NOT EXISTS incidents (
    deployment TEXT NOT NULL, vertical TEXT NOT NULL, platform TEXT NOT NULL, component TEXT NOT NULL,
    reason TEXT NOT NULL, started_at REAL NOT NULL, last_line REAL NOT NULL, since_line INTEGER NOT NULL,
    total INTEGER NOT NULL, PRIMARY KEY (deployment, vertical, platform, component));
CREATE TABLE IF NOT EXISTS outages (
    deployment TEXT NOT NULL, vertical TEXT NOT NULL, platform TEXT NOT NULL, started_at REAL NOT NULL,
    resolutions INTEGER NOT NULL, PRIMARY KEY (deployment, vertical, platform));
CREATE TABLE IF NOT EXISTS outage_history (
    deployment TEXT NOT NULL, vertical TEXT NOT NULL, platform TEXT NOT NULL, started_at REAL NOT NULL,
    ended_at REAL NOT NULL, resolutions INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS last_known_good (
    deployment TEXT NOT NULL, vertical TEXT NOT NULL, platform TEXT NOT NULL, component TEXT NOT NULL,
    value TEXT NOT NULL, read_at TEXT NOT NULL, PRIMARY KEY (deployment, vertical, platform, component));
"""


class _SqliteTransaction:
    """A :class:`~livekit_fallback.config.state.storage.Transaction`: one deployment's rows."""

    def __init__(self, conn: sqlite3.Connection, deployment: str) -> None:
        self._c = conn
        self._d = deployment

    def _one(self, sql: str, *args: object) -> tuple[object, ...] | None:
        row: tuple[object, ...] | None = self._c.execute(sql, (self._d, *args)).fetchone()
        return row

    def config(self, vertical: str, platform: str) -> StoredConfig | None:
        row = self._one(
            "SELECT payload, read_at, degraded FROM configs WHERE deployment = ? AND vertical = ? AND platform = ?",
            vertical,
            platform,
        )
        return None if row is None else StoredConfig(str(row[0]), float(row[1]), bool(row[2]))  # type: ignore[arg-type]

    def put_config(self, vertical: str, platform: str, entry: StoredConfig) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO configs VALUES (?, ?, ?, ?, ?, ?)",
            (self._d, vertical, platform, entry.payload, entry.read_at, int(entry.degraded)),
        )

    def lease(self, name: str) -> tuple[str, float] | None:
        row = self._one("SELECT holder, until FROM leases WHERE deployment = ? AND name = ?", name)
        return None if row is None else (str(row[0]), float(row[1]))  # type: ignore[arg-type]

    def put_lease(self, name: str, holder: str, until: float) -> None:
        self._c.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)", (self._d, name, holder, until))

    def drop_lease(self, name: str, holder: str) -> None:
        self._c.execute("DELETE FROM leases WHERE deployment = ? AND name = ? AND holder = ?", (self._d, name, holder))

    def breaker(self) -> BreakerRecord:
        row = self._one("SELECT state, failures, opened_at, last_error FROM breaker WHERE deployment = ?")
        return BreakerRecord() if row is None else BreakerRecord(*row)  # type: ignore[arg-type]

    def put_breaker(self, record: BreakerRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO breaker VALUES (?, ?, ?, ?, ?)",
            (self._d, record.state, record.failures, record.opened_at, record.last_error),
        )

    def incident(self, vertical: str, platform: str, component: str) -> IncidentRecord | None:
        row = self._one(
            "SELECT reason, started_at, last_line, since_line, total FROM incidents "
            "WHERE deployment = ? AND vertical = ? AND platform = ? AND component = ?",
            vertical,
            platform,
            component,
        )
        return None if row is None else IncidentRecord(*row)  # type: ignore[arg-type]

    def put_incident(self, vertical: str, platform: str, component: str, record: IncidentRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self._d, vertical, platform, component, record.reason, record.started_at, record.last_line)
            + (record.since_line, record.total),
        )

    def drop_incidents(self, vertical: str, platform: str, components: Iterable[str]) -> None:
        self._c.executemany(
            "DELETE FROM incidents WHERE deployment = ? AND vertical = ? AND platform = ? AND component = ?",
            [(self._d, vertical, platform, c) for c in components],
        )

    def has_incidents(self, vertical: str, platform: str) -> bool:
        sql = "SELECT 1 FROM incidents WHERE deployment = ? AND vertical = ? AND platform = ? LIMIT 1"
        return self._one(sql, vertical, platform) is not None

    def outage(self, vertical: str, platform: str) -> OutageRecord | None:
        sql = "SELECT started_at, resolutions FROM outages WHERE deployment = ? AND vertical = ? AND platform = ?"
        row = self._one(sql, vertical, platform)
        return None if row is None else OutageRecord(*row)  # type: ignore[arg-type]

    def put_outage(self, vertical: str, platform: str, record: OutageRecord) -> None:
        self._c.execute(
            "INSERT OR REPLACE INTO outages VALUES (?, ?, ?, ?, ?)",
            (self._d, vertical, platform, record.started_at, record.resolutions),
        )

    def end_outage(self, vertical: str, platform: str, record: OutageRecord, ended_at: float) -> None:
        self._c.execute(
            "DELETE FROM outages WHERE deployment = ? AND vertical = ? AND platform = ?", (self._d, vertical, platform)
        )
        self._c.execute(
            "INSERT INTO outage_history VALUES (?, ?, ?, ?, ?, ?)",
            (self._d, vertical, platform, record.started_at, ended_at, record.resolutions),
        )
        self._c.execute(
            "DELETE FROM outage_history WHERE deployment = ? AND rowid NOT IN (SELECT rowid FROM outage_history "
            "WHERE deployment = ? ORDER BY ended_at DESC LIMIT ?)",
            (self._d, self._d, HISTORY_KEPT),
        )

    def last_known_good(self, vertical: str, platform: str) -> LastKnownGood:
        rows = self._c.execute(
            "SELECT component, value, read_at FROM last_known_good WHERE deployment = ? AND vertical = ? "
            "AND platform = ?",
            (self._d, vertical, platform),
        )
        return {component: (value, read_at) for component, value, read_at in rows}

    def put_last_known_good(self, vertical: str, platform: str, components: Mapping[str, tuple[str, str]]) -> None:
        self._c.executemany(
            "INSERT OR REPLACE INTO last_known_good VALUES (?, ?, ?, ?, ?, ?)",
            [(self._d, vertical, platform, key, value, read_at) for key, (value, read_at) in components.items()],
        )


def all_rows(conn: sqlite3.Connection, history: int) -> list[DeploymentRows]:
    """Every deployment's rows in one read transaction (a consistent picture)."""
    conn.execute("BEGIN")
    try:
        grouped: dict[str, dict[str, list[object]]] = {}

        def add(kind: str, deployment: str, item: object) -> None:
            grouped.setdefault(deployment, {}).setdefault(kind, []).append(item)

        breakers = {d: BreakerRecord(*rest) for d, *rest in conn.execute("SELECT * FROM breaker")}
        for d, v, p, payload, read_at, degraded in conn.execute("SELECT * FROM configs ORDER BY vertical, platform"):
            add("configs", d, (v, p, StoredConfig(payload, read_at, bool(degraded))))
        for d, v, p, c, *rest in conn.execute("SELECT * FROM incidents ORDER BY started_at"):
            add("incidents", d, (v, p, c, IncidentRecord(*rest)))
        for d, v, p, *rest in conn.execute("SELECT * FROM outages ORDER BY started_at"):
            add("outages", d, (v, p, OutageRecord(*rest)))
        for d, v, p, started, ended, n in conn.execute("SELECT * FROM outage_history ORDER BY ended_at DESC"):
            add("history", d, (v, p, OutageRecord(started, n), ended))
        lkg = conn.execute(
            "SELECT deployment, vertical, platform, MIN(read_at) FROM last_known_good "
            "GROUP BY deployment, vertical, platform"
        ).fetchall()
        for d, v, p, oldest in lkg:
            add("lkg", d, ((v, p), oldest))
    finally:
        conn.execute("COMMIT")
    result = []
    for deployment in sorted(set(grouped) | set(breakers)):
        g = grouped.get(deployment, {})
        result.append(
            DeploymentRows(
                deployment=deployment,
                breaker=breakers.get(deployment, BreakerRecord()),
                configs=tuple(g.get("configs", ())),  # type: ignore[arg-type]
                incidents=tuple(g.get("incidents", ())),  # type: ignore[arg-type]
                outages=tuple(g.get("outages", ())),  # type: ignore[arg-type]
                history=tuple(g.get("history", ())[:history]),  # type: ignore[arg-type]
                last_known_good=dict(g.get("lkg", ())),  # type: ignore[arg-type]
            )
        )
    return result


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema; drop the rows of version 1, which cannot say whose they are."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        version = int(row[0]) if row is not None else None
        if version is not None and version < SCHEMA_VERSION:
            for table in _OLD_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            logger.warning(
                "Machine-wide state in %s was written by an earlier livekit-fallback and does not say which "
                "database it came from; it was dropped rather than served to the wrong deployment. The "
                "next resolution of each deployment stores its own.",
                path,
                extra={"event": "store_migrated", "path": str(path), "from_version": version},
            )
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)  # not executescript: it would commit the transaction
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def transaction(conn: sqlite3.Connection, deployment: str) -> Transaction:
    """One deployment's rows over an open connection (inside the caller's transaction)."""
    return _SqliteTransaction(conn, deployment)
