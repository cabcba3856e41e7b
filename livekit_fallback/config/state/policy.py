"""The rules of the resolution state, each written once, over any storage.

Every function here is a plain decision over a
:class:`~livekit_fallback.config.state.storage.Transaction`: it reads the
records it needs, decides, and writes them back. The storage runs it
atomically, so the same rule holds for every process sharing the storage.

- :func:`plan`: serve the stored config, refresh it, probe the breaker, wait
  for another call's read, or read now (TTL, single flight, stale copies);
- :func:`finish`: store a fresh resolution and apply the breaker's verdict;
- :func:`account`: incidents and outages (one banner, counted lines, one recovery line);
- :func:`account_model`: the same for models that cannot be built;
- :func:`merge_last_known_good`: the last-known-good copy.

Times are wall-clock seconds from the caller. A stored time in the future
(written by a process whose clock was ahead) is never trusted: the config is
stale, the breaker is due for its probe, the incident's line is due.

A lease ends when its time does or when its holder's process has ended (a
script that exits right after resolving cancels its refresh), so nobody is
kept from a read by a process that cannot finish it. A healthy copy whose
refresh was started more than a lease's time ago and never landed is
*overdue*: the call that takes the next refresh waits for it, so an edit shows
within about ``ttl + lease_for`` seconds even when every process is
short-lived. A long-lived process, whose refreshes land, never waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ..model import Reason
from .records import AlarmDecision, BreakerRecord, IncidentRecord, OutageRecord, Plan, Recovery, StoredConfig
from .storage import Transaction

__all__ = [
    "MODEL_SCOPE",
    "Policy",
    "Verdict",
    "account",
    "account_model",
    "after_read",
    "excused",
    "finish",
    "left_to_another",
    "merge_last_known_good",
    "past_stale_window",
    "plan",
    "release",
    "same_problem",
]

PROBE = "probe"
"""The breaker's probe lease (one per deployment)."""

MODEL_SCOPE = ":models"
"""Suffix of the platform under which model incidents are kept (apart from the config's own)."""


@dataclass(frozen=True)
class Policy:
    """The numbers the rules run with.

    Attributes:
        ttl: Seconds a healthy config is served without reading the database (0: never reused).
        stale_for: Seconds past the TTL a copy still counts as recent (for reports).
        cool_down: Seconds the breaker stays open before one probe.
        failure_threshold: Consecutive failed reads that open the breaker.
        lease_for: Seconds a refresh or probe lease lasts if its holder never returns.
        repeat_interval: Seconds between counted lines of one incident.
        blame_after: Seconds a read must have been given for its timeout to
            count against the database (the deployment's own deadline when a
            caller chose a shorter one; 0: every timeout counts).
    """

    ttl: float = 5.0
    stale_for: float = 60.0
    cool_down: float = 5.0
    failure_threshold: int = 3
    lease_for: float = 3.0
    repeat_interval: float = 60.0
    blame_after: float = 0.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.cool_down <= 0 or self.ttl < 0 or self.lease_for <= 0:
            raise ValueError("failure_threshold must be >= 1, cool_down and lease_for > 0, ttl >= 0")


@dataclass(frozen=True)
class Verdict:
    """What a database read said about the database.

    Attributes:
        ok: True if the database answered, False if it failed at the connection or server level.
        error: The error, secrets removed.
        timed_out: The read (or some of its requests) ran out of time; a failed
            read that timed out opens the breaker at once.
        given: Seconds the requests themselves were given (the read's budget
            once its client was built), when known.
    """

    ok: bool
    error: str | None = None
    timed_out: bool = False
    given: float | None = None


def _refresh_lease(vertical: str, platform: str) -> str:
    return f"refresh:{vertical}/{platform}"


def _attempt(vertical: str, platform: str) -> str:
    """The record of the oldest refresh of a copy that has not landed yet (``until``: when it started)."""
    return f"attempt:{vertical}/{platform}"


Alive = Callable[[str], bool]
"""Whether a lease holder's process still runs (see :func:`~.state.holder_alive`)."""


