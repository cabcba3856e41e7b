"""Settings read from the environment, with the key kept out of reprs and logs."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import SettingsError

__all__ = ["DEFAULT_DEADLINE", "DEFAULT_PICKUP_BUDGET", "Settings", "SettingsError", "snapshot_dir_from_env"]

DEFAULT_DEADLINE = 1.0
"""Seconds a whole resolution may take before fallbacks are used."""

DEFAULT_TTL = 5.0
"""Seconds a resolved config is reused in-process; database edits show up after this."""
DEFAULT_COOL_DOWN = 5.0
"""Seconds the circuit breaker stays open before one probe read."""
DEFAULT_PICKUP_BUDGET = 0.15
"""Seconds a pickup with a stored copy waits for a fresh read before it is served the copy."""


@dataclass(frozen=True)
class Settings:
    """How to reach the database and where to find snapshots.

    Attributes:
        supabase_url: Project URL, or ``None`` for snapshot mode.
        supabase_key: Service (or anon) key; excluded from ``repr``.
        snapshot_dir: A directory searched before the packaged snapshots.
        deadline: Seconds a resolution may take in total.
        cache_dir: Where last-known-good copies are written (a per-user default when None).
        ttl: Seconds a resolved config is reused (by every process of the machine).
        shared_state: Keep the cache, breaker, alarm dedup and last-known-good
            copy in the machine-wide store in ``cache_dir``, shared by every
            process of the machine (``LIVEKIT_FALLBACK_SHARED_STATE=0`` keeps
            them in each process instead, for tests and unusual deployments).
        cool_down: Seconds the circuit breaker stays open before one probe
            read is let through (one per machine with the shared store).
        pickup_budget: Seconds a pickup waits for a fresh read when the
            machine holds any copy of the config; past it, the copy is served
            and the read goes on in the background.
        configured_deadline: The deployment's own deadline
            (``LIVEKIT_FALLBACK_DEADLINE``) when a caller chose a shorter
            ``deadline`` (``resolve --deadline 0.05``): a read that runs out of
            a shorter time than this says nothing about the database.
    """

    supabase_url: str | None = None
    supabase_key: str | None = field(default=None, repr=False)
    snapshot_dir: Path | None = None
    deadline: float = DEFAULT_DEADLINE
    cache_dir: Path | None = None
    ttl: float = DEFAULT_TTL
    shared_state: bool = True
    cool_down: float = DEFAULT_COOL_DOWN
    pickup_budget: float = DEFAULT_PICKUP_BUDGET
    configured_deadline: float | None = None

    def __post_init__(self) -> None:
        if self.supabase_url and not _valid_url(self.supabase_url):
            raise SettingsError("SUPABASE_URL must start with http:// or https:// and name a host")
        if bool(self.supabase_url) != bool(self.supabase_key):
            missing = "SUPABASE_SERVICE_KEY (or SUPABASE_KEY)" if self.supabase_url else "SUPABASE_URL"
            raise SettingsError(f"database half-configured: {missing} is not set")
        if not (0 < self.deadline <= 60):
            raise SettingsError(f"deadline must be between 0 and 60 seconds, got {self.deadline}")
        if not (0 < self.cool_down <= 3600):
            raise SettingsError(f"cool-down must be between 0 and 3600 seconds, got {self.cool_down}")
        if not (0 <= self.pickup_budget <= self.deadline):
            raise SettingsError(
                f"pickup budget must be between 0 and the deadline ({self.deadline} s), got {self.pickup_budget}"
            )
        if not (0 <= self.ttl <= 3600):
            raise SettingsError(f"ttl must be between 0 and 3600 seconds, got {self.ttl}")

    @property
    def database_configured(self) -> bool:
        """True when both the URL and the key are set."""
        return bool(self.supabase_url and self.supabase_key)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read the settings from the environment.

        The variables are ``SUPABASE_URL``, ``SUPABASE_SERVICE_KEY`` (or ``SUPABASE_KEY``),
        ``LIVEKIT_FALLBACK_SNAPSHOT_DIR``, ``LIVEKIT_FALLBACK_CACHE_DIR``,
        ``LIVEKIT_FALLBACK_DEADLINE``, ``LIVEKIT_FALLBACK_TTL``,
        ``LIVEKIT_FALLBACK_COOL_DOWN``, ``LIVEKIT_FALLBACK_PICKUP_BUDGET`` and
        ``LIVEKIT_FALLBACK_SHARED_STATE``.

        Keyword overrides that are not ``None`` win over the environment.

        Raises:
            SettingsError: A value is present but unusable.
        """
        env = os.environ if env is None else env
        deadline = _seconds(env, "LIVEKIT_FALLBACK_DEADLINE", DEFAULT_DEADLINE)
        ttl = _seconds(env, "LIVEKIT_FALLBACK_TTL", DEFAULT_TTL)
        snapshot_dir = snapshot_dir_from_env(env)
        cache_dir = env.get("LIVEKIT_FALLBACK_CACHE_DIR", "").strip()
        values: dict[str, object] = {
            "supabase_url": env.get("SUPABASE_URL", "").strip() or None,
            "supabase_key": (env.get("SUPABASE_SERVICE_KEY") or env.get("SUPABASE_KEY") or "").strip() or None,
            "snapshot_dir": snapshot_dir,
            "deadline": deadline,
            "cache_dir": Path(cache_dir) if cache_dir else None,
            "ttl": ttl,
            "shared_state": _flag(env, "LIVEKIT_FALLBACK_SHARED_STATE", True),
            "cool_down": _seconds(env, "LIVEKIT_FALLBACK_COOL_DOWN", DEFAULT_COOL_DOWN),
            "pickup_budget": _seconds(env, "LIVEKIT_FALLBACK_PICKUP_BUDGET", DEFAULT_PICKUP_BUDGET),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        chosen = float(values["deadline"])  # type: ignore[arg-type]
        if chosen < deadline:
            values.setdefault("configured_deadline", deadline)
        if not env.get("LIVEKIT_FALLBACK_PICKUP_BUDGET", "").strip() and overrides.get("pickup_budget") is None:
            values["pickup_budget"] = min(DEFAULT_PICKUP_BUDGET, chosen)  # a short deadline shortens the budget
        return cls(**values)  # type: ignore[arg-type]


def snapshot_dir_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """``LIVEKIT_FALLBACK_SNAPSHOT_DIR`` as a path, or ``None`` when unset."""
    value = (os.environ if env is None else env).get("LIVEKIT_FALLBACK_SNAPSHOT_DIR", "").strip()
    return Path(value) if value else None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = env.get(name, "").strip().lower()
    if not text:
        return default
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {text!r}")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {text!r}") from None


def _valid_url(url: str) -> bool:
    if not re.match(r"^https?://[^/\s]+", url):
        return False
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return False
    return bool(parts.hostname)
