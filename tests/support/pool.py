"""A small thread-safe pool of psycopg connections for the PostgREST stand-in."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


class ConnectionPool:
    """A small thread-safe pool of psycopg connections, one transaction per checkout.

    At most ``size`` connections exist; a request beyond that waits for a free one,
    which is much cheaper than opening a new connection.
    """

    def __init__(self, dsn: str, size: int = 8) -> None:
        """Creates an empty pool.

        Args:
            dsn: Database URL.
            size: Most connections open at once.
        """
        self._dsn = dsn
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Cursor]:
        """Yields a cursor; commits on success, rolls back on any exception."""
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            conn = conn or psycopg.connect(
                self._dsn, connect_timeout=5, options="-c TimeZone=UTC", application_name="postgrest-standin"
            )
            try:
                with conn.cursor() as cur:
                    yield cur
                conn.commit()
            except BaseException:
                if not conn.broken:
                    conn.rollback()
                raise
            finally:
                self._give_back(conn)

    def close(self) -> None:
        """Closes the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _give_back(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.broken:
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)