def _always(_: str) -> bool:
    return True


def plan(
    tx: Transaction,
    vertical: str,
    platform: str,
    *,
    now: float,
    policy: Policy,
    holder: str,
    fresh: bool,
    alive: Alive = _always,
) -> Plan:
    """Decide how one resolution proceeds.

    A healthy copy younger than the TTL is served as it is; so is a degraded
    one while the breaker cools down. Any other copy is served too, and at
    most one call (the holder of the refresh lease, or of the breaker's probe)
    reads the database again. With no copy, one call reads and the others
    wait for its result. A copy whose refresh or probe started over
    ``lease_for`` ago and never landed (or stamped in the future) is
    *overdue*: the call that reads waits for its read.
    """
    breaker = tx.breaker()
    cooling = breaker.cooling_down(now, policy.cool_down)
    entry = None if fresh or policy.ttl == 0 else tx.config(vertical, platform)

    overdue = False

    def decided(cache: str, refresh: bool = False, database: bool = False, probe: bool = False) -> Plan:
        return Plan(entry, cache, refresh, database, probe, breaker, holder, overdue)  # type: ignore[arg-type]

    if entry is not None:
        age = now - entry.read_at  # negative: written "in the future", so not trusted as fresh
        if (not entry.degraded and 0 <= age < policy.ttl) or (entry.degraded and cooling):
            return decided("hit")
    database, probe = _claim_database(tx, breaker, cooling, holder, now, policy.lease_for, alive)
    lease = probe or (
        database and _take_lease(tx, _refresh_lease(vertical, platform), holder, now, policy.lease_for, alive)
    )
    if entry is not None and lease:
        overdue = now < entry.read_at or _abandoned(tx, vertical, platform, holder, now, policy.lease_for)
    if probe:
        return decided("stale" if entry is not None else "miss", False, True, True)
    if entry is not None:
        return decided("stale", lease, lease)
    if database and not lease:
        return decided("wait")
    return decided("miss", lease, database)


BLAME_SHARE = 0.8
"""Share of ``blame_after`` a read must have been given for its timeout to be the database's."""


def excused(verdict: Verdict | None, *, allowed: float, policy: Policy) -> str | None:
    """Why a read that failed says nothing about the database, or ``None`` when it does.

    A read that ran out of a time shorter than the deployment's deadline (a
    caller's ``--deadline 0.05``, time spent on a slow store before the read
    began) was not given the time the database is owed: its timeout is not an
    outage. A deadline this process's own loop reached late is not judged here:
    the read gets a grace instead (:mod:`~livekit_fallback.config.deadline`).
    """
    if verdict is not None and verdict.given is not None:
        allowed = min(allowed, verdict.given)
    if verdict is None or not verdict.timed_out or allowed >= BLAME_SHARE * policy.blame_after:
        return None
    return (
        f"the read was given {allowed:.2f} s, less than the deployment's deadline of "
        f"{policy.blame_after:.2f} s, and ran out of time"
    )


def past_stale_window(entry: StoredConfig | None, *, now: float, policy: Policy) -> float | None:
    """The age of a healthy copy served past ``ttl + stale_for`` (or stamped in the future), else ``None``.

    Such a copy is not a recent database read, whatever its components say:
    it is reported with its age.
    """
    if entry is None or entry.degraded or 0 <= now - entry.read_at < policy.ttl + policy.stale_for:
        return None
    return now - entry.read_at


def left_to_another(plan: Plan) -> str | None:
    """Why a resolution that did not ask the database is not the database's fault, or ``None``.

    With the breaker closed, a call skips the database only because another
    call holds the read (:func:`plan` said ``wait``) and its result did not land
    in time: that reader is blamed or excused for its own read, once.
    """
    if plan.database or plan.breaker.state != "closed":
        return None
    return "the database was left to another call's read, which did not land within the deadline"


