"""Tool implementations for the reverse-mortgage vertical, shared by LiveKit and SignalWire.

Every tool named by ``snapshots/reverse_mortgage.toml`` is here. Handlers are
plain functions ``handler(args, state)``: ``state`` is the call's state (the
LiveKit session's ``userdata``, or the SWAIG call's state), so they set the
flags that ``step_criteria_lk`` reads (``verified``, ``qualified``,
``quote_presented``, ``ready_to_book``, ``objection_handled``,
``appointment_booked``, ``wrong_person``). They are deterministic and offline:
the lead comes from ``state["lead"]``, broker slots are computed from
``state["today"]`` (ISO date; the real date when unset), and
``search_knowledge`` searches the local ``faq.toml``.

Where the lead comes from: on SignalWire, :func:`call_state` is the
call-state hook (``serve --call-state examples.reverse_mortgage_tools:call_state``):
it looks the caller's phone number up in :data:`LEADS` (replace it with your
CRM) and puts the lead in the call's ``global_data``. An unknown caller, or a
SIP/WebRTC caller with no phone number, has no lead, and verification cannot
pass. Only a console/demo run (``state["demo_mode"] = True``, see
:func:`demo_state`) uses :data:`DEMO_LEAD`.

This module imports only ``livekit_fallback.tools``, never ``livekit``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import MutableMapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from livekit_fallback.tools import ToolRegistry, ToolResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "DEMO_LEAD",
    "DEMO_MODE_KEY",
    "FAQ_PATH",
    "LEADS",
    "available_slots",
    "build_registry",
    "call_state",
    "demo_state",
    "find_lead",
    "load_faq",
    "search_faq",
]

FAQ_PATH = Path(__file__).with_name("faq.toml")
DEMO_LEAD: dict[str, Any] = {
    "first_name": "Margaret",
    "last_name": "Lee",
    "property_address": "12 Oak Street, Springfield",
    "phone": "555 010 2030",
}
"""The lead of console/demo runs (only when the state has ``demo_mode``)."""

DEMO_MODE_KEY = "demo_mode"
"""State flag of console/demo runs; only then is :data:`DEMO_LEAD` used."""

LEADS: dict[str, dict[str, Any]] = {
    "15550104477": {
        "first_name": "Walter",
        "last_name": "Brooks",
        "property_address": "48 Birch Lane, Fairview",
        "phone": "+1 555 010 4477",
    },
    "15550108812": {
        "first_name": "Rosa",
        "last_name": "Alvarez",
        "property_address": "7 Harbor View Drive, Lakeside",
        "phone": "+1 555 010 8812",
    },
}
"""Example lead records keyed by the phone number's digits (with country code); stands in for a CRM."""

State = MutableMapping[str, Any]
_WORD = re.compile(r"[a-z0-9]+")
_SLOT_HOURS = (time(10, 0), time(14, 0))


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _lead(state: State) -> dict[str, Any] | None:
    """The call's lead; the demo lead only in demo mode; ``None`` for an unknown caller."""
    lead = state.get("lead")
    if isinstance(lead, dict) and lead:
        return lead
    if state.get(DEMO_MODE_KEY) is True:
        state["lead"] = dict(DEMO_LEAD)
        return state["lead"]  # type: ignore[no-any-return]
    return None


def demo_state() -> dict[str, Any]:
    """The initial state of a console/demo run: the demo lead, flagged as a demo."""
    return {DEMO_MODE_KEY: True, "lead": dict(DEMO_LEAD)}


def find_lead(phone: str | None) -> dict[str, Any] | None:
    """The lead record for a phone number (any formatting; a 10-digit number is read as +1), or ``None``."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    if len(digits) == 10:
        digits = "1" + digits
    lead = LEADS.get(digits)
    return dict(lead) if lead else None


def call_state(call: Any) -> dict[str, Any]:
    """Call-state hook: the call's initial ``global_data`` from what SignalWire posts for it.

    ``call`` is a :class:`swaig_fallback.CallInfo`; its ``caller_phone`` is the
    other party's phone number (``None`` for SIP and WebRTC addresses). A known
    number gives ``{"lead": {...}}``; an unknown caller gets no lead.
    """
    lead = find_lead(getattr(call, "caller_phone", None))
    data: dict[str, Any] = {"call_direction": getattr(call, "direction", None) or "unknown"}
    if lead is not None:
        data["lead"] = lead
    return data


def load_faq(path: Path = FAQ_PATH) -> list[dict[str, Any]]:
    """Read the FAQ entries (``question``, ``keywords``, ``answer``)."""
    with open(path, "rb") as fh:
        return list(tomllib.load(fh)["faq"])


def search_faq(query: str, faq: list[dict[str, Any]], limit: int = 2) -> list[dict[str, Any]]:
    """Rank FAQ entries by words shared with the query (keywords count double); best first."""
    terms = _words(query)
    scored = []
    for index, entry in enumerate(faq):
        score = 2 * len(terms & set(entry["keywords"])) + len(terms & _words(entry["question"]))
        if score:
            scored.append((-score, index, entry))
    return [entry for _, _, entry in sorted(scored)[:limit]]


def available_slots(today: date, taken: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Broker slots on the next three weekdays after ``today``, as ``YYYY-MM-DDTHH:MM``."""
    slots: list[str] = []
    day = today
    while len({s[:10] for s in slots}) < 3:
        day += timedelta(days=1)
        if day.weekday() < 5:
            slots += [datetime.combine(day, hour).strftime("%Y-%m-%dT%H:%M") for hour in _SLOT_HOURS]
    return [s for s in slots if s not in taken]


