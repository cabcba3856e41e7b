"""The health record: one JSON shape, with a public form that carries no free text."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from livekit_fallback.config.status import ComponentStatus, Status

pytestmark = pytest.mark.unit

SINCE = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def _status(reachable: bool | None, degraded: dict[str, dict[str, ComponentStatus]] | None = None) -> Status:
    return Status(
        database_configured=True,
        database_reachable=reachable,
        since=SINCE,
        breaker="open" if reachable is False else "closed",
        last_error="ConnectError: connection refused by db.internal:5432" if reachable is False else None,
        degraded=degraded or {},
    )


def test_healthy_status_is_ok_with_empty_degraded_lists() -> None:
    """A reachable database with nothing degraded reports ok, keyed per vertical/platform."""
    record = _status(True, {"rm/livekit": {}}).to_json()
    assert record == {
        "status": "ok",
        "database": {
            "configured": True,
            "reachable": True,
            "since": SINCE.isoformat(),
            "breaker": "closed",
            "last_error": None,
        },
        "degraded": {"rm/livekit": {}},
    }


def test_degraded_status_names_each_component_with_detail() -> None:
    """An unreachable database reports degraded, the error text, and each component's source, reason, detail."""
    component = ComponentStatus("snapshot", "unreachable", "database unreachable; snapshot taken 2025-11-21")
    record = _status(False, {"rm/signalwire": {"nodes.verify": component}}).to_json()
    assert record["status"] == "degraded"
    assert record["database"]["last_error"].startswith("ConnectError")
    assert record["degraded"]["rm/signalwire"]["nodes.verify"] == {
        "source": "snapshot",
        "reason": "unreachable",
        "detail": "database unreachable; snapshot taken 2025-11-21",
    }


def test_public_record_leaves_out_error_text_and_details() -> None:
    """public=True drops last_error and each component's detail, keeping every other key of the same shape."""
    component = ComponentStatus("snapshot", "unreachable", "db.internal refused")
    status = _status(False, {"rm/signalwire": {"theme": component}})
    full, public = status.to_json(), status.to_json(public=True)
    assert public["database"] == {k: v for k, v in full["database"].items() if k != "last_error"}
    assert public["degraded"] == {"rm/signalwire": {"theme": {"source": "snapshot", "reason": "unreachable"}}}
    assert "db.internal" not in repr(public)


def test_unavailable_overrides_ok_and_degraded() -> None:
    """unavailable=True reports status unavailable whatever the database state."""
    assert _status(True).to_json(unavailable=True)["status"] == "unavailable"
    assert _status(False).to_json(unavailable=True, public=True)["status"] == "unavailable"
