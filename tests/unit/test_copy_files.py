"""The JSON last-known-good copies (``LIVEKIT_FALLBACK_SHARED_STATE=0``): no freeze, an alarm per bad part."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

import pytest

from livekit_fallback.config.state import copies as copies_module
from livekit_fallback.config.state.copies import CopyFiles
from livekit_fallback.config.state.sqlite import SqliteStorage

from .conftest import DEPLOYMENT

pytestmark = pytest.mark.unit

READ_AT = "2026-01-01T00:00:00+00:00"
GOOD = {"theme": ('{"t": 1}', READ_AT), "models.llm": ('{"m": 1}', READ_AT)}


def _skips(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if getattr(r, "event", None) == "cache_problem"]


async def test_a_fifo_among_the_copies_is_skipped_at_once_with_its_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A FIFO where a copy should be: named once, not opened (it would block), the other copies served."""
    files = CopyFiles(tmp_path)
    await files.save(DEPLOYMENT, "rm", "livekit", GOOD)
    os.mkfifo(files.folder(DEPLOYMENT) / "rm.signalwire.json")
    loop = asyncio.get_running_loop()
    started = loop.time()
    loaded = await files.load(DEPLOYMENT)
    assert loop.time() - started < 0.3
    assert loaded == {("rm", "livekit"): GOOD}
    assert [m for m in _skips(caplog) if "not a regular file" in m and "rm.signalwire.json" in m]


def _entry_not_an_object(entry: dict[str, object]) -> object:
    return "text"


def _entry_null(entry: dict[str, object]) -> object:
    return None


def _value_missing(entry: dict[str, object]) -> object:
    return {"read_at": entry["read_at"]}


def _value_not_text(entry: dict[str, object]) -> object:
    return {**entry, "value": {"t": 1}}


def _read_at_missing(entry: dict[str, object]) -> object:
    return {"value": entry["value"]}


def _read_at_not_text(entry: dict[str, object]) -> object:
    return {**entry, "read_at": 12}


@pytest.mark.parametrize(
    "damage",
    [_entry_not_an_object, _entry_null, _value_missing, _value_not_text, _read_at_missing, _read_at_not_text],
)
async def test_each_bad_component_gets_its_alarm_and_the_others_are_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    """One component damaged by hand: an alarm naming it; every other component of the file is still served."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    files = CopyFiles(tmp_path)
    await files.save(DEPLOYMENT, "rm", "livekit", GOOD)
    path = files.folder(DEPLOYMENT) / "rm.livekit.json"
    document = json.loads(path.read_text())
    document["components"]["theme"] = damage(document["components"]["theme"])  # type: ignore[operator]
    path.write_text(json.dumps(document))
    loaded = await CopyFiles(tmp_path).load(DEPLOYMENT)
    assert loaded == {("rm", "livekit"): {"models.llm": GOOD["models.llm"]}}
    skipped = _skips(caplog)
    assert len(skipped) == 1 and "theme" in skipped[0], skipped


async def test_a_corrupt_file_of_an_earlier_version_is_named_in_the_default_mode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``<vertical>.<platform>.json`` of an earlier version, even corrupt, is named once by the machine's file too."""
    caplog.set_level(logging.INFO, logger="livekit_fallback")
    monkeypatch.setattr(copies_module, "_LEGACY_SAID", set())
    (tmp_path / "rm.livekit.json").write_text("{ not json")
    for _ in range(2):
        storage = SqliteStorage(tmp_path, op_timeout=2.0)
        await storage.run(DEPLOYMENT, lambda tx: tx.breaker())
        storage.close()
    skipped = _skips(caplog)
    assert len(skipped) == 1 and "rm.livekit.json" in skipped[0] and "earlier version" in skipped[0]
