"""One call pickup in a new process, as LiveKit runs every call: ``python -m benchmarks.pickup [--baseline] VERTICAL``.

The process imports the package (timed), builds ``Resolver.from_settings()``
from the environment (``SUPABASE_URL``, ``LIVEKIT_FALLBACK_CACHE_DIR``, ...),
prints ``{"ready": ...}`` and waits for a line on stdin, so a benchmark can
start several resolutions at the same moment; then it resolves once (timed)
and prints the result as one JSON line. The package's log records are
formatted, as a worker's handler would, counted and dropped.

With ``--baseline`` the process is the original's instead: it imports
supabase and creates its process-wide client at import time (timed as the
import), and the pickup is one N+1 read (:mod:`benchmarks.baseline`).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import asyncio  # noqa: E402  (after the clock starts: the import time is measured)
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

__all__ = ["LogCounter", "baseline", "main"]


class LogCounter(logging.Handler):
    """Formats every record as a worker's handler would, and counts records, banners and lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.records = 0
        self.banners = 0
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        self.banners += getattr(record, "event", None) == "config_fallback"
        self.lines += self.format(record).count("\n") + 1


def _wait_for_go() -> None:
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()


def baseline(vertical: str) -> None:
    """The original's pickup in a new process: client made at import, then one N+1 read."""
    import os

    from .baseline import baseline_resolve, create_baseline_client

    client = create_baseline_client(os.environ["SUPABASE_URL"], os.environ["SUPABASE_SERVICE_KEY"])
    imported = time.perf_counter() - _STARTED
    _wait_for_go()
    started = time.perf_counter()
    config = asyncio.run(baseline_resolve(client, vertical))
    wall = time.perf_counter() - started
    degraded = len(config["nodes"]) != 9 or not all(config["models"].values())
    result = {"wall": wall, "degraded": degraded, "imported": imported, "records": 0, "banners": 0, "lines": 0}
    print(json.dumps(result), flush=True)


def main(vertical: str) -> None:
    """Imports the package, waits for the go line, resolves ``vertical`` once and reports."""
    from livekit_fallback import Resolver

    imported = time.perf_counter() - _STARTED
    counter = LogCounter()
    log = logging.getLogger("livekit_fallback")
    log.addHandler(counter)
    log.setLevel(logging.INFO)
    log.propagate = False

    async def pickup() -> dict[str, object]:
        resolver = Resolver.from_settings()
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started = time.perf_counter()
        config = await resolver.resolve(vertical)
        wall = time.perf_counter() - started
        await resolver.aclose()
        return {"wall": wall, "degraded": config.is_degraded}

    result = asyncio.run(pickup())
    result.update(
        imported=imported,
        records=counter.records,
        banners=counter.banners,
        lines=counter.lines,
    )
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--baseline":
        baseline(sys.argv[2])
    else:
        main(sys.argv[1])
