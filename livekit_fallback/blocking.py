"""Run a coroutine to completion from synchronous code, with or without a running event loop.

LiveKit calls some hooks synchronously (a job process's ``setup_fnc``, a
plugin's ``download_files``) sometimes from a thread that already runs an
event loop, where ``asyncio.run`` refuses to start. Both cases end the same
way here: the coroutine has finished, or its exception is raised in the caller.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

__all__ = ["run_to_completion"]


def run_to_completion(coroutine: Coroutine[Any, Any, Any], *, thread_name: str) -> None:
    """Run ``coroutine`` here, or on a thread of its own (named ``thread_name``) when this thread runs a loop.

    Raises:
        BaseException: Whatever the coroutine raised.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:  # re-raised on the calling thread
            failure.append(exc)

    worker = threading.Thread(target=target, name=thread_name)
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
