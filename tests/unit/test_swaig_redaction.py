"""Log redaction, one-line log text, bounded JSON and caller-text cleaning, in process."""

from __future__ import annotations

import logging
import traceback

import pytest
from pydantic import BaseModel, ValidationError

from livekit_fallback.config.sources.base import redact_exception
from livekit_fallback.log import SecretsFilter, log_safe
from swaig_fallback.bodies import loads
from swaig_fallback.calls import clean_text, phone_number

pytestmark = pytest.mark.unit
KEY = "sb-secret-key-1234567890"


class _Row(BaseModel):
    code: int


def test_redact_exception_walks_chained_pydantic_errors() -> None:
    """A key inside a chained pydantic ValidationError never reaches the rendered trace."""
    try:
        try:
            _Row.model_validate_json(f"Invalid API key {KEY}".encode())
        except ValidationError as inner:
            raise RuntimeError({"message": "Unauthorized", "details": f"Invalid API key {KEY}"}) from inner
    except RuntimeError as exc:
        redact_exception(exc, [KEY])
        assert KEY not in "".join(traceback.format_exception(exc))


def test_secrets_filter_masks_message_args_trace_and_extra() -> None:
    """The filter masks a secret in the message, its arguments, the trace and extra fields."""
    filt = SecretsFilter()
    filt.add(KEY)
    try:
        raise ValueError(f"boom {KEY}")
    except ValueError as exc:
        record = logging.LogRecord("livekit_fallback", logging.ERROR, "x", 1, "got %s", (KEY,), (type(exc), exc, None))
    record.detail = f"k={KEY}"
    assert filt.filter(record)
    rendered = logging.Formatter("%(message)s %(detail)s").format(record)
    assert KEY not in rendered and "***" in rendered


def test_log_safe_keeps_one_line() -> None:
    """Line breaks, bidi and escape characters are escaped and long text is cut."""
    text = log_safe("/swml\nFORGED\u2028\u202e\x1b[31m" + "x" * 500, 80)
    assert "\n" not in text and "\u2028" not in text and "\u202e" not in text and "\x1b" not in text
    assert len(text) <= 81


@pytest.mark.parametrize("text", ["[" * 100 + "]" * 100, "NaN", '{"a": Infinity}', "1e400", "9" * 30])
def test_loads_refuses_deep_and_non_finite(text: str) -> None:
    """Deep nesting, NaN, Infinity and out-of-range numbers are refused with a short message."""
    with pytest.raises(ValueError) as info:
        loads(text)
    assert len(str(info.value)) < 80


def test_caller_text_and_addresses() -> None:
    """Template syntax is removed from names; SIP and WebRTC addresses are not phone numbers."""
    assert clean_text("${global_data.lead} Ann %{call.from}", 80) == "Ann"
    assert phone_number("sip:alice2024@pbx.example.com") is None
    assert phone_number("verto:bob@example.com") is None
    assert phone_number("tel:+15550104477") == "+15550104477"
    assert phone_number("+1 (555) 010-4477") == "+1 (555) 010-4477"
