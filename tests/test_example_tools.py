"""The example reverse-mortgage tools: complete for the snapshot, deterministic, offline, livekit-free."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers_livekit import EXAMPLES, example_registry, load_example, snapshot_config

TODAY = "2025-11-21"  # a Friday


async def test_registry_covers_every_tool_the_snapshot_names() -> None:
    """All twelve tool names in the snapshot bind; nothing is missing."""
    registry = example_registry()
    bound = registry.bind(await snapshot_config())
    assert len(registry) == 12
    assert {spec.name for specs in bound.values() for spec in specs} == {spec.name for spec in registry}


async def test_verification_matches_the_lead_and_counts_attempts() -> None:
    """Name and street must match the lead; a mismatch says which detail failed."""
    registry = example_registry()
    state: dict = {"lead": {"first_name": "Ann", "last_name": "Ruiz", "property_address": "9 Elm Road, Dover"}}
    bad = await registry.call(
        "verify_caller_identity", {"full_name": "Ann Ruiz", "property_address": "10 Elm Road"}, state
    )
    assert bad.response.startswith("Not verified: the property address") and state["verified"] is False
    good = await registry.call(
        "verify_caller_identity", {"full_name": "ann ruiz", "property_address": "9 elm road dover"}, state
    )
    assert good.state["verified"] is True and state["verify_attempts"] == 2


async def test_knowledge_search_uses_the_local_faq() -> None:
    """A question about heirs finds the heirs entry first; an unrelated one finds nothing."""
    registry = example_registry()
    hit = await registry.call("search_knowledge", {"query": "what happens to my children when I die"}, {})
    assert hit.response.startswith("Q: What happens to my children or heirs?")
    miss = await registry.call("search_knowledge", {"query": "weather tomorrow"}, {})
    assert miss.response.startswith("No entry in the knowledge base")


async def test_booking_offers_deterministic_slots_and_refuses_taken_ones() -> None:
    """Slots are the next three weekdays after state['today']; a booked slot cannot be booked twice."""
    registry = example_registry()
    state: dict = {"today": TODAY}
    offered = await registry.call("check_broker_availability", {"time_of_day": "afternoon"}, state)
    assert state["offered_slots"] == ["2025-11-24T14:00", "2025-11-25T14:00", "2025-11-26T14:00"]
    assert "Monday November 24 at 2 in the afternoon" in offered.response
    booked = await registry.call("book_appointment", {"slot": "2025-11-24T14:00", "phone": "555 0100"}, state)
    assert booked.state["appointment_booked"] is True and state["appointment"]["meeting_type"] == "phone"
    again = await registry.call("book_appointment", {"slot": "2025-11-24T14:00", "phone": "555 0100"}, {**state})
    assert again.response.startswith("Not booked")
    weekend = await registry.call("book_appointment", {"slot": "2025-11-22T10:00", "phone": "1"}, {"today": TODAY})
    assert weekend.response.startswith("Not booked")


def test_tools_module_imports_without_livekit() -> None:
    """The SignalWire side can import the tools: the module never imports livekit."""
    code = (
        "import sys; sys.modules['livekit'] = None; "
        f"sys.path.insert(0, {str(EXAMPLES)!r}); "
        "import reverse_mortgage_tools as t; print(len(t.build_registry()))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "12"
    assert load_example("reverse_mortgage_tools").FAQ_PATH.is_file()
