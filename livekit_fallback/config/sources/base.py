"""The seam every config source implements, and the per-component outcomes it returns."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..model import ModelChoice, Node, Platform, Reason, Source, Theme

__all__ = [
    "ConfigSource",
    "Failure",
    "FetchRequest",
    "Found",
    "Outcome",
    "format_exception",
    "redact",
    "redact_exception",
]

ComponentValue = Theme | Node | ModelChoice


@dataclass(frozen=True)
class FetchRequest:
    """What the resolver asks a source for.

    Attributes:
        vertical: The business vertical.
        platform: ``livekit`` or ``signalwire``.
        keys: The component keys still unresolved (``theme``, ``nodes.<name>``,
            ``models.<kind>``); a source returns an outcome for each.
        node_names: Every node name of the vertical, to check ``valid_contexts``.
        deadline: Event-loop time (``loop.time()``) by which the source must return.
        newer_than: A cached copy read before this moment is stale (the snapshot
            was taken later), so a cache source skips it.
    """

    vertical: str
    platform: Platform
    keys: tuple[str, ...]
    node_names: tuple[str, ...]
    deadline: float
    newer_than: datetime | None = None


@dataclass(frozen=True)
class Found:
    """A component value a source produced, already validated.

    Attributes:
        value: The theme, node or model choice.
        taken_at: When this copy was read from the database (``None`` if unknown).
        location: Table(s) or file it came from, for provenance and banners.
    """

    value: ComponentValue
    taken_at: datetime | None
    location: str


@dataclass(frozen=True)
class Failure:
    """Why a source could not produce a component.

    Attributes:
        reason: The reason class.
        detail: The exact error, secrets redacted.
        location: Table(s) or file that was read.
        exc: The exception, when there was one (logged with its trace).
    """

    reason: Reason
    detail: str
    location: str
    exc: BaseException | None = field(default=None, compare=False)


Outcome = Found | Failure


@runtime_checkable
class ConfigSource(Protocol):
    """A place config components can be read from (database, cache, snapshot).

    A source never raises for a component it cannot supply; it returns a
    :class:`Failure` for it and must return by ``request.deadline``.
    """

    source: Source

    async def fetch(self, request: FetchRequest) -> dict[str, Outcome]:
        """Return an outcome for every key in ``request.keys``."""
        ...


def format_exception(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """Render an exception as ``package.Type: message`` with secrets removed.

    Client libraries often raise with an empty ``str()`` (``ReadTimeout``), so
    the type is always included; private submodules are dropped from the name.
    """
    module = type(exc).__module__
    public = ".".join(part for part in module.split(".") if not part.startswith("_")).split(".")[0]
    name = type(exc).__qualname__ if module == "builtins" else f"{public}.{type(exc).__qualname__}"
    message = str(exc) or repr(exc)
    return redact(f"{name}: {message}", secrets)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every non-empty secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


_REDACTED_ATTRIBUTES = ("message", "details", "hint", "_raw_error")


def redact_exception(exc: BaseException, secrets: Sequence[str]) -> BaseException:
    """Remove secrets from an exception and its whole chain in place, before it is logged.

    A server error page can echo request headers, so an ``APIError`` may carry
    the key in its message or details; the trace logged with a banner must not.
    Every ``__cause__`` and ``__context__`` (and exception-group member) is
    walked. A linked exception whose text cannot be rewritten (pydantic's
    ``ValidationError`` renders the raw input) is replaced in the chain by a
    ``RuntimeError`` carrying its redacted text.
    """
    secrets = [s for s in secrets if s]
    if not secrets:
        return exc
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        with contextlib.suppress(AttributeError, TypeError):
            current.args = tuple(_scrub(arg, secrets) for arg in current.args)
        for name in _REDACTED_ATTRIBUTES:
            if hasattr(current, name):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(current, name, _scrub(getattr(current, name), secrets))
        for link in ("__cause__", "__context__"):
            linked = getattr(current, link)
            if linked is None:
                continue
            if _leaks(linked, secrets):
                substitute = RuntimeError(redact(f"{type(linked).__qualname__}: {_text(linked)}", secrets))
                substitute.__cause__, substitute.__context__ = linked.__cause__, linked.__context__
                setattr(current, link, substitute)
                linked = substitute
            pending.append(linked)
        pending.extend(getattr(current, "exceptions", ()) or ())
    return exc


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return repr(exc.args)


def _leaks(exc: BaseException, secrets: Sequence[str]) -> bool:
    """True when the exception's text still shows a secret after its arguments are scrubbed."""
    with contextlib.suppress(AttributeError, TypeError):
        exc.args = tuple(_scrub(arg, secrets) for arg in exc.args)
    for name in _REDACTED_ATTRIBUTES:
        if hasattr(exc, name):
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, name, _scrub(getattr(exc, name), secrets))
    text = _text(exc)
    return any(secret in text for secret in secrets)


def _scrub(value: object, secrets: Sequence[str]) -> object:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v, secrets) for v in value)
    return value
