"""One call pickup in a new process, as LiveKit runs every call: ``python -m benchmarks.pickup VERTICAL``.

The process imports the package (timed), builds ``Resolver.from_settings()``
from the environment (``SUPABASE_URL``, ``LIVEKIT_FALLBACK_CACHE_DIR``, ...),
prints ``{"ready": ...}`` and waits for a line on stdin, so a benchmark can
start several resolutions at the same moment; then it resolves once (timed)
and prints the result as one JSON line. The package's log records are
formatted, as a worker's handler would, counted and dropped.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import asyncio  # noqa: E402  (after the clock starts: the import time is measured)
import json  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

__all__ = ["LogCounter", "main"]


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
    main(sys.argv[1])
