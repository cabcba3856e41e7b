"""livekit-fallback as a LiveKit plugin: registered on import, with a ``download-files`` step.

LiveKit's provider plugins call ``Plugin.register_plugin`` when imported, and
LiveKit's ``download-files`` command (run while a worker image is built) calls
each registered plugin's ``download_files()``. The LiveKit edge of this package
(``agents``, ``providers``, ``console``, ``call``) imports this module, so an
agent importing any of them registers :class:`FallbackPlugin`; the LiveKit-free
core (``livekit_fallback``, its CLI, ``tools``) never imports LiveKit.

:meth:`FallbackPlugin.download_files` prepares the configs an image starts
with, for every vertical that has a snapshot:

- a database configured (``SUPABASE_URL`` / ``SUPABASE_SERVICE_KEY``): resolve
  each vertical's LiveKit config from the database and write it to the
  last-known-good store, so a new container starts with a copy no older than
  its image; a database that cannot be read is logged and the snapshot is
  checked instead (the build does not fail for an outage);
- always: check that each snapshot file is usable (the floor every component
  falls back to); a broken snapshot fails the step.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from livekit.agents import Plugin

from . import __version__
from .blocking import run_to_completion
from .config.model import Source
from .config.resolver import Resolver
from .config.settings import Settings
from .config.sources.snapshot import SnapshotSource
from .errors import SnapshotError
from .log import logger

__all__ = ["FallbackPlugin", "PreparedConfig", "prepare_configs", "register"]

PACKAGE = "livekit_fallback"


@dataclass(frozen=True)
class PreparedConfig:
    """What the download step did for one vertical.

    Attributes:
        vertical: The vertical.
        snapshot: The snapshot file checked.
        problems: Warnings about the snapshot (errors raise instead).
    """

    vertical: str
    snapshot: str
    problems: tuple[str, ...] = field(default=())


async def prepare_configs(settings: Settings | None = None) -> list[PreparedConfig]:
    """Check every snapshot and, with a database, store each vertical's current config as last-known-good.

    Args:
        settings: Where the database, snapshots and cache are (the environment by default).

    Returns:
        One record per vertical with a snapshot.

    Raises:
        SnapshotError: A snapshot file is unusable (lists every problem).
    """
    from .snapshots.check import check_file  # image build only: job processes never load the snapshot tools

    settings = settings or Settings.from_env()
    prepared: list[PreparedConfig] = []
    async with Resolver.from_settings(settings) as resolver:
        dirs = resolver.snapshots.dirs if isinstance(resolver.snapshots, SnapshotSource) else []
        files = sorted({p.stem: p for d in reversed(dirs) for p in d.glob("*.toml")}.items())
        for vertical, path in files:
            problems = check_file(path)
            errors = [str(p) for p in problems if p.severity == "error"]
            if errors:
                raise SnapshotError(f"snapshot {path.name} is not usable: " + "; ".join(errors))
            stored: tuple[str, ...] = ()
            if resolver.database is not None:
                config = await resolver.resolve(vertical, "livekit", fresh=True)
                stored = tuple(k for k, p in config.provenance.items() if p.source is Source.DATABASE)
                if stored:
                    logger.info(
                        "download-files: %s/livekit read from the database (%d components) into the last-known-good"
                        " store",
                        vertical,
                        len(stored),
                        extra={"event": "prepared_from_database", "vertical": vertical},
                    )
                else:
                    logger.warning(
                        "download-files: the database gave nothing usable for %s; the image relies on its snapshot",
                        vertical,
                        extra={"event": "prepared_from_snapshot", "vertical": vertical},
                    )
            prepared.append(PreparedConfig(vertical, path.name, tuple(str(p) for p in problems)))
            logger.info("download-files: snapshot %s checked", path.name, extra={"event": "snapshot_checked"})
    return prepared


class FallbackPlugin(Plugin):
    """The package's LiveKit plugin: title, version, package and logger, plus ``download_files``."""

    def __init__(self) -> None:
        super().__init__("livekit-fallback", __version__, PACKAGE, logger)

    def download_files(self) -> None:
        """Prepare configs at image build time (see :func:`prepare_configs`).

        Raises:
            SnapshotError: A snapshot file is unusable.
        """
        run_to_completion(prepare_configs(), thread_name="livekit-fallback-download-files")


def register() -> None:
    """Register :class:`FallbackPlugin` once (LiveKit requires the main thread; elsewhere it is skipped)."""
    if any(p.package == PACKAGE for p in Plugin.registered_plugins):
        return
    if threading.current_thread() is not threading.main_thread():
        logger.warning("livekit-fallback's LiveKit plugin is not registered: imported off the main thread")
        return
    Plugin.register_plugin(FallbackPlugin())


register()
