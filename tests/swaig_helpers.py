"""Shared by the SignalWire tests: the published SWML schema and a reverse-mortgage tool registry.

The registry stands in for the LiveKit engineer's ``examples/reverse_mortgage_tools.py``:
same tool names as the snapshot, schemas in the style an OpenAI-strict tool uses
(``additionalProperties``, ``minimum``, ``format``, nullable type lists), which
SWML cannot declare verbatim. ``REGISTRY`` is importable for ``--tools``.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from livekit_fallback.tools import ToolRegistry, ToolResult

NODE_NAMES = ("greet", "verify", "qualify", "quote", "answer", "objections", "book", "goodbye", "end")


@lru_cache(maxsize=1)
def swml_schema() -> dict[str, Any]:
    """SignalWire's published SWML schema, as shipped in signalwire-sdk."""
    return json.loads(importlib.resources.files("signalwire").joinpath("schema.json").read_text())


def swml_errors(doc: Any) -> list[str]:
    """Every schema violation of a whole SWML document, as ``path: message`` lines."""
    validator = Draft202012Validator(swml_schema())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(doc)]


def sub_schema_errors(definition: str, value: Any) -> list[str]:
    """Violations of one ``$defs`` entry (e.g. ``ContextsObject``, ``FunctionParameters``)."""
    registry = Registry().with_resource("SWMLObject.json", Resource.from_contents(swml_schema()))
    validator = Draft202012Validator({"$ref": f"SWMLObject.json#/$defs/{definition}"}, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in validator.iter_errors(value)]


def ai_verb(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``ai`` verb of a SWML document built by ``build_swml``."""
    main = doc["sections"]["main"]
    assert main[0] == {"answer": {}}
    return main[1]["ai"]


def _obj(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def build_registry() -> ToolRegistry:
    """A fresh registry with every tool the reverse-mortgage snapshot names."""
    registry = ToolRegistry()
    tool = registry.tool

    @tool(description="Record that the person on the line is not the expected homeowner.")
    def mark_wrong_person(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["wrong_person"] = True
        return "Recorded: wrong person. Apologise and say goodbye."

    @tool(
        description="Check the caller's name and property address against the lead record.",
        parameters=_obj(
            {
                "full_name": {"type": "string", "minLength": 2, "description": "Name as the caller said it."},
                "street": {"type": "string", "description": "Street address of the property."},
                "city": {"type": ["string", "null"], "description": "City, if given."},
            },
            ["full_name", "street"],
        ),
    )
    def verify_caller_identity(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["verified"] = args["street"].strip().lower().startswith("12 elm")
        return "Identity confirmed." if state["verified"] else "Details do not match the record."

    @tool(
        description="Save new or corrected lead details.",
        parameters=_obj(
            {
                "phone": {"type": "string", "pattern": r"^\+?[0-9 ()-]{7,20}$"},
                "email": {"type": "string", "format": "email"},
            },
            [],
        ),
    )
    def update_lead_info(args: dict[str, Any], state: dict[str, Any]) -> str:
        return f"Saved {', '.join(sorted(args)) or 'nothing'}."

    @tool(
        description="Record whether the homeowner qualifies.",
        parameters=_obj({"qualified": {"type": "boolean"}, "reason": {"type": "string"}}, ["qualified"]),
    )
    def mark_qualification_result(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["qualified"] = args["qualified"]
        return "Qualification recorded."

    @tool(
        description="Record that a rough estimate was given.",
        parameters=_obj({"amount_low": {"type": "integer", "minimum": 0}, "amount_high": {"type": "integer"}}, []),
    )
    def mark_quote_presented(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["quote_presented"] = True
        return "Quote recorded."

    @tool(
        description="Search the reverse-mortgage knowledge base.",
        parameters=_obj({"query": {"type": "string", "maxLength": 200}}, ["query"]),
    )
    def search_knowledge(args: dict[str, Any], state: dict[str, Any]) -> str:
        return f"Knowledge about {args['query']}: heirs inherit the home."

    @tool(description="Record that the caller wants to book; moves the call to booking.")
    def mark_ready_to_book(args: dict[str, Any], state: dict[str, Any]) -> ToolResult:
        state["ready_to_book"] = True
        return ToolResult("Ready to book.", {"next_node": "book"})

    @tool(description="Record that the caller's concern has been handled.")
    def mark_objection_handled(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["objection_handled"] = True
        return "Objection handled."

    @tool(
        description="Record that the caller raised a concern.",
        parameters=_obj({"topic": {"type": "string", "enum": ["scam", "heirs", "losing_home", "other"]}}, ["topic"]),
    )
    def mark_has_objection(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["objection_topic"] = args["topic"]
        return "Concern recorded."

    @tool(
        description="List open broker slots on a day.",
        parameters=_obj({"day": {"type": "string", "format": "date"}}, ["day"]),
    )
    async def check_broker_availability(args: dict[str, Any], state: dict[str, Any]) -> list[str]:
        return [f"{args['day']}T10:00", f"{args['day']}T14:30"]

    @tool(
        description="Book a slot with a licensed broker.",
        parameters=_obj(
            {
                "slot": {"type": "string", "format": "date-time"},
                "meeting": {"type": "string", "enum": ["phone", "in_person"], "default": "phone"},
                "attendees": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            },
            ["slot"],
        ),
    )
    async def book_appointment(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["appointment_booked"] = True
        return f"Booked {args['slot']} by {args.get('meeting', 'phone')}."

    @tool(description="Record that the caller declined to book for now.", parameters=_obj({}, []))
    def mark_booking_declined(args: dict[str, Any], state: dict[str, Any]) -> str:
        state["booking_declined"] = True
        return "Recorded."

    return registry


REGISTRY = build_registry()
"""A module-level registry for ``--tools tests.swaig_helpers:REGISTRY``."""
