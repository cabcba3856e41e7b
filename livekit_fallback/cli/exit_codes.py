"""The command's exit codes: one meaning per number, the same for every subcommand.

Scripts and CI gates branch on these numbers, so each keeps one meaning
everywhere: ``1`` is always "the command ran and its verdict is negative"
(drift, invalid snapshot, refused), ``2`` is always a usage error (argparse's
own code), ``4`` always means the command could not produce its result.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["EXIT_CODES_EPILOG", "ExitCode"]


class ExitCode(IntEnum):
    """Process exit codes of ``livekit-fallback``.

    Attributes:
        OK: The command did its job; nothing to report.
        PROBLEMS: The command ran and its verdict is negative: ``snapshot diff``
            found drift, ``snapshot check`` found problems, ``snapshot pull`` or
            ``snapshot seed`` refused to write.
        USAGE: Bad command line or settings: unknown option, missing or
            malformed environment variable, bad vertical name, a ``--tools``
            target that cannot be imported, an unsafe ``serve`` setup.
        DEGRADED: ``status``: the database is unreachable or some component is
            served from a fallback.
        FAILED: The command could not produce its result: no usable
            configuration from any source, the database unreachable or
            answering badly, a snapshot unreadable, a file unwritable, a port
            unavailable, an unexpected error.
        INTERRUPTED: Stopped with Ctrl-C (128 + SIGINT, as shells report it).
    """

    OK = 0
    PROBLEMS = 1
    USAGE = 2
    DEGRADED = 3
    FAILED = 4
    INTERRUPTED = 130


EXIT_CODES_EPILOG = """\
exit codes (the same for every subcommand):
  0    ok
  1    problems: drift (snapshot diff), invalid snapshot (snapshot check),
       refused to write (snapshot pull / seed)
  2    usage: bad arguments or settings (environment variables, --tools, serve setup)
  3    degraded: status found the database unreachable or a component on a fallback
  4    failed: no usable configuration, database unreachable or answering badly,
       snapshot unreadable, file unwritable, port unavailable, unexpected error
  130  interrupted (Ctrl-C)
"""
"""The table above as ``--help`` shows it."""