def _today(state: State) -> date:
    value = state.get("today")
    return date.fromisoformat(value) if isinstance(value, str) else date.today()


def _spoken(slot: str) -> str:
    moment = datetime.strptime(slot, "%Y-%m-%dT%H:%M")
    hour = moment.strftime("%I").lstrip("0")
    return f"{moment:%A %B} {moment.day} at {hour} {'in the morning' if moment.hour < 12 else 'in the afternoon'}"


def build_registry(faq_path: Path = FAQ_PATH) -> ToolRegistry:
    """The registry with all eleven reverse-mortgage tools."""
    registry = ToolRegistry()
    _lead_tools(registry)
    _conversation_tools(registry, load_faq(faq_path))
    _booking_tools(registry)
    return registry


def _lead_tools(registry: ToolRegistry) -> None:
    """Identity and lead details."""
    string = {"type": "string"}

    @registry.tool(
        description="Check the caller's full name and property address against the lead record.",
        parameters={
            "type": "object",
            "properties": {"full_name": string, "property_address": string},
            "required": ["full_name", "property_address"],
        },
    )
    def verify_caller_identity(args: dict[str, Any], state: State) -> str:
        lead = _lead(state)
        state["verify_attempts"] = int(state.get("verify_attempts") or 0) + 1
        if lead is None:
            state["verified"] = False
            return (
                "Not verified: there is no lead record for this caller, so identity cannot be confirmed. "
                "Do not share account details; offer to take their details for a broker call-back."
            )
        name_ok = str(lead["last_name"]).lower() in _words(args["full_name"])
        street = _words(str(lead["property_address"]).split(",")[0])
        address_ok = street <= _words(args["property_address"])
        state["verified"] = name_ok and address_ok
        if state["verified"]:
            return f"Verified: the caller is {lead['first_name']} {lead['last_name']}."
        wrong = [w for w, ok in (("name", name_ok), ("property address", address_ok)) if not ok]
        return f"Not verified: the {' and '.join(wrong)} did not match (attempt {state['verify_attempts']})."

    @registry.tool(
        description="Save new or corrected lead details the caller confirmed.",
        parameters={
            "type": "object",
            "properties": {
                "phone": string,
                "email": string,
                "full_name": string,
                "property_address": string,
                "age": {"type": "integer", "minimum": 18, "maximum": 120},
                "home_value": {"type": "number", "minimum": 0},
                "mortgage_balance": {"type": "number", "minimum": 0},
            },
            "additionalProperties": False,
        },
    )
    def update_lead_info(args: dict[str, Any], state: State) -> str:
        if not args:
            return "Nothing to update: pass at least one field."
        lead = _lead(state)
        if lead is None:
            lead = state["lead"] = {}
        lead.update(args)
        return f"Saved {', '.join(sorted(args))}."


