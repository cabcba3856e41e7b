"""The unit tier's state fixtures: each storage in turn, and the processes of one machine sharing it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from livekit_fallback.config.state.memory import MemoryStorage
from livekit_fallback.config.state.policy import Policy
from livekit_fallback.config.state.sqlite import SqliteStorage
from livekit_fallback.config.state.state import ResolutionState
from livekit_fallback.config.state.storage import StateStorage

from .fakes import FakeClock

DEPLOYMENT = "https://project-a.supabase.co"
"""The deployment the rule tests keep their records under."""

POLICY = Policy(ttl=5.0, stale_for=60.0, cool_down=5.0, failure_threshold=3, lease_for=2.0, repeat_interval=60.0)
"""The numbers the rule tests run with."""

Machine = Callable[[], StateStorage]
"""Gives the storage as one more process of the machine opens it."""


@pytest.fixture(params=["sqlite", "memory"])
def machine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Machine]:
    """One machine's state, per storage: each call is another process's view of it.

    On SQLite every process opens the file itself (its own connection); in
    memory the processes are calls of one process sharing its storage.
    """
    opened: list[SqliteStorage] = []
    shared = MemoryStorage()

    def open_storage() -> StateStorage:
        if request.param == "memory":
            return shared
        storage = SqliteStorage(tmp_path, op_timeout=2.0)
        opened.append(storage)
        return storage

    yield open_storage
    for storage in opened:
        storage.close()


@pytest.fixture
def clock() -> FakeClock:
    """The machine's wall clock, moved by hand."""
    return FakeClock(1_000_000.0)


@pytest.fixture
def processes(machine: Machine, clock: FakeClock) -> tuple[ResolutionState, ResolutionState]:
    """Two processes' state of one deployment on one machine (distinct lease holders)."""
    return (
        ResolutionState(machine(), DEPLOYMENT, POLICY, clock=clock),
        ResolutionState(machine(), DEPLOYMENT, POLICY, clock=clock),
    )
