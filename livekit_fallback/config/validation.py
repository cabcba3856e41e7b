"""Turn pydantic validation errors into the short messages banners and checks show.

Pydantic prefixes the message of every error a validator raised with
``Value error, ``; the reader of a banner or a ``snapshot check`` line needs
only the validator's own words. This is the one place that prefix is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

__all__ = ["error_message", "field_errors", "first_error", "first_message"]

_PREFIX = "Value error, "


def error_message(err: Mapping[str, Any]) -> str:
    """The message of one pydantic error (an item of ``ValidationError.errors()``), without its prefix."""
    return str(err.get("msg", "")).removeprefix(_PREFIX)


def first_message(exc: ValueError) -> str:
    """The first error's message of a validation error; ``str(exc)`` for any other ``ValueError``."""
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        if errors:
            return error_message(errors[0])
    return str(exc)


def first_error(exc: ValueError) -> str:
    """Up to three errors as ``field: message``, joined by ``; ``; ``str(exc)`` for a plain ``ValueError``."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = error_message(err)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Every error as ``(dotted field path without list indexes, message)``."""
    return [
        (".".join(str(p) for p in err["loc"] if not isinstance(p, int)), error_message(err)) for err in exc.errors()
    ]
