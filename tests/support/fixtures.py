"""Pytest fixtures: a session PostgreSQL with the schema, the PostgREST stand-in, a fault proxy.

Load them once for the whole run with ``pytest_plugins = ["tests.support.fixtures"]`` (in
``tests/conftest.py`` or a test module) rather than importing the fixture functions, so every
module shares one session PostgreSQL. Do not import this module from test code: pytest
must import it first to rewrite its asserts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .pg import PostgresServer, fresh_database, start_postgres
from .postgrest import PostgrestStandIn
from .proxy import FaultProxy
from .seed import reset_database


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL for the session (or the server of ``TEST_DATABASE_URL``)."""
    with start_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def database_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh database holding the project's migrations, dropped after the session."""
    with fresh_database(postgres_server.dsn) as dsn:
        yield dsn


@pytest.fixture
def clean_dsn(database_dsn: str) -> str:
    """The session database with every configuration table emptied."""
    reset_database(database_dsn)
    return database_dsn


@pytest.fixture(scope="session")
def standin_server(database_dsn: str) -> Iterator[PostgrestStandIn]:
    """The PostgREST stand-in over the session database."""
    with PostgrestStandIn(database_dsn) as standin:
        yield standin


@pytest.fixture
def standin(standin_server: PostgrestStandIn) -> Iterator[PostgrestStandIn]:
    """The session stand-in with no faults and no recorded requests; faults cleared afterwards."""
    standin_server.clear_faults()
    standin_server.clear_requests()
    yield standin_server
    standin_server.clear_faults()


@pytest.fixture
def fault_proxy(standin_server: PostgrestStandIn) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in ``pass`` mode in front of the stand-in."""
    with FaultProxy("127.0.0.1", standin_server.port) as proxy:
        yield proxy


@pytest.fixture
def text_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """LiveKit's console singleton replaced by a text-mode stand-in (:class:`tests.helpers_livekit.TextConsole`)."""
    from livekit.agents.cli import cli as lk_cli

    from tests.helpers_livekit import TextConsole

    console = TextConsole(tmp_path)
    monkeypatch.setattr(lk_cli.AgentsConsole, "_instance", console)
    return console
