"""The resolution state in one SQLite file shared by every process of the machine.

LiveKit Agents runs each call in its own short-lived process, a SWAIG server
may run several workers, and the CLI is a process per command. The records
that must outlive one call live in ``<cache dir>/state.sqlite3`` (WAL mode,
busy timeout), every row keyed by its deployment. The queries sit beside the
schema, here; the rules that use them are in
:mod:`~livekit_fallback.config.state.policy`.

Every operation is one short ``BEGIN IMMEDIATE`` transaction on a daemon
thread of the storage's own (:mod:`~livekit_fallback.config.state.worker`),
awaited with a time limit, so the event loop never blocks on a slow disk, a
held lock or a hung network file system. A file that cannot be used raises
:class:`~livekit_fallback.errors.StoreUnavailable`, said once, loudly; the
state then uses memory until the file can be used again.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from ...errors import StoreUnavailable
from ...log import logger
from .records import BreakerRecord, IncidentRecord, OutageRecord, StoredConfig
from .storage import DeploymentRows, LastKnownGood, T, Transaction
from .worker import Worker

__all__ = ["STATE_FILE", "SqliteStorage"]

STATE_FILE = "state.sqlite3"
"""The file's name inside the cache directory."""

SCHEMA_VERSION = 2
"""2: every row keyed by its deployment. Rows of version 1 say nothing of theirs and are dropped."""

QUEUE_LIMIT = 2.0
"""Seconds an operation may wait for its turn behind this process's others before the file counts as unusable."""

RETRY_AFTER = 30.0
"""Seconds an unusable file is left alone before it is tried again."""

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


def _rows(conn: sqlite3.Connection, history: int) -> list[DeploymentRows]:
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


_STORAGES: dict[Path, SqliteStorage] = {}


class SqliteStorage:
    """A :class:`~livekit_fallback.config.state.storage.StateStorage` in ``<directory>/state.sqlite3``.

    Args:
        directory: The cache directory (``LIVEKIT_FALLBACK_CACHE_DIR``).
        op_timeout: Seconds one operation may take, lock waits included.
    """

    kind = "sqlite"

    def __init__(self, directory: Path | str, *, op_timeout: float = 0.25) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE
        self.op_timeout = op_timeout
        self._worker: Worker | None = None
        self._conn: sqlite3.Connection | None = None
        self._unusable_until = 0.0
        self._problem: str | None = None

    @classmethod
    def for_directory(cls, directory: Path | str) -> SqliteStorage:
        """The process's one storage for a cache directory (one connection and thread per process)."""
        path = Path(directory).absolute()
        storage = _STORAGES.get(path)
        if storage is None:
            storage = _STORAGES[path] = cls(path)
        return storage

    @property
    def location(self) -> str:
        """The file's path."""
        return str(self.path)

    @property
    def usable(self) -> bool:
        """False while the file is being left alone after a failure."""
        return time.monotonic() >= self._unusable_until

    @property
    def problem(self) -> str | None:
        """Why the file is not in use, or ``None``."""
        return self._problem

    async def run(self, deployment: str, operation: Callable[[Transaction], T]) -> T:
        """Run ``operation`` in one ``BEGIN IMMEDIATE`` transaction over one deployment's rows.

        Raises:
            StoreUnavailable: The file cannot be used now (the reason is logged once).
        """

        def job(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = operation(_SqliteTransaction(conn, deployment))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._submit(job)

    async def rows(self, history: int) -> list[DeploymentRows]:
        """Every deployment's rows, for status views.

        Raises:
            StoreUnavailable: The file cannot be read now.
        """
        return await self._submit(lambda conn: _rows(conn, history))

    def close(self) -> None:
        """Close the connection (on the storage's thread, if it is alive)."""
        conn, self._conn = self._conn, None
        if conn is not None and self._worker is not None and self._worker.busy_since is None:
            self._worker.submit(conn.close)

    async def _submit(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if not self.usable:
            raise StoreUnavailable(self._problem or "machine-wide state unavailable")
        worker = self._worker
        if worker is not None and worker.stuck(self.op_timeout):
            # The thread is stuck in the kernel; it cannot be interrupted, so stop using it.
            self._worker, self._conn = None, None
            raise self._fail(f"{self.path} did not answer within {self.op_timeout:.2f} s")
        if worker is None:
            worker = self._worker = Worker(f"livekit-fallback-store-{os.getpid()}")
        future = asyncio.wrap_future(worker.submit(lambda: job(self._connection())))
        try:
            result = await self._wait(future, worker)
        except (sqlite3.Error, OSError, StoreUnavailable) as exc:
            self._conn = None
            raise self._fail(f"{self.path}: {_describe(exc)}") from None
        if self._problem is not None:
            logger.warning(
                "MACHINE-WIDE STATE RESTORED: %s is in use again", self.path, extra={"event": "store_restored"}
            )
            self._problem = None
        return result

    async def _wait(self, future: asyncio.Future[T], worker: Worker) -> T:
        """The job's result; a job *running* past ``op_timeout`` is a failure, a job queued behind others is not.

        Lock waits are bounded by SQLite's busy timeout inside the job, so only
        a call stuck in the kernel runs past the limit. Jobs waiting their turn
        behind this process's other operations (a burst of calls) are slow, not
        broken: they are waited for up to :data:`QUEUE_LIMIT`.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + QUEUE_LIMIT
        while True:
            done, _ = await asyncio.wait({future}, timeout=self.op_timeout)
            if done:
                return future.result()
            if worker.stuck(self.op_timeout) or loop.time() >= give_up:
                future.cancel()
                raise self._fail(f"{self.path} did not answer within {self.op_timeout:.2f} s (locked or hung)")

    def _fail(self, problem: str) -> StoreUnavailable:
        self._unusable_until = time.monotonic() + RETRY_AFTER
        if self._problem is None:
            logger.error(
                "MACHINE-WIDE STATE UNAVAILABLE: %s. This process keeps its cache, breaker and alarm counts "
                "in memory: other processes on this machine will not share them, so each call may wait on a "
                "database known to be down and log its own banners. Action: make %s a writable directory on "
                "a local disk with free space (LIVEKIT_FALLBACK_CACHE_DIR), or remove the broken file.",
                problem,
                self.directory,
                extra={"event": "store_unavailable", "path": str(self.path), "reason": problem},
            )
        self._problem = problem
        return StoreUnavailable(problem)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
        else:
            if not stat.S_ISREG(mode):
                raise StoreUnavailable("not a regular file")
        busy_ms = max(1, int(self.op_timeout * 1000 * 0.8))
        conn = sqlite3.connect(self.path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            _migrate(conn, self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
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


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
