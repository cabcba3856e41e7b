"""Read stored component content (database rows, cache and snapshot entries) into model fields.

Stored content comes as a JSON object or a string holding one, with the
platforms' synonyms (``tools`` / ``functions``) and legacy keys
(``step_criteria``). This is the one reading of that content; the models in
:mod:`.model` validate what it returns.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidContent
from .keys import Platform

__all__ = ["as_object", "node_fields"]


def as_object(value: Any, what: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, decoding a string that holds one.

    Raises:
        InvalidContent: It is not an object (nor a string holding one); ``what`` names it.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidContent(f"{what} is a string that is not valid JSON, expected a JSON object") from None
    if not isinstance(value, Mapping):
        raise InvalidContent(f"{what} is a {type(value).__name__}, expected a JSON object")
    return value


def node_fields(content: Mapping[str, Any], *, platform: Platform) -> dict[str, Any]:
    """The :class:`~.model.Node` fields (all but ``name``) one platform reads from stored node content.

    ``tools`` (LiveKit) and ``functions`` (SignalWire) mean the same; the
    platform's own key wins when both are present and a null list is empty.
    Empty criteria are ``""``; legacy ``step_criteria`` stands in for a missing
    ``step_criteria_sw``. Keys the resolver does not read are dropped.
    """
    own, other = ("tools", "functions") if platform == "livekit" else ("functions", "tools")
    tools = content.get(own, content.get(other, []))
    return {
        "role": content.get("role"),
        "instructions": content.get("instructions"),
        "valid_contexts": content.get("valid_contexts", []),
        "tools": tools if tools is not None else [],
        "step_criteria_lk": content.get("step_criteria_lk") or "",
        "step_criteria_sw": content.get("step_criteria_sw") or content.get("step_criteria") or "",
    }
