"""A throwaway PostgreSQL cluster for tests, plus schema and database helpers.

The cluster runs from Debian's versioned binaries (or ``PG_BIN``) in a temporary
directory, listens on 127.0.0.1 only, and is deleted on :meth:`PostgresServer.stop`.
PostgreSQL refuses to run as root, so as root the binaries run as ``postgres``
through ``runuser``. A developer can bypass all of this with ``TEST_DATABASE_URL``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
INSTALL_HINT = "apt-get install -y --no-install-recommends postgresql"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class PostgresServer:
    """A running PostgreSQL server: either a throwaway cluster or a provided one.

    Attributes:
        dsn: ``postgresql://`` URL of the ``postgres`` database.
        port: TCP port on 127.0.0.1 (``None`` for a provided server).
    """

    def __init__(
        self, dsn: str, *, port: int | None = None, bin_dir: Path | None = None, base_dir: Path | None = None
    ) -> None:
        """Wraps a server; only a server with a ``base_dir`` is owned and stopped.

        Args:
            dsn: Connection URL of the server's ``postgres`` database.
            port: TCP port of a throwaway cluster.
            bin_dir: Directory with ``pg_ctl`` for a throwaway cluster.
            base_dir: Temporary directory holding the throwaway cluster.
        """
        self.dsn = dsn
        self.port = port
        self._bin_dir = bin_dir
        self._base_dir = base_dir

    @property
    def owned(self) -> bool:
        """Whether :meth:`stop` shuts this server down (False for ``TEST_DATABASE_URL``)."""
        return self._base_dir is not None

    def stop(self) -> None:
        """Stops a throwaway cluster (``pg_ctl -m fast``) and deletes its directory; idempotent."""
        base_dir, self._base_dir = self._base_dir, None
        if base_dir is None:
            return
        atexit.unregister(self.stop)
        try:
            if (base_dir / "data" / "postmaster.pid").exists():
                _run_pg(
                    self._bin_dir / "pg_ctl",
                    "-D",
                    str(base_dir / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    "30",
                    "stop",
                    cwd=base_dir,
                    check=False,
                )
        finally:
            shutil.rmtree(base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_postgres() -> PostgresServer:
    """Starts a throwaway cluster, or wraps ``TEST_DATABASE_URL`` when it is set.

    Returns:
        The running server; use it as a context manager or call ``stop()``.

    Raises:
        RuntimeError: If the PostgreSQL binaries are missing or the cluster fails to start.
    """
    provided = os.environ.get("TEST_DATABASE_URL")
    if provided:
        return PostgresServer(provided)
    bin_dir = find_pg_bin()
    base_dir = Path(tempfile.mkdtemp(prefix="lkfb-pg-"))
    server = PostgresServer("", bin_dir=bin_dir, base_dir=base_dir)
    try:
        if os.geteuid() == 0:
            shutil.chown(base_dir, "postgres", "postgres")
        _run_pg(
            bin_dir / "initdb",
            "-D",
            str(base_dir / "data"),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            cwd=base_dir,
        )
        server.port = _start_cluster(bin_dir, base_dir)
    except BaseException:
        server.stop()
        raise
    server.dsn = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    atexit.register(server.stop)
    return server


def find_pg_bin() -> Path:
    """Finds the directory holding ``initdb`` and ``pg_ctl``.

    Returns:
        ``PG_BIN`` when set, else the newest ``/usr/lib/postgresql/<version>/bin``.

    Raises:
        RuntimeError: If no usable directory exists, with the command that installs one.
    """
    explicit = os.environ.get("PG_BIN")
    candidates = (
        [Path(explicit)] if explicit else sorted(DEBIAN_PG_ROOT.glob("*/bin"), key=_major_version, reverse=True)
    )
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    where = f"PG_BIN={explicit}" if explicit else f"{DEBIAN_PG_ROOT}/<version>/bin"
    raise RuntimeError(
        f"PostgreSQL server binaries not found in {where}. Install them with "
        f"`{INSTALL_HINT}`, set PG_BIN, or set TEST_DATABASE_URL."
    )


def apply_migrations(dsn: str, migrations_dir: Path = MIGRATIONS_DIR) -> list[str]:
    """Applies every ``.sql`` file of a directory in name order, one transaction per file.

    Args:
        dsn: Database to migrate.
        migrations_dir: Directory of ``*.sql`` files.

    Returns:
        The names of the applied files.
    """
    files = sorted(Path(migrations_dir).glob("*.sql"))
    with psycopg.connect(dsn) as conn:
        for path in files:
            conn.execute(path.read_text(encoding="utf-8"))
            conn.commit()
    return [path.name for path in files]


def create_database(dsn: str, name: str) -> str:
    """Creates an empty database on the server of ``dsn``.

    Args:
        dsn: Any database URL on the server.
        name: New database name (identifier characters only).

    Returns:
        The URL of the new database.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_checked(name))))
    return database_url(dsn, name)


def drop_database(dsn: str, name: str) -> None:
    """Drops a database if it exists, disconnecting its sessions.

    Args:
        dsn: A URL of another database on the same server.
        name: Database to drop.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(_checked(name))))


@contextmanager
def fresh_database(dsn: str, migrations_dir: Path | None = MIGRATIONS_DIR) -> Iterator[str]:
    """Creates a uniquely named database with the migrations applied, and drops it afterwards.

    Args:
        dsn: Any database URL on the server.
        migrations_dir: Migrations to apply; None for an empty database.

    Yields:
        The URL of the new database.
    """
    name = f"lkfb_test_{uuid.uuid4().hex[:12]}"
    url = create_database(dsn, name)
    try:
        if migrations_dir is not None:
            apply_migrations(url, migrations_dir)
        yield url
    finally:
        drop_database(dsn, name)


def database_url(dsn: str, name: str) -> str:
    """Returns ``dsn`` pointing at database ``name`` instead.

    Args:
        dsn: A ``postgresql://`` URL.
        name: Database name.
    """
    return urlsplit(dsn)._replace(path=f"/{_checked(name)}").geturl()


def _checked(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _major_version(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name)) or (0,)


def _start_cluster(bin_dir: Path, base_dir: Path, attempts: int = 3) -> int:
    """Starts the cluster on a free port, retrying if another process grabs the port first."""
    for _ in range(attempts):
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base_dir} {_SERVER_OPTIONS}"
        result = _run_pg(
            bin_dir / "pg_ctl",
            "-D",
            str(base_dir / "data"),
            "-l",
            str(base_dir / "postgres.log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
            cwd=base_dir,
            check=False,
        )
        if result.returncode == 0:
            return port
    raise _failure(bin_dir / "pg_ctl", result, base_dir)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_pg(binary: Path, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Runs a server binary, as ``postgres`` via ``runuser`` when the effective uid is root."""
    command = [str(binary), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise _failure(binary, result, cwd)
    return result


def _failure(binary: Path, result: subprocess.CompletedProcess, cwd: Path) -> RuntimeError:
    log = cwd / "postgres.log"
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    output = result.stderr.strip() or result.stdout.strip()
    return RuntimeError(f"{binary.name} failed ({result.returncode}): {output}\n{tail}")
