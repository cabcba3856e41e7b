"""The machine-wide state: one SQLite file shared by every process of a machine.

LiveKit Agents runs each call in its own short-lived process, a SWAIG server
may run several workers, and the CLI is a process per command. What must
outlive one call (the resolved config with its read time, the circuit
breaker, alarm incidents, the last-known-good copy) lives here, in
``<cache dir>/state.sqlite3`` (WAL mode, busy timeout), so a process that
starts during an outage sees the breaker open and does not touch the
database, and an outage logs one banner per component per machine.

Every operation is one short transaction, run on a daemon thread of the
store's own and awaited with a time limit, so the event loop never blocks
on a slow disk, a held lock or a hung network file system. A store that
cannot be used (read-only or full file system, corrupt file, something that
is not a regular file at its path, a lock held past the limit) never fails a
resolution: the operation raises :class:`StoreUnavailable`, the caller uses
in-process state instead, and the store says so once, loudly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import queue
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from ..errors import StoreUnavailable
from ..log import logger

__all__ = [
    "STATE_FILE",
    "AlarmDecision",
    "BreakerRecord",
    "MachineStore",
    "Plan",
    "Recovery",
    "StoredConfig",
    "run_in_daemon_thread",
]

STATE_FILE = "state.sqlite3"
"""The store's file name inside the cache directory."""

SCHEMA_VERSION = 1
RETRY_AFTER = 30.0
"""Seconds an unusable store is left alone before it is tried again."""

