"""The package's loggers, named once, and the filter that keeps secrets and forged lines out of them.

Everything the package logs goes through :data:`logger` (``livekit_fallback``)
or its child :data:`swaig_logger` (``livekit_fallback.swaig``, the SignalWire
server's requests), so an application routes or silences the package with one
``logging.getLogger("livekit_fallback")``. The package never configures
logging on import; the CLI adds its own handler when it runs.

Secrets: whoever holds a secret (the resolver's Supabase key, the webhook's
basic-auth password) calls :func:`protect_secrets` with it. That attaches one
:class:`SecretsFilter` to the package's loggers, which masks every protected
value anywhere in a record: the message, its arguments, the formatted
traceback and string ``extra`` fields. Text that comes from a request goes
through :func:`log_safe` first, so one request can never write more than one
log line.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

__all__ = ["LOGGER_NAME", "SecretsFilter", "log_safe", "logger", "protect_secrets", "swaig_logger"]

LOGGER_NAME = "livekit_fallback"

logger = logging.getLogger(LOGGER_NAME)
"""The package logger: fallbacks, alarms, resolutions, model builds."""

swaig_logger = logging.getLogger(f"{LOGGER_NAME}.swaig")
"""The SignalWire server's logger: requests, function calls, refusals."""

MASK = "***"
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def log_safe(value: object, limit: int = 120) -> str:
    r"""``value`` as one printable line for a log message, at most ``limit`` characters.

    Control, line-separator, format (bidi) and other non-printable characters
    are written as escapes (``\\n``, ``\\u202e``), so text from a request (a
    path, a call id, a function name) cannot start a new, forged log line or
    reorder what a reader sees. Longer text is cut and marked with ``…``.
    """
    text = value if isinstance(value, str) else repr(value)
    out = []
    for char in text[: limit + 1]:
        out.append(char if char.isprintable() and char != "\\" else char.encode("unicode_escape").decode("ascii"))
    escaped = "".join(out)
    return escaped[:limit] + "…" if len(text) > limit or len(escaped) > limit else escaped


class SecretsFilter(logging.Filter):
    """Masks protected values anywhere in a log record; never drops a record.

    The message is rendered with its arguments once, masked, and stored back
    with no arguments; an exception's trace is rendered into ``exc_text`` and
    masked (formatters reuse ``exc_text``); string ``extra`` fields are masked too.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, *secrets: str | None) -> None:
        """Protect more values (empty ones and values under 4 characters are ignored)."""
        with self._lock:
            known = set(self._secrets)
            new = [s for s in secrets if s and len(s) >= 4 and s not in known]
            # Longest first, so a secret that contains another is masked whole.
            self._secrets = tuple(sorted({*self._secrets, *new}, key=len, reverse=True))

    def mask(self, text: str) -> str:
        """``text`` with every protected value replaced by ``***``."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def _mask_value(self, value: Any) -> Any:
        """A structured value with secrets masked: text masked, anything else kept unless its text holds a secret."""
        if isinstance(value, str):
            return self.mask(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        text = str(value)
        masked = self.mask(text)
        return value if masked == text else masked

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; always keep it."""
        if not self._secrets:
            return True
        if isinstance(record.msg, dict) and not record.args:
            # A structlog event (signalwire-sdk's loggers): mask its values and keep it a dict for its formatter.
            for key, value in list(record.msg.items()):
                record.msg[key] = self._mask_value(value)
        else:
            try:
                message = record.getMessage()
            except Exception:  # a bad format string: keep the raw parts, masked
                message = f"{record.msg} {record.args}"
            record.msg, record.args = self.mask(message), None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            # Formatters print a set exc_text instead of formatting exc_info again.
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, key, self.mask(value))
        return True


_FILTER = SecretsFilter()


def protect_secrets(*secrets: str | None, loggers: tuple[logging.Logger, ...] = ()) -> SecretsFilter:
    """Mask ``secrets`` in everything the package's loggers emit from now on.

    Attaches the package's one :class:`SecretsFilter` (once) to :data:`logger`,
    :data:`swaig_logger` and every other logger under ``livekit_fallback``
    created so far, plus ``loggers``. Call it where the secret is known
    (building a resolver, starting the webhook server); it never configures
    handlers or levels.

    Returns:
        The shared filter (add more values to it with :meth:`SecretsFilter.add`).
    """
    _FILTER.add(*secrets)
    names = [n for n in logging.Logger.manager.loggerDict if n == LOGGER_NAME or n.startswith(f"{LOGGER_NAME}.")]
    targets: list[Any] = [logger, swaig_logger, *(logging.getLogger(n) for n in names), *loggers]
    for target in targets:
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
    return _FILTER
