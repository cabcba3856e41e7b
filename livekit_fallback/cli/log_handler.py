"""The command's stderr log handler: banners and fallbacks go to stderr, results to stdout.

The package never configures logging on import (see :mod:`livekit_fallback.log`);
only the command, when it runs, attaches this handler to the root logger.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["CliHandler", "configure_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class CliHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The command's stderr handler; marked so repeated ``main()`` calls add it once."""


def configure_logging(level: str) -> None:
    """Send log records at ``level`` and above to the current ``sys.stderr``.

    Called once per ``main()``. A handler left by an earlier call is replaced,
    not duplicated, so in-process callers (tests) that swap ``sys.stderr``
    between calls get their records on the new stream.

    Raises:
        ValueError: ``level`` is not a logging level name.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    for old in [h for h in root.handlers if isinstance(h, CliHandler)]:
        root.removeHandler(old)
    handler = CliHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