def _conversation_tools(registry: ToolRegistry, faq: list[dict[str, Any]]) -> None:
    """Qualification, the estimate, the knowledge base and objections."""
    string = {"type": "string"}

    @registry.tool(
        description="Record whether the homeowner meets the basic reverse mortgage requirements.",
        parameters={
            "type": "object",
            "properties": {"qualified": {"type": "boolean"}, "reason": string},
            "required": ["qualified"],
        },
    )
    def mark_qualification_result(args: dict[str, Any], state: State) -> str:
        state["qualified"] = args["qualified"]
        state["qualification_reason"] = args.get("reason", "")
        return "Recorded: qualified." if args["qualified"] else "Recorded: not qualified."

    @registry.tool(
        description="Record that a rough, non-binding estimate was given to the caller.",
        parameters={
            "type": "object",
            "properties": {
                "estimate_low": {"type": "number", "minimum": 0},
                "estimate_high": {"type": "number", "minimum": 0},
                "payout_option": string,
            },
        },
    )
    def mark_quote_presented(args: dict[str, Any], state: State) -> str:
        state["quote_presented"] = True
        state["quote"] = dict(args)
        return "Recorded: estimate presented."

    @registry.tool(
        description="Search the reverse mortgage knowledge base with a short, focused query.",
        parameters={
            "type": "object",
            "properties": {"query": {"type": "string", "minLength": 1}},
            "required": ["query"],
        },
    )
    def search_knowledge(args: dict[str, Any], state: State) -> str:
        hits = search_faq(args["query"], faq)
        state["knowledge_searches"] = int(state.get("knowledge_searches") or 0) + 1
        if not hits:
            return "No entry in the knowledge base covers this; offer a follow-up from a licensed broker."
        return "\n".join(f"Q: {h['question']}\nA: {h['answer']}" for h in hits)

    @registry.tool(description="Record that the caller wants to book a call with a licensed broker.")
    def mark_ready_to_book(args: dict[str, Any], state: State) -> str:
        state["ready_to_book"] = True
        return "Recorded: ready to book."

    @registry.tool(
        description="Record that the caller's concern was addressed (even if they still decline).",
        parameters={"type": "object", "properties": {"outcome": string}},
    )
    def mark_objection_handled(args: dict[str, Any], state: State) -> str:
        state["objection_handled"] = True
        return "Recorded: concern addressed."

    @registry.tool(
        description="Record a concern or hesitation the caller raised.",
        parameters={
            "type": "object",
            "properties": {"objection": {"type": "string", "minLength": 1}},
            "required": ["objection"],
        },
    )
    def mark_has_objection(args: dict[str, Any], state: State) -> str:
        state["has_objection"] = True
        state.setdefault("objections", []).append(args["objection"])
        return "Recorded the concern."


def _booking_tools(registry: ToolRegistry) -> None:
    """Broker availability, booking, and the calls that end without one."""
    string = {"type": "string"}

    @registry.tool(
        description="List open broker appointment times on the next three weekdays.",
        parameters={
            "type": "object",
            "properties": {
                "preferred_day": string,
                "time_of_day": {"type": "string", "enum": ["morning", "afternoon", "any"]},
            },
        },
    )
    def check_broker_availability(args: dict[str, Any], state: State) -> str:
        slots = available_slots(_today(state), set(state.get("booked_slots", [])))
        wanted = args.get("time_of_day", "any")
        if wanted != "any":
            slots = [s for s in slots if (int(s[11:13]) < 12) == (wanted == "morning")] or slots
        day = str(args.get("preferred_day", "")).lower()
        slots = [
            s for s in slots if day and datetime.strptime(s[:10], "%Y-%m-%d").strftime("%A").lower() == day
        ] or slots
        state["offered_slots"] = slots[:3]
        return "Open times: " + "; ".join(f"{_spoken(s)} (slot {s})" for s in slots[:3])

    @registry.tool(
        description="Book the broker appointment the caller confirmed.",
        parameters={
            "type": "object",
            "properties": {
                "slot": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$"},
                "phone": string,
                "meeting_type": {"type": "string", "enum": ["phone", "in_person"]},
            },
            "required": ["slot", "phone"],
        },
    )
    def book_appointment(args: dict[str, Any], state: State) -> ToolResult:
        booked = state.setdefault("booked_slots", [])
        if args["slot"] not in available_slots(_today(state), set(booked)):
            return ToolResult(f"Not booked: {args['slot']} is not an open time. Offer another open time.")
        booked.append(args["slot"])
        state["appointment"] = {**args, "meeting_type": args.get("meeting_type", "phone")}
        state["appointment_booked"] = True
        return ToolResult(f"Booked for {_spoken(args['slot'])}; the broker will call {args['phone']}.")

    @registry.tool(description="Record that the caller decided not to book an appointment for now.")
    def mark_booking_declined(args: dict[str, Any], state: State) -> str:
        state["booking_declined"] = True
        return "Recorded: no appointment for now. Thank them and move on to goodbye."

    @registry.tool(
        description="Record that the person on the line is not the expected homeowner.",
        parameters={"type": "object", "properties": {"note": string}},
    )
    def mark_wrong_person(args: dict[str, Any], state: State) -> str:
        state["wrong_person"] = True
        return "Recorded: wrong person. Share no details about the homeowner."