def finish(
    tx: Transaction,
    vertical: str,
    platform: str,
    *,
    now: float,
    policy: Policy,
    holder: str,
    entry: StoredConfig | None,
    verdict: Verdict | None,
    probe: bool,
) -> BreakerRecord:
    """Record a finished read: store its config, apply the verdict, release the call's leases.

    Args:
        tx: The deployment's records.
        vertical: The vertical.
        platform: The platform.
        now: Wall-clock time.
        policy: The rules' numbers.
        holder: The call's lease holder.
        entry: The config to store (``None``: keep the stored one).
        verdict: What the read said about the database (``None``: not asked, or not its fault).
        probe: The call held the probe.

    Returns:
        The breaker after the update.
    """
    if entry is not None:
        tx.put_config(vertical, platform, entry)
        tx.put_lease(_attempt(vertical, platform), "", 0.0)  # a read landed: no refresh is outstanding
    breaker = tx.breaker()
    if verdict is not None:
        breaker = after_read(breaker, verdict, now=now, policy=policy, probe=probe)
        tx.put_breaker(breaker)
    elif probe and breaker.state == "half_open":  # a probe without a verdict (a stall): due again at once
        breaker = BreakerRecord("open", breaker.failures, breaker.opened_at, breaker.last_error)
        tx.put_breaker(breaker)
    release(tx, vertical, platform, holder=holder, probe=probe)
    return breaker


def release(tx: Transaction, vertical: str, platform: str, *, holder: str, probe: bool) -> None:
    """Give up a call's leases (its read ended, with or without a verdict)."""
    tx.drop_lease(_refresh_lease(vertical, platform), holder)
    if probe:
        tx.drop_lease(PROBE, holder)


def after_read(breaker: BreakerRecord, verdict: Verdict, *, now: float, policy: Policy, probe: bool) -> BreakerRecord:
    """The breaker's transitions: closed on an answer; open after a timeout, a failed probe or N failures."""
    if verdict.ok:
        return BreakerRecord()
    failures = breaker.failures + 1
    opens = probe or verdict.timed_out or failures >= policy.failure_threshold or breaker.state != "closed"
    return BreakerRecord(
        "open" if opens else breaker.state, failures, now if opens else breaker.opened_at, verdict.error
    )


def account(
    tx: Transaction,
    vertical: str,
    platform: str,
    events: Sequence[tuple[str, str]],
    healthy: Iterable[str],
    *,
    now: float,
    repeat_interval: float,
    resolutions: int = 1,
) -> tuple[list[AlarmDecision], Recovery | None]:
    """Account for served resolutions of one vertical and platform, and say what to log.

    ``resolutions`` identical resolutions served at once (a burst in one
    process) are counted as that many; what to log is decided for the first,
    and the others have nothing to log.

    Args:
        tx: The deployment's records.
        vertical: The vertical resolved.
        platform: The platform resolved.
        events: ``(component key, reason)`` per component served from a fallback.
        healthy: Component keys served from the database.
        now: Wall-clock time.
        repeat_interval: Seconds between counted lines of one incident.
        resolutions: How many identical resolutions this accounts for.

    Returns:
        One decision per event, and the recovery to report if this resolution ended an outage.
    """
    decisions = [_incident(tx, vertical, platform, c, r, now, repeat_interval) for c, r in events]
    if resolutions > 1:
        for component, _ in events:
            record = tx.incident(vertical, platform, component)
            if record is not None:
                more = resolutions - 1
                tx.put_incident(
                    vertical,
                    platform,
                    component,
                    replace(record, since_line=record.since_line + more, total=record.total + more),
                )
    tx.drop_incidents(vertical, platform, healthy)
    outage = tx.outage(vertical, platform)
    if events:
        started = outage.started_at if outage is not None else now
        tx.put_outage(vertical, platform, OutageRecord(started, (outage.resolutions if outage else 0) + resolutions))
        return decisions, None
    if outage is None or tx.has_incidents(vertical, platform):
        return decisions, None
    tx.end_outage(vertical, platform, outage, now)
    return decisions, Recovery(outage.started_at, max(0.0, now - outage.started_at), outage.resolutions)