_T = TypeVar("_T")
CacheState = Literal["hit", "stale", "wait", "miss"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS configs (
    vertical TEXT NOT NULL, platform TEXT NOT NULL, payload TEXT NOT NULL,
    read_at REAL NOT NULL, degraded INTEGER NOT NULL, PRIMARY KEY (vertical, platform));
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS breaker (
    name TEXT PRIMARY KEY, state TEXT NOT NULL, failures INTEGER NOT NULL,
    opened_at REAL, last_error TEXT);
CREATE TABLE IF NOT EXISTS incidents (
    vertical TEXT NOT NULL, platform TEXT NOT NULL, component TEXT NOT NULL, reason TEXT NOT NULL,
    started_at REAL NOT NULL, last_line REAL NOT NULL, since_line INTEGER NOT NULL, total INTEGER NOT NULL,
    PRIMARY KEY (vertical, platform, component));
CREATE TABLE IF NOT EXISTS outages (
    vertical TEXT NOT NULL, platform TEXT NOT NULL, started_at REAL NOT NULL, resolutions INTEGER NOT NULL,
    PRIMARY KEY (vertical, platform));
CREATE TABLE IF NOT EXISTS last_known_good (
    vertical TEXT NOT NULL, platform TEXT NOT NULL, component TEXT NOT NULL,
    value TEXT NOT NULL, read_at TEXT NOT NULL, PRIMARY KEY (vertical, platform, component));
CREATE TABLE IF NOT EXISTS notices (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outage_history (
    vertical TEXT NOT NULL, platform TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL NOT NULL,
    resolutions INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class StoredConfig:
    """A resolved config as another process left it.

    Attributes:
        payload: The config's JSON.
        read_at: Wall-clock time (``time.time()``) of the resolution.
        degraded: Some component came from a fallback copy.
    """

    payload: str
    read_at: float
    degraded: bool


@dataclass(frozen=True)
class BreakerRecord:
    """The machine's database circuit breaker.

    Attributes:
        state: ``closed``, ``open`` or ``half_open``.
        failures: Consecutive failed database reads, machine-wide.
        opened_at: Wall-clock time the breaker last opened.
        last_error: The latest database error, secrets removed.
    """

    state: Literal["closed", "open", "half_open"] = "closed"
    failures: int = 0
    opened_at: float | None = None
    last_error: str | None = None

    def cooling_down(self, now: float, cool_down: float) -> bool:
        """Open and inside the cool-down: no process may read the database yet."""
        return self.state == "open" and self.opened_at is not None and now - self.opened_at < cool_down


@dataclass(frozen=True)
class Plan:
    """What one resolution should do, decided atomically for the whole machine.

    Attributes:
        entry: The stored config, if any.
        cache: ``hit`` (serve ``entry``), ``stale`` (serve ``entry``; refresh if
            ``refresh``), ``wait`` (another process is reading the database for
            this config: wait for its result) or ``miss`` (resolve now).
        refresh: This process holds the refresh lease for the config.
        database: This process may read the database (breaker closed, or it holds the probe).
        probe: This process holds the breaker's probe lease.
        breaker: The breaker as it was read.
        holder: This call's lease holder (pass it to :meth:`MachineStore.finish`).
    """

    entry: StoredConfig | None
    cache: CacheState
    refresh: bool
    database: bool
    probe: bool
    breaker: BreakerRecord
    holder: str = ""


@dataclass(frozen=True)
class AlarmDecision:
    """What to log for one fallback event, decided machine-wide.

    Attributes:
        action: ``banner`` (the first of an incident), ``repeat`` (a counted
            line is due) or ``quiet`` (counted, nothing to log now).
        since_line: Fallbacks since the previous line (for ``repeat``).
        total: Fallbacks since the incident started.
        started_at: Wall-clock start of the incident.
        interval: Seconds since the previous line.
    """

    action: Literal["banner", "repeat", "quiet"]
    since_line: int = 0
    total: int = 1
    started_at: float = 0.0
    interval: float = 0.0


@dataclass(frozen=True)
class Recovery:
    """An outage of one vertical and platform ended (logged once per machine).

    Attributes:
        started_at: Wall-clock start of the outage.
        seconds: How long it lasted.
        resolutions: Resolutions served from fallbacks during it, machine-wide.
    """

    started_at: float
    seconds: float
    resolutions: int


def _STOP() -> None:
    """Marks the end of a worker's queue."""


class _Worker:
    """One daemon thread that owns the SQLite connection.

    A daemon thread, not an executor: a call stuck in the kernel (a FIFO or
    a hung network file system at the store's path) must not keep the
    process from exiting on SIGTERM.
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], object], concurrent.futures.Future[object]]] = (
            queue.SimpleQueue()
        )
        self.busy_since: float | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Let the thread end once its queued jobs are done."""
        self._jobs.put((_STOP, concurrent.futures.Future()))

    def submit(self, job: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._jobs.put((job, future))  # type: ignore[arg-type]
        return future

    def _loop(self) -> None:
        while True:
            job, future = self._jobs.get()
            if job is _STOP:
                return
            if not future.set_running_or_notify_cancel():
                continue
            self.busy_since = time.monotonic()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the awaiting caller
                future.set_exception(exc)
            finally:
                self.busy_since = None


async def run_in_daemon_thread(job: Callable[[], _T], timeout: float) -> _T:
    """Run blocking I/O on a throwaway daemon thread, giving up after ``timeout`` seconds.

    For reads that could hang in the kernel (a FIFO, a hung network file
    system): the caller stops waiting, and the stuck thread cannot keep the
    process from exiting.

    Raises:
        TimeoutError: The job did not finish in time.
    """
    worker = _Worker("livekit-fallback-io")
    future = worker.submit(job)
    worker.close()
    return await asyncio.wait_for(asyncio.wrap_future(future), timeout)


_STORES: dict[Path, MachineStore] = {}


class MachineStore:
    """The machine-wide state file, used by every process of the machine.

    Args:
        directory: The cache directory (``LIVEKIT_FALLBACK_CACHE_DIR``); the
            file is ``state.sqlite3`` in it.
        op_timeout: Seconds one operation may take, lock waits included.
        clock: Wall clock (injectable for tests); shared meaning across processes.
    """

    def __init__(
        self, directory: Path | str, *, op_timeout: float = 0.25, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE
        self.op_timeout = op_timeout
        self.clock = clock
        self.holder = f"{os.getpid()}:{id(self):x}"
        self._calls = itertools.count(1)
        self._worker: _Worker | None = None
        self._conn: sqlite3.Connection | None = None
        self._unusable_until = 0.0
        self._problem: str | None = None

    @classmethod
    def for_directory(cls, directory: Path | str) -> MachineStore:
        """The process's one store for a cache directory (one connection and thread per process)."""
        path = Path(directory).absolute()
        store = _STORES.get(path)
        if store is None:
            store = _STORES[path] = cls(path)
        return store

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """False while the store is being left alone after a failure."""
        return time.monotonic() >= self._unusable_until

    @property
    def problem(self) -> str | None:
        """Why the store is not in use, or ``None``."""
        return self._problem

    async def run(self, operation: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run one operation on the store's thread, within ``op_timeout``.

        Raises:
            StoreUnavailable: The store cannot be used now (the reason is logged once).
        """
        if not self.usable:
            raise StoreUnavailable(self._problem or "machine-wide state unavailable")
        busy_since = self._worker.busy_since if self._worker is not None else None
        if busy_since is not None and time.monotonic() - busy_since > self.op_timeout:
            # The thread is stuck in the kernel; it cannot be interrupted, so stop using it.
            self._fail(f"{self.path} did not answer within {self.op_timeout:.2f} s")
            self._worker = None
            self._conn = None
            raise StoreUnavailable(self._problem or "")
        if self._worker is None:
            self._worker = _Worker(f"livekit-fallback-store-{self.holder}")
        future = self._worker.submit(lambda: operation(self._connection()))
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(future), self.op_timeout)
        except asyncio.TimeoutError:
            self._fail(f"{self.path} did not answer within {self.op_timeout:.2f} s (locked or hung)")
            raise StoreUnavailable(self._problem or "") from None
        except (sqlite3.Error, OSError, StoreUnavailable) as exc:
            self._fail(f"{self.path}: {_describe(exc)}")
            self._conn = None
            raise StoreUnavailable(self._problem or "") from None
        if self._problem is not None:
            logger.warning(
                "MACHINE-WIDE STATE RESTORED: %s is in use again", self.path, extra={"event": "store_restored"}
            )
            self._problem = None
        return result

    def _fail(self, problem: str) -> None:
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
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close the connection (on the store's thread, if it is alive)."""
        conn, self._conn = self._conn, None
        if conn is not None and self._worker is not None and self._worker.busy_since is None:
            self._worker.submit(conn.close)

    # -- resolution ---------------------------------------------------------------------------

    async def begin(
        self,
        vertical: str,
        platform: str,
        *,
        ttl: float,
        stale_for: float,
        cool_down: float,
        lease_for: float,
        fresh: bool = False,
    ) -> Plan:
        """Decide, for the whole machine, how one resolution proceeds.

        A healthy copy younger than ``ttl`` is served as it is; one past the
        TTL but within ``stale_for`` more is served while exactly one process
        (the holder of the refresh lease) reads the database again. A
        degraded copy is served without a database read only while the
        breaker cools down. Otherwise the config is resolved now; when the
        breaker is closed, one process takes the refresh lease and the others
        wait for its result; when it is open and cooled down, one process takes
        the probe.
        """
        now = self.clock()
        holder = f"{self.holder}:{next(self._calls)}"
        lease = f"refresh:{vertical}/{platform}"

        def operation(conn: sqlite3.Connection) -> Plan:
            with _transaction(conn):
                entry = _read_config(conn, vertical, platform)
                breaker = _read_breaker(conn)
                cooling = breaker.cooling_down(now, cool_down)

                def plan(cache: CacheState, refresh: bool = False, database: bool = False, probe: bool = False) -> Plan:
                    return Plan(entry, cache, refresh, database, probe, breaker, holder)

                if entry is not None and not fresh:
                    age = now - entry.read_at
                    if not entry.degraded:
                        if age < ttl:
                            return plan("hit")
                        if ttl > 0 and age < ttl + stale_for:
                            refresh = _take_lease(conn, lease, holder, now, lease_for)
                            database, probe = _claim_database(conn, breaker, cooling, holder, now, lease_for)
                            if refresh and not database:
                                _release(conn, lease, holder)
                            return plan("stale", refresh and database, database, probe)
                    else:
                        # A degraded copy is served at once unless this call is the one to read again:
                        # nobody waits on a database known to be down, or on another call's probe.
                        if cooling:
                            return plan("hit")
                        database, probe = _claim_database(conn, breaker, cooling, holder, now, lease_for)
                        if probe:
                            return plan("miss", False, True, True)
                        if database and _take_lease(conn, lease, holder, now, lease_for):
                            return plan("miss", True, True)
                        return plan("hit")
                database, probe = _claim_database(conn, breaker, cooling, holder, now, lease_for)
                if database and not probe:
                    if not _take_lease(conn, lease, holder, now, lease_for):
                        return plan("wait")
                    return plan("miss", True, True)
                return plan("miss", False, database, probe)

        return await self.run(operation)

    async def read_config(self, vertical: str, platform: str) -> StoredConfig | None:
        """The stored config of one vertical and platform, if any."""
        return await self.run(lambda conn: _read_config(conn, vertical, platform))

    async def finish(
        self,
        vertical: str,
        platform: str,
        *,
        payload: str | None,
        degraded: bool,
        database_ok: bool | None,
        error: str | None = None,
        timed_out: bool = False,
        failure_threshold: int = 3,
        probe: bool = False,
        holder: str | None = None,
    ) -> BreakerRecord:
        """Record a finished resolution: the config, the breaker's verdict; release the call's leases.

        Args:
            vertical: The vertical.
            platform: The platform.
            payload: The resolution to store (``None``: keep the stored one).
            degraded: Some component came from a fallback copy.
            database_ok: The database's verdict (``None``: not asked).
            error: The database error, secrets removed.
            timed_out: The read ran out of time (opens the breaker at once).
            failure_threshold: Consecutive failures that open the breaker.
            probe: The call held the probe.
            holder: The call's lease holder (:attr:`Plan.holder`).

        Returns:
            The breaker after the update.
        """
        now = self.clock()
        holder = holder or self.holder

        def operation(conn: sqlite3.Connection) -> BreakerRecord:
            with _transaction(conn):
                if payload is not None:
                    conn.execute(
                        "INSERT INTO configs VALUES (?, ?, ?, ?, ?) ON CONFLICT (vertical, platform) DO UPDATE "
                        "SET payload = excluded.payload, read_at = excluded.read_at, degraded = excluded.degraded "
                        "WHERE excluded.read_at >= configs.read_at",
                        (vertical, platform, payload, now, int(degraded)),
                    )
                breaker = _read_breaker(conn)
                if database_ok is True:
                    breaker = BreakerRecord()
                elif database_ok is False:
                    failures = breaker.failures + 1
                    opens = probe or timed_out or failures >= failure_threshold or breaker.state != "closed"
                    breaker = BreakerRecord(
                        "open" if opens else breaker.state,
                        failures,
                        now if opens else breaker.opened_at,
                        error,
                    )
                _write_breaker(conn, breaker)
                _release(conn, f"refresh:{vertical}/{platform}", holder)
                if probe:
                    _release(conn, "probe", holder)
                return breaker

        return await self.run(operation)

    async def release(self, vertical: str, platform: str, *, probe: bool = False, holder: str | None = None) -> None:
        """Give up a call's leases without a verdict (a cancelled resolution)."""
        holder = holder or self.holder

        def operation(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                _release(conn, f"refresh:{vertical}/{platform}", holder)
                if probe:
                    _release(conn, "probe", holder)

        await self.run(operation)

    async def breaker(self) -> BreakerRecord:
        """The machine's breaker as it is now."""
        return await self.run(_read_breaker)

    # -- alarms -------------------------------------------------------------------------------

    async def alarms(
        self,
        vertical: str,
        platform: str,
        events: Sequence[tuple[str, str]],
        healthy: Iterable[str],
        *,
        repeat_interval: float,
        same_problem: Callable[[str, str], bool],
    ) -> tuple[list[AlarmDecision], Recovery | None]:
        """Account for one returned resolution, machine-wide, and say what to log.

        Args:
            vertical: The vertical resolved.
            platform: The platform resolved.
            events: ``(component key, reason)`` per component served from a fallback.
            healthy: Component keys served from the database.
            repeat_interval: Seconds between counted lines of one incident.
            same_problem: Whether two reasons are the same incident (else a new banner).

        Returns:
            One decision per event, and the recovery to report, if this
            resolution ended an outage.
        """
        now = self.clock()
        healthy = list(healthy)

        def operation(conn: sqlite3.Connection) -> tuple[list[AlarmDecision], Recovery | None]:
            with _transaction(conn):
                decisions = [
                    _incident(conn, vertical, platform, c, r, now, repeat_interval, same_problem) for c, r in events
                ]
                if healthy:
                    conn.executemany(
                        "DELETE FROM incidents WHERE vertical = ? AND platform = ? AND component = ?",
                        [(vertical, platform, c) for c in healthy],
                    )
                outage = conn.execute(
                    "SELECT started_at, resolutions FROM outages WHERE vertical = ? AND platform = ?",
                    (vertical, platform),
                ).fetchone()
                if events:
                    if outage is None:
                        conn.execute("INSERT INTO outages VALUES (?, ?, ?, 1)", (vertical, platform, now))
                    else:
                        conn.execute(
                            "UPDATE outages SET resolutions = resolutions + 1 WHERE vertical = ? AND platform = ?",
                            (vertical, platform),
                        )
                    return decisions, None
                if outage is None:
                    return decisions, None
                open_incidents = conn.execute(
                    "SELECT 1 FROM incidents WHERE vertical = ? AND platform = ? LIMIT 1", (vertical, platform)
                ).fetchone()
                if open_incidents is not None:
                    return decisions, None
                conn.execute("DELETE FROM outages WHERE vertical = ? AND platform = ?", (vertical, platform))
                conn.execute(  # ended outages, for the status page's history
                    "INSERT INTO outage_history VALUES (?, ?, ?, ?, ?)", (vertical, platform, outage[0], now, outage[1])
                )
                conn.execute(
                    "DELETE FROM outage_history WHERE rowid NOT IN "
                    "(SELECT rowid FROM outage_history ORDER BY ended_at DESC LIMIT 200)"
                )
                return decisions, Recovery(outage[0], now - outage[0], outage[1])

        return await self.run(operation)

    async def notice(self, key: str, interval: float | None = None) -> bool:
        """Whether this process should log a notice now: once per machine (or per ``interval``)."""
        now = self.clock()

        def operation(conn: sqlite3.Connection) -> bool:
            with _transaction(conn):
                row = conn.execute("SELECT at FROM notices WHERE key = ?", (key,)).fetchone()
                if row is not None and (interval is None or now - row[0] < interval):
                    return False
                conn.execute("INSERT OR REPLACE INTO notices VALUES (?, ?)", (key, now))
                return True

        return await self.run(operation)

    # -- last-known-good ----------------------------------------------------------------------

    async def load_last_known_good(self, vertical: str, platform: str) -> dict[str, tuple[str, str]]:
        """Component key to ``(value JSON, read_at ISO time)`` of the machine's last-known-good copy."""

        def operation(conn: sqlite3.Connection) -> dict[str, tuple[str, str]]:
            rows = conn.execute(
                "SELECT component, value, read_at FROM last_known_good WHERE vertical = ? AND platform = ?",
                (vertical, platform),
            )
            return {component: (value, read_at) for component, value, read_at in rows}

        return await self.run(operation)

    async def store_last_known_good(
        self, vertical: str, platform: str, components: Mapping[str, tuple[str, str]], *, only_if_absent: bool = False
    ) -> None:
        """Merge components into the last-known-good copy (newer reads win).

        Args:
            vertical: The vertical.
            platform: The platform.
            components: Component key to ``(value JSON, read_at ISO time)``.
            only_if_absent: Keep what is stored (used when importing old files).
        """
        verb = "INSERT OR IGNORE" if only_if_absent else "INSERT OR REPLACE"

        def operation(conn: sqlite3.Connection) -> None:
            with _transaction(conn):
                conn.executemany(
                    f"{verb} INTO last_known_good VALUES (?, ?, ?, ?, ?)",
                    [(vertical, platform, key, value, read_at) for key, (value, read_at) in components.items()],
                )

        await self.run(operation)


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: one writer at a time, machine-wide."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _read_config(conn: sqlite3.Connection, vertical: str, platform: str) -> StoredConfig | None:
    row = conn.execute(
        "SELECT payload, read_at, degraded FROM configs WHERE vertical = ? AND platform = ?", (vertical, platform)
    ).fetchone()
    return None if row is None else StoredConfig(row[0], row[1], bool(row[2]))


def _read_breaker(conn: sqlite3.Connection) -> BreakerRecord:
    row = conn.execute("SELECT state, failures, opened_at, last_error FROM breaker WHERE name = 'database'").fetchone()
    return BreakerRecord() if row is None else BreakerRecord(row[0], row[1], row[2], row[3])


def _write_breaker(conn: sqlite3.Connection, breaker: BreakerRecord) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO breaker VALUES ('database', ?, ?, ?, ?)",
        (breaker.state, breaker.failures, breaker.opened_at, breaker.last_error),
    )


def _take_lease(conn: sqlite3.Connection, name: str, holder: str, now: float, seconds: float) -> bool:
    row = conn.execute("SELECT holder, until FROM leases WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != holder and row[1] > now:
        return False
    conn.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?)", (name, holder, now + seconds))
    return True


def _release(conn: sqlite3.Connection, name: str, holder: str) -> None:
    conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


def _claim_database(
    conn: sqlite3.Connection, breaker: BreakerRecord, cooling: bool, holder: str, now: float, lease_for: float
) -> tuple[bool, bool]:
    """``(may read the database, holds the probe)`` under the machine's breaker."""
    if breaker.state == "closed":
        return True, False
    if cooling or not _take_lease(conn, "probe", holder, now, lease_for):
        return False, False
    if breaker.state != "half_open":
        _write_breaker(conn, BreakerRecord("half_open", breaker.failures, breaker.opened_at, breaker.last_error))
    return True, True


def _incident(
    conn: sqlite3.Connection,
    vertical: str,
    platform: str,
    component: str,
    reason: str,
    now: float,
    repeat_interval: float,
    same_problem: Callable[[str, str], bool],
) -> AlarmDecision:
    row = conn.execute(
        "SELECT reason, started_at, last_line, since_line, total FROM incidents "
        "WHERE vertical = ? AND platform = ? AND component = ?",
        (vertical, platform, component),
    ).fetchone()
    if row is None or not same_problem(row[0], reason):
        conn.execute(
            "INSERT OR REPLACE INTO incidents VALUES (?, ?, ?, ?, ?, ?, 0, 1)",
            (vertical, platform, component, reason, now, now),
        )
        return AlarmDecision("banner", 0, 1, now, 0.0)
    _, started_at, last_line, since_line, total = row
    since_line += 1
    total += 1
    if now - last_line < repeat_interval:
        conn.execute(
            "UPDATE incidents SET since_line = ?, total = ? WHERE vertical = ? AND platform = ? AND component = ?",
            (since_line, total, vertical, platform, component),
        )
        return AlarmDecision("quiet", since_line, total, started_at, now - last_line)
    conn.execute(
        "UPDATE incidents SET since_line = 0, total = ?, last_line = ? "
        "WHERE vertical = ? AND platform = ? AND component = ?",
        (total, now, vertical, platform, component),
    )
    return AlarmDecision("repeat", since_line, total, started_at, now - last_line)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
