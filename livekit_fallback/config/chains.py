"""The backup model chains a config carries: the database's ranked rows, then the snapshot's."""

from __future__ import annotations

from ..log import logger as _log
from .keys import MODEL_KINDS, ComponentKey, ModelKind
from .model import ModelChoice, Platform, Provenance, Source
from .pipeline import Backups
from .seams import SnapshotCopy

__all__ = ["backup_chains"]


def backup_chains(
    snapshot: SnapshotCopy | None,
    vertical: str,
    platform: Platform,
    database: Backups | None = None,
) -> Backups:
    """Per model kind, the ordered backup chain the config carries.

    The database's ranked rows first (``database``, when it answered), then the
    snapshot's ``[models.<platform>.backups]`` list, then the snapshot's active
    choice, without duplicates. The config's active choice may be among them:
    the model factories leave it out when they build the chain.
    """
    chains: dict[ModelKind, tuple[tuple[ModelChoice, Provenance], ...]] = {}
    origin = (
        Provenance(source=Source.SNAPSHOT, taken_at=snapshot.taken_at, location=snapshot.path) if snapshot else None
    )
    for kind in MODEL_KINDS:
        entries: list[tuple[ModelChoice, Provenance]] = list((database or {}).get(kind, ()))
        if snapshot is not None and origin is not None:
            listed = getattr(snapshot, "backup_choices", None)
            entries += [(choice, origin) for choice in (listed(platform, kind) if listed else [])]
            try:
                choice = snapshot.component(str(ComponentKey.model(kind, None)), platform)
            except ValueError as exc:  # an invalid model in the file: no snapshot backup for that kind
                _log.warning("No snapshot %s model for %s to fall back to: %s", kind.upper(), vertical, exc)
            else:
                if isinstance(choice, ModelChoice):
                    entries.append((choice, origin))
        seen: set[str] = set()
        chain = []
        for choice, where in entries:
            if choice.value not in seen:
                seen.add(choice.value)
                chain.append((choice, where))
        if chain:
            chains[kind] = tuple(chain)
    return chains
