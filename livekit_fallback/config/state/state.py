"""One deployment's resolution state, as the resolver and the model factories use it.

:class:`ResolutionState` binds the rules (:mod:`.policy`) to a storage and a
deployment. When the storage cannot be used (a read-only or full disk, a
corrupt file, a lock held past its limit), the same rules run over this
process's memory until it can: the storage is swapped, never the code path.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from ...errors import StoreUnavailable
from . import policy
from .copies import CopyFiles
from .memory import MemoryStorage
from .policy import Policy, Verdict
from .records import AlarmDecision, BreakerRecord, Plan, Recovery, StoredConfig
from .sqlite import SqliteStorage
from .storage import LastKnownGood, StateStorage, T, Transaction

__all__ = [
    "ResolutionState",
    "default_cache_dir",
    "default_storage",
    "forget_process_state",
    "holder_alive",
    "process_memory",
    "storage_for",
]

_PROCESS_MEMORY = MemoryStorage()
_MEMORY_WITH_COPIES: dict[Path, MemoryStorage] = {}


def process_memory() -> MemoryStorage:
    """This process's one in-memory storage without files: where the state goes while its file cannot be used."""
    return _PROCESS_MEMORY


def forget_process_state() -> None:
    """Forget every in-memory record of this process (a test, or a process that starts over)."""
    _PROCESS_MEMORY.clear()
    for storage in _MEMORY_WITH_COPIES.values():
        storage.clear()
    _MEMORY_WITH_COPIES.clear()


def default_cache_dir() -> Path:
    """``LIVEKIT_FALLBACK_CACHE_DIR``, else ``$XDG_CACHE_HOME/livekit-fallback``, else ``~/.cache/livekit-fallback``."""
    explicit = os.environ.get("LIVEKIT_FALLBACK_CACHE_DIR", "").strip()
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "livekit-fallback"


def storage_for(cache_dir: Path | str | None, *, shared: bool = True) -> StateStorage:
    """The storage settings ask for: the machine's SQLite file in ``cache_dir``, or this process's memory.

    Args:
        cache_dir: The cache directory (the default one when ``None``).
        shared: ``False`` (``LIVEKIT_FALLBACK_SHARED_STATE=0``) keeps the state in this
            process, with the last-known-good copies written as JSON files in ``cache_dir``.
    """
    directory = Path(cache_dir if cache_dir is not None else default_cache_dir()).absolute()
    if shared:
        return SqliteStorage.for_directory(directory)
    storage = _MEMORY_WITH_COPIES.get(directory)
    if storage is None:
        storage = _MEMORY_WITH_COPIES[directory] = MemoryStorage(CopyFiles(directory))
    return storage


def default_storage() -> StateStorage:
    """The storage production uses, from ``LIVEKIT_FALLBACK_CACHE_DIR`` and ``LIVEKIT_FALLBACK_SHARED_STATE``.

    An unreadable ``LIVEKIT_FALLBACK_SHARED_STATE`` keeps the default (shared):
    :class:`~livekit_fallback.config.settings.Settings` reports it where settings are read.
    """
    flag = os.environ.get("LIVEKIT_FALLBACK_SHARED_STATE", "").strip().lower()
    return storage_for(None, shared=flag not in {"0", "false", "no", "off"})


