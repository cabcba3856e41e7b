"""Config sources: the database, last-known-good copies and snapshot files."""

from .base import ConfigSource, Failure, FetchRequest, Found, Outcome
from .snapshot import Snapshot, SnapshotError, SnapshotSource, default_snapshot_dir, load_snapshot
from .supabase import SupabaseSource

__all__ = [
    "ConfigSource",
    "Failure",
    "FetchRequest",
    "Found",
    "Outcome",
    "Snapshot",
    "SnapshotError",
    "SnapshotSource",
    "SupabaseSource",
    "default_snapshot_dir",
    "load_snapshot",
]