def account_model(
    tx: Transaction,
    vertical: str,
    platform: str,
    component: str,
    reason: str | None,
    *,
    now: float,
    repeat_interval: float,
) -> AlarmDecision | Recovery | None:
    """A model that cannot be built (``reason``), or can again (``None``): one incident per machine.

    Returns:
        The decision for a failure; a :class:`Recovery` when a model that could
        not be built can be now; ``None`` when there is nothing to say.
    """
    scope = platform + MODEL_SCOPE
    if reason is not None:
        return _incident(tx, vertical, scope, component, reason, now, repeat_interval)
    record = tx.incident(vertical, scope, component)
    if record is None:
        return None
    tx.drop_incidents(vertical, scope, [component])
    return Recovery(record.started_at, max(0.0, now - record.started_at), record.total)


def merge_last_known_good(
    tx: Transaction, vertical: str, platform: str, components: Mapping[str, tuple[str, str]]
) -> None:
    """Keep the newest database copy of each component (a later read replaces it whole)."""
    if components:
        tx.put_last_known_good(vertical, platform, components)


def same_problem(before: str, now: str) -> bool:
    """Reasons that belong to one outage (refused, then timing out, then breaker open) count as one."""
    try:
        first, second = Reason(before), Reason(now)
    except ValueError:
        return before == now
    return first is second or (first.is_connection_level and second.is_connection_level)


def _incident(
    tx: Transaction, vertical: str, platform: str, component: str, reason: str, now: float, repeat_interval: float
) -> AlarmDecision:
    record = tx.incident(vertical, platform, component)
    if record is None or not same_problem(record.reason, reason):
        tx.put_incident(vertical, platform, component, IncidentRecord(reason, now, now))
        return AlarmDecision("banner", 0, 1, now, 0.0)
    since_line, total = record.since_line + 1, record.total + 1
    interval = now - record.last_line
    if 0 <= interval < repeat_interval:  # a line "in the future" is not trusted: the next line is due
        tx.put_incident(
            vertical,
            platform,
            component,
            IncidentRecord(record.reason, record.started_at, record.last_line, since_line, total),
        )
        return AlarmDecision("quiet", since_line, total, record.started_at, interval)
    tx.put_incident(vertical, platform, component, IncidentRecord(record.reason, record.started_at, now, 0, total))
    return AlarmDecision("repeat", since_line, total, record.started_at, max(0.0, interval))


def _abandoned(tx: Transaction, vertical: str, platform: str, holder: str, now: float, lease_for: float) -> bool:
    """Whether an earlier refresh or probe of the copy started over ``lease_for`` ago and never landed.

    The first one since the copy was stored is noted here; :func:`finish` with
    a config to store clears the note.
    """
    record = tx.lease(_attempt(vertical, platform))
    if record is None or not record[0]:
        tx.put_lease(_attempt(vertical, platform), holder, now)
        return False
    return not 0 <= now - record[1] < lease_for


def _take_lease(tx: Transaction, name: str, holder: str, now: float, seconds: float, alive: Alive) -> bool:
    current = tx.lease(name)
    if current is not None and current[0] != holder and 0 <= current[1] - now <= 2 * seconds and alive(current[0]):
        return False  # held by another call (ending implausibly far ahead: a clock step; or by an ended process)
    tx.put_lease(name, holder, now + seconds)
    return True


def _claim_database(
    tx: Transaction, breaker: BreakerRecord, cooling: bool, holder: str, now: float, lease_for: float, alive: Alive
) -> tuple[bool, bool]:
    """``(may read the database, holds the probe)`` under the deployment's breaker."""
    if breaker.state == "closed":
        return True, False
    if cooling or not _take_lease(tx, PROBE, holder, now, lease_for, alive):
        return False, False
    if breaker.state != "half_open":
        tx.put_breaker(BreakerRecord("half_open", breaker.failures, breaker.opened_at, breaker.last_error))
    return True, True
