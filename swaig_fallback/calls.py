"""Per-call facts from SignalWire's SWML request, and the call-state hook that turns them into ``global_data``.

When SignalWire fetches the SWML for a call it posts the call's facts
(``call.call_id``, ``call.from``, ``call.to``, ``call.direction``,
``call.headers``) and the SWML URL's query parameters. :class:`CallInfo`
holds them, cleaned. A call-state hook (``--call-state MODULE:ATTR``, or the
``call_state`` argument of :func:`~swaig_fallback.swml.build_swml`) maps one
:class:`CallInfo` to the call's initial ``global_data``: typically the lead
found by the caller's phone number. The SWML carries that data; every SWAIG
request brings it back as the tool's state.

Addresses that are not phone numbers (``sip:alice2024@host``, WebRTC
``verto`` addresses) are never read as phone numbers.
"""

from __future__ import annotations

import inspect
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "DIRECTIONS",
    "CallInfo",
    "CallStateHook",
    "call_global_data",
    "clean_text",
    "initial_global_data",
    "phone_number",
]

Direction = Literal["inbound", "outbound"]
DIRECTIONS: tuple[Direction, ...] = ("inbound", "outbound")

_TEMPLATE = re.compile(r"[$%]\{[^{}]*\}?")
_PHONE = re.compile(r"^\+?[0-9()\-. ]+")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*:", re.IGNORECASE)
_MAX_HEADERS = 64


def clean_text(value: object, limit: int) -> str | None:
    """Untrusted text made safe for step text: one line, no template syntax, at most ``limit`` characters.

    Control, format (bidi) and separator characters become spaces; SignalWire
    template syntax (``${...}``, ``%{...}``) and leftover braces are removed,
    since the platform expands templates in step text.
    """
    if not isinstance(value, str):
        return None
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in value[: limit * 4])
    previous = None
    while previous != text:
        previous, text = text, _TEMPLATE.sub("", text)
    text = text.replace("{", "").replace("}", "")
    return " ".join(text.split())[:limit].strip() or None


def phone_number(address: object) -> str | None:
    """The phone number in a caller address, or ``None`` for SIP, WebRTC and other non-phone addresses.

    ``+1 (555) 010-2030`` and ``tel:+15550102030`` are phone numbers;
    ``sip:alice2024@example.com``, ``verto:...``, anything with ``@`` is not.
    """
    if not isinstance(address, str):
        return None
    text = address.strip()
    if text.lower().startswith("tel:"):
        text = text[4:].split(";")[0]
    elif "@" in text or _SCHEME.match(text):
        return None
    match = _PHONE.match(text)
    number = " ".join(match.group(0).split())[:32] if match else ""
    return number if sum(c.isdigit() for c in number) >= 3 else None


def _headers(value: Any) -> dict[str, str]:
    """SIP headers as a mapping; SignalWire sends a list of ``{name, value}`` (a mapping is accepted too)."""
    pairs: list[tuple[Any, Any]] = []
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [(h.get("name"), h.get("value")) for h in value if isinstance(h, Mapping)]
    out: dict[str, str] = {}
    for name, item in pairs[:_MAX_HEADERS]:
        if isinstance(name, str) and isinstance(item, str):
            out[name[:128]] = item[:1024]
    return out


@dataclass(frozen=True)
class CallInfo:
    """What SignalWire says about a call when it fetches the SWML.

    Attributes:
        call_id: SignalWire's call id, or ``None``.
        from_address: The ``from`` address (a phone number, SIP or WebRTC address).
        to_address: The ``to`` address.
        direction: ``inbound``, ``outbound``, or ``None`` when not given.
        headers: SIP headers of the call (name to value).
        params: Query parameters of the SWML URL.
        caller_name: The caller's name (caller ID or ``caller_name`` parameter), cleaned.
    """

    call_id: str | None = None
    from_address: str | None = None
    to_address: str | None = None
    direction: Direction | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    caller_name: str | None = None

    @property
    def caller_address(self) -> str | None:
        """The other party's address: ``to`` on an outbound call, ``from`` otherwise."""
        return self.to_address if self.direction == "outbound" else self.from_address

    @property
    def caller_phone(self) -> str | None:
        """The other party's phone number, or ``None`` when the address is not a phone number."""
        return phone_number(self.params.get("caller_phone") or self.caller_address)

    @classmethod
    def from_request(cls, body: Any, params: Mapping[str, str]) -> CallInfo:
        """Build from the SWML request's decoded body (``None`` for a GET) and query parameters."""
        call = body.get("call") if isinstance(body, Mapping) else None
        call = call if isinstance(call, Mapping) else {}
        direction = call.get("direction")
        name = params.get("caller_name") or call.get("caller_id_name")

        def text(key: str) -> str | None:
            value = call.get(key)
            return value[:256] if isinstance(value, str) and value else None

        return cls(
            call_id=text("call_id"),
            from_address=text("from"),
            to_address=text("to"),
            direction=direction if direction in DIRECTIONS else None,
            headers=_headers(call.get("headers")),
            params={k[:64]: v[:256] for k, v in list(params.items())[:_MAX_HEADERS]},
            caller_name=clean_text(name, 80),
        )


CallStateHook = Callable[[CallInfo], "Mapping[str, Any] | None | Awaitable[Mapping[str, Any] | None]"]
"""``hook(call) -> global_data``: sync or async; ``None`` or ``{}`` means no per-call data."""


def _checked(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"the call-state hook must return a mapping, got {type(value).__name__}")
    try:
        data: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False, default=str))
    except (ValueError, RecursionError):
        raise TypeError("the call-state hook returned data that is not JSON") from None
    return data


def call_global_data(hook: CallStateHook | None, call: CallInfo) -> dict[str, Any]:
    """Run a synchronous hook; its result as JSON-safe ``global_data``.

    Raises:
        TypeError: The hook is async (use :func:`initial_global_data`).
        TypeError: The hook returned something that is not a JSON object.
    """
    if hook is None:
        return {}
    value = hook(call)
    if inspect.isawaitable(value):
        if inspect.iscoroutine(value):
            value.close()
        raise TypeError("this call-state hook is async; await initial_global_data(hook, call) instead")
    return _checked(value)


async def initial_global_data(hook: CallStateHook | None, call: CallInfo) -> dict[str, Any]:
    """Run a sync or async hook; its result as JSON-safe ``global_data``.

    Raises:
        TypeError: The hook returned something that is not a JSON object.
    """
    if hook is None:
        return {}
    value = hook(call)
    if inspect.isawaitable(value):
        value = await value
    return _checked(value)
