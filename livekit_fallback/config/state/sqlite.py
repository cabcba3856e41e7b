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
from collections.abc import Callable
from pathlib import Path

from ... import metrics
from ...errors import StoreUnavailable
from ...log import logger
from .copies import say_legacy_files
from .file_access import follow_directory_owner, ownership_problem, read_only_connection, set_aside
from .schema import all_rows, migrate, transaction
from .storage import DeploymentRows, T, Transaction
from .worker import Worker

__all__ = ["STATE_FILE", "SqliteStorage"]

STATE_FILE = "state.sqlite3"
"""The file's name inside the cache directory."""

QUEUE_LIMIT = 2.0
"""Seconds an operation may wait for its turn behind this process's others before the file counts as unusable."""

STUCK_AFTER = 5.0
"""Seconds one operation may run before the file counts as hung (a FIFO, a hung network file system)."""

SLOW_LINE_EVERY = 60.0
"""Seconds between the counted lines saying operations on the file ran slow."""

SLOW_BACKOFF = 1.0
"""Seconds after a slow operation during which this process's state stays in memory (one slow wait per call)."""

RETRY_AFTER = 30.0
"""Seconds an unusable file is left alone before it is tried again."""

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
        self._slow_until = 0.0
        self._problem: str | None = None
        self.slow_operations = 0
        self._slow_since_line = 0
        self._slow_line_at: float | None = None
        self._slow_streak_from: float | None = None
        self._reader: Worker | None = None
        self._identity: tuple[int, int] | None = None

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
        """False while the file is being left alone after a failure, or for a moment after a slow operation.

        The moment keeps one call from waiting on a held lock or a busy disk
        more than once: the store's time limit counts inside the call's deadline.
        """
        now = time.monotonic()
        return now >= self._unusable_until and now >= self._slow_until

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
                result = operation(transaction(conn, deployment))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._submit(job)

    async def read(self, deployment: str, operation: Callable[[Transaction], T]) -> T:
        """Run a read-only ``operation`` over a read-only connection, within ``op_timeout``.

        For the last-known-good copy while the file cannot be written (a
        read-only file or mount, a file of another user, a held write lock):
        reads still work. Nothing is said here: :meth:`run` says why the file
        cannot be used.

        Raises:
            StoreUnavailable: The file cannot be read either.
        """
        busy_ms = max(1, int(self.op_timeout * 1000 * 0.8))

        def job() -> T:
            conn = read_only_connection(self.path, busy_ms)
            try:
                conn.execute("BEGIN")
                return operation(transaction(conn, deployment))
            finally:
                conn.close()

        reader = self._reader
        if reader is None or reader.stuck(self.op_timeout):
            reader = self._reader = Worker(f"livekit-fallback-store-reader-{os.getpid()}")
        try:
            return await asyncio.wait_for(asyncio.wrap_future(reader.submit(job)), self.op_timeout)
        except (sqlite3.Error, OSError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"{self.path} cannot be read: {_describe(exc)}") from None

    async def rows(self, history: int) -> list[DeploymentRows]:
        """Every deployment's rows, for status views.

        Raises:
            StoreUnavailable: The file cannot be read now.
        """
        return await self._submit(lambda conn: all_rows(conn, history))

    def close(self) -> None:
        """Close the connection (on the storage's thread, if it is alive)."""
        conn, self._conn = self._conn, None
        if conn is not None and self._worker is not None and self._worker.busy_since is None:
            self._worker.submit(conn.close)

    async def _submit(self, job: Callable[[sqlite3.Connection], T]) -> T:
        if not self.usable:
            raise StoreUnavailable(self._problem or f"{self.path} was slow a moment ago")
        worker = self._worker
        if worker is not None and worker.stuck(STUCK_AFTER):
            # The thread is stuck in the kernel; it cannot be interrupted, so stop using it.
            self._worker, self._conn = None, None
            raise self._fail(f"{self.path} did not answer within {STUCK_AFTER:.0f} s (hung)")
        if worker is None:
            worker = self._worker = Worker(f"livekit-fallback-store-{os.getpid()}")
        future = asyncio.wrap_future(worker.submit(lambda: job(self._connection())))
        try:
            result = await self._wait(future, worker)
        except StoreUnavailable:
            raise  # already counted or said by _slow or _fail
        except sqlite3.OperationalError as exc:
            if _busy(exc):  # another process holds the lock past the busy timeout: slow, not broken
                raise self._slow() from None
            self._conn = None
            raise self._fail(f"{self.path}: {ownership_problem(self.directory, self.path) or _describe(exc)}") from None
        except (sqlite3.Error, OSError) as exc:
            self._conn = None
            raise self._fail(f"{self.path}: {ownership_problem(self.directory, self.path) or _describe(exc)}") from None
        self._slow_streak_from = None
        if self._problem is not None:
            logger.warning(
                "MACHINE-WIDE STATE RESTORED: %s is in use again", self.path, extra={"event": "store_restored"}
            )
            self._problem = None
        return result

    async def _wait(self, future: asyncio.Future[T], worker: Worker) -> T:
        """The job's result within its time limit.

        A job *running* past ``op_timeout`` (a busy disk or CPU) is slow: this
        operation gives up and the call uses memory for it, counted, with a line
        at most once a minute, never a banner. Only a job running past
        :data:`STUCK_AFTER` (stuck in the kernel) makes the file unusable. Jobs
        waiting their turn behind this process's other operations (a burst of
        calls) are waited for up to :data:`QUEUE_LIMIT`.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + QUEUE_LIMIT
        while True:
            done, _ = await asyncio.wait({future}, timeout=self.op_timeout)
            if done:
                return future.result()
            if worker.stuck(STUCK_AFTER):
                future.cancel()
                raise self._fail(f"{self.path} did not answer within {STUCK_AFTER:.0f} s (hung)")
            if worker.stuck(self.op_timeout) or loop.time() >= give_up:
                future.cancel()
                raise self._slow()

    def _slow(self) -> StoreUnavailable:
        """Count an operation that ran past its limit; say so at most once a minute.

        Slow for longer than :data:`STUCK_AFTER` without one operation getting
        through (a lock held by a stopped process), the file counts as unusable.
        """
        now = time.monotonic()
        if self._slow_streak_from is None:
            self._slow_streak_from = now
        elif now - self._slow_streak_from > STUCK_AFTER:
            self._slow_streak_from = None
            return self._fail(f"{self.path} stayed locked or slow for over {STUCK_AFTER:.0f} s")
        self.slow_operations += 1
        self._slow_since_line += 1
        self._slow_until = now + SLOW_BACKOFF
        metrics.STATE_STORE_SLOW.inc()
        if self._slow_line_at is None or now - self._slow_line_at >= SLOW_LINE_EVERY:
            logger.warning(
                "machine-wide state slow: %d operation(s) on %s ran past %.2f s (a busy disk or CPU); those "
                "calls used this process's memory for them. This is not a database problem.",
                self._slow_since_line,
                self.path,
                self.op_timeout,
                extra={"event": "store_slow", "path": str(self.path), "count": self.slow_operations},
            )
            self._slow_line_at, self._slow_since_line = now, 0
        return StoreUnavailable(f"{self.path} ran past {self.op_timeout:.2f} s")

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
            changed = self._changed()
            if changed is None:
                return self._conn
            self._conn.close()
            self._conn = None
            if changed != "replaced":  # its WAL files belong to the lost file: never replay them onto a new one
                set_aside(self.path, whole=changed != "removed")
            logger.warning(
                "MACHINE-WIDE STATE FILE %s: %s; reopened. What it held (cached configs, breaker, incidents, "
                "the last-known-good copy) starts again from the next database read.",
                changed.upper(),
                self.path,
                extra={"event": "store_reopened", "path": str(self.path), "change": changed},
            )
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            self.directory.mkdir(parents=True, exist_ok=True)
        else:
            if not stat.S_ISREG(mode):
                raise OSError(0, "not a regular file")
        busy_ms = max(1, int(self.op_timeout * 1000 * 0.8))
        conn = sqlite3.connect(self.path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn, self.path)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # the file itself holds the schema, never 0 bytes
            follow_directory_owner(self.directory, self.path)
            info = os.stat(self.path)
        except BaseException:
            conn.close()
            raise
        self._identity = (info.st_dev, info.st_ino)
        self._conn = conn
        say_legacy_files(self.directory)
        return conn

    def _changed(self) -> str | None:
        """How the file under the open connection changed (removed, replaced, truncated), or ``None``.

        A running server keeps its connection for days; an operator may remove
        the file (the documented remedy), replace it, or something may truncate
        it. The connection would go on with the old file, apart from every new
        process: it is reopened instead, and that is said once.
        """
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return "removed"
        if (info.st_dev, info.st_ino) != self._identity:
            return "replaced"
        if info.st_size == 0:
            return "truncated to 0 bytes"
        return None


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