def holder_alive(holder: str) -> bool:
    """Whether the process a lease holder names (``<pid>:...``) still runs on this machine.

    A holder whose process has ended cannot finish its read: its lease is
    taken over at once. Anything that cannot be told (another PID namespace
    sharing the directory answers "no such process" too) costs at most one
    more read of the database.
    """
    pid_text = holder.split(":", 1)[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by another user
    return True


class ResolutionState:
    """The state of one deployment: what it has resolved, its breaker, incidents and copies.

    Args:
        storage: Where the records live (the machine's file by default).
        deployment: The deployment's identity (:func:`~.records.deployment_of`).
        policy: The rules' numbers.
        clock: Wall clock (shared meaning across processes).
    """

    def __init__(
        self,
        storage: StateStorage,
        deployment: str,
        policy: Policy | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.deployment = deployment
        self.policy = policy or Policy()
        self.clock = clock
        self._holders = itertools.count(1)
        self._prefix = f"{os.getpid()}:{id(self):x}"
        self._accounts: dict[
            tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]],
            list[asyncio.Future[tuple[list[AlarmDecision], Recovery | None]]],
        ] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    @property
    def in_use(self) -> StateStorage:
        """The storage the rules run over now (memory while the configured one cannot be used)."""
        return self.storage if self.storage.usable else _PROCESS_MEMORY

    def new_holder(self) -> str:
        """A lease holder for one call (unique across the machine)."""
        return f"{self._prefix}:{next(self._holders)}"

    async def _run(self, operation: Callable[[Transaction], T]) -> T:
        storage = self.storage
        if storage.usable:
            try:
                return await storage.run(self.deployment, operation)
            except StoreUnavailable:
                pass  # said once by the storage; the same rules run over memory
        return await _PROCESS_MEMORY.run(self.deployment, operation)

    async def _read(self, operation: Callable[[Transaction], LastKnownGood]) -> LastKnownGood:
        """A copy from the storage even while it cannot be written, newer components from memory over it."""
        storage = self.storage
        if storage.usable:
            try:
                return await storage.run(self.deployment, operation)
            except StoreUnavailable:
                pass
        try:
            stored = await storage.read(self.deployment, operation)
        except StoreUnavailable:
            stored = {}
        return {**stored, **await _PROCESS_MEMORY.run(self.deployment, operation)}

    async def plan(self, vertical: str, platform: str, *, holder: str, fresh: bool = False) -> Plan:
        """How one resolution proceeds (see :func:`.policy.plan`).

        The time is read inside the transaction: a copy another process stored
        while this one waited for the lock is never "from the future".
        """
        return await self._run(
            lambda tx: policy.plan(
                tx,
                vertical,
                platform,
                now=self.clock(),
                policy=self.policy,
                holder=holder,
                fresh=fresh,
                alive=holder_alive,
            )
        )

    async def config(self, vertical: str, platform: str) -> StoredConfig | None:
        """The stored config, as it is now."""
        return await self._run(lambda tx: tx.config(vertical, platform))

    async def finish(
        self,
        vertical: str,
        platform: str,
        *,
        holder: str,
        payload: str | None,
        degraded: bool,
        verdict: Verdict | None,
        probe: bool,
    ) -> BreakerRecord:
        """Record a finished read (see :func:`.policy.finish`)."""
        now = self.clock()
        entry = StoredConfig(payload, now, degraded) if payload is not None else None
        return await self._run(
            lambda tx: policy.finish(
                tx,
                vertical,
                platform,
                now=now,
                policy=self.policy,
                holder=holder,
                entry=entry,
                verdict=verdict,
                probe=probe,
            )
        )

    async def release(self, vertical: str, platform: str, *, holder: str, probe: bool) -> None:
        """Give up a call's leases without a verdict."""
        await self._run(lambda tx: policy.release(tx, vertical, platform, holder=holder, probe=probe))

    async def breaker(self) -> BreakerRecord:
        """The deployment's breaker as it is now."""
        return await self._run(lambda tx: tx.breaker())

    async def account(
        self, vertical: str, platform: str, events: Sequence[tuple[str, str]], healthy: Iterable[str]
    ) -> tuple[list[AlarmDecision], Recovery | None]:
        """Incidents and outages of one served resolution (see :func:`.policy.account`).

        Identical resolutions served in one turn of this process's event loop
        (a burst of calls sharing one read) are accounted in one operation:
        the first is told what to log, the others that they have nothing to log.
        """
        key = (vertical, platform, tuple(events), tuple(healthy))
        waiters = self._accounts.get(key)
        if waiters is None:
            waiters = self._accounts[key] = []
            asyncio.get_running_loop().call_soon(lambda: self._flush_later(key))
        waiter: asyncio.Future[tuple[list[AlarmDecision], Recovery | None]] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        return await waiter

    def _flush_later(self, key: tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]]) -> None:
        task = asyncio.ensure_future(self._flush(key))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, key: tuple[str, str, tuple[tuple[str, str], ...], tuple[str, ...]]) -> None:
        waiters = self._accounts.pop(key, [])
        vertical, platform, events, healthy = key
        now, count = self.clock(), len(waiters)
        try:
            decided = await self._run(
                lambda tx: policy.account(
                    tx,
                    vertical,
                    platform,
                    events,
                    healthy,
                    now=now,
                    repeat_interval=self.policy.repeat_interval,
                    resolutions=count,
                )
            )
        except BaseException as exc:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            return
        quiet = ([AlarmDecision("quiet")] * len(events), None)
        for position, waiter in enumerate(waiters):
            if not waiter.done():
                waiter.set_result(decided if position == 0 else quiet)

    async def account_model(
        self, vertical: str, platform: str, component: str, reason: str | None
    ) -> AlarmDecision | Recovery | None:
        """A model that cannot be built, or can again (see :func:`.policy.account_model`)."""
        now = self.clock()
        return await self._run(
            lambda tx: policy.account_model(
                tx, vertical, platform, component, reason, now=now, repeat_interval=self.policy.repeat_interval
            )
        )

    async def last_known_good(self, vertical: str, platform: str) -> LastKnownGood:
        """The deployment's last-known-good copy of a vertical and platform (readable while the file is read-only)."""
        return await self._read(lambda tx: tx.last_known_good(vertical, platform))

    async def store_last_known_good(
        self, vertical: str, platform: str, components: Mapping[str, tuple[str, str]]
    ) -> None:
        """Keep the newest database copy of these components."""
        await self._run(lambda tx: policy.merge_last_known_good(tx, vertical, platform, components))
