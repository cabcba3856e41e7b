"""Every exception the package raises, under one base.

Catch :class:`LivekitFallbackError` to handle anything this package raises on
purpose; catch a branch to handle one kind of problem. Each class also keeps
the built-in base it always had (``ValueError``, ``KeyError``,
``RuntimeError``), so ``except ValueError`` around a call keeps working::

    LivekitFallbackError
    ├── InvalidInputError (ValueError)        bad input from a user, a file or a request
    │   ├── SettingsError                     an environment setting is unusable
    │   ├── InvalidContent                    a row or file is not a valid component
    │   ├── CriteriaError                     step_criteria_lk outside the safe grammar
    │   ├── SnapshotError                     a snapshot file is missing or malformed
    │   ├── CacheFileError                    a last-known-good file cannot be used
    │   ├── UnknownToolsError                 a config names unregistered tools
    │   ├── ToolArgumentError                 arguments do not match a tool's schema
    │   ├── ToolsImportError                  --tools names no importable registry
    │   ├── SwaigSchemaError                  a tool schema SWML cannot declare
    │   ├── InsecureServerError               a server without credentials, not local-only
    │   └── RequestError                      an HTTP request our server cannot use
    │       ├── BadBody                       empty, not JSON, or too large
    │       └── BadSwaigRequest               not a usable SWAIG function call
    ├── UnknownToolError (KeyError)           a tool name has no handler
    ├── DatabaseError                         the database could not be read as asked
    │   ├── BadResponse                       HTTP worked, the body is not the rows asked for
    │   └── DatabaseReadError                 connection, HTTP or shape failure (snapshot tools)
    ├── StoreUnavailable                      the machine-wide state file cannot be used now
    ├── ToolBusyError (RuntimeError)          every thread a sync tool may use is taken: the call is shed
    ├── MetricsServerError (RuntimeError)     a metrics server started where it would clash
    ├── ConfigUnavailableError (RuntimeError) a component is in no source at all
    └── ModelBuildError (RuntimeError)        a model choice cannot be built by any path
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config.model import ModelChoice
    from .config.sources.base import Failure

__all__ = [
    "BadBody",
    "BadResponse",
    "BadSwaigRequest",
    "CacheFileError",
    "ConfigUnavailableError",
    "CriteriaError",
    "DatabaseError",
    "DatabaseReadError",
    "InsecureServerError",
    "InvalidContent",
    "InvalidInputError",
    "LivekitFallbackError",
    "MetricsServerError",
    "ModelBuildError",
    "RequestError",
    "SettingsError",
    "SnapshotError",
    "StoreUnavailable",
    "SwaigSchemaError",
    "ToolArgumentError",
    "ToolBusyError",
    "ToolsImportError",
    "UnknownToolError",
    "UnknownToolsError",
]


class LivekitFallbackError(Exception):
    """Base of every exception this package raises on purpose."""


class InvalidInputError(LivekitFallbackError, ValueError):
    """Input from a user, a file, the database or a request is not usable; the message names the problem."""


class SettingsError(InvalidInputError):
    """An environment setting is present but unusable."""


class InvalidContent(InvalidInputError):
    """A row or file was read but its content is not a valid component.

    Attributes:
        errors: Every problem as ``(field, message)``; ``field`` is ``""`` for
            the component as a whole. The message text names the first few.
    """

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[tuple[str, str], ...] = tuple(errors) or (("", message),)


class CriteriaError(InvalidInputError):
    """A ``step_criteria_lk`` expression is not valid under the safe grammar."""


class SnapshotError(InvalidInputError):
    """A snapshot file is missing, unreadable or not a snapshot."""


class CacheFileError(InvalidInputError):
    """A last-known-good file exists but cannot be used."""


class UnknownToolsError(InvalidInputError):
    """A config names tools the registry lacks; lists every one at once.

    Attributes:
        missing: Tool name to the nodes that use it.
    """

    def __init__(self, missing: Mapping[str, list[str]]) -> None:
        self.missing = dict(missing)
        listed = ", ".join(f"{name} (nodes: {', '.join(nodes)})" for name, nodes in sorted(self.missing.items()))
        super().__init__(f"{len(self.missing)} tool(s) named by the config are not registered: {listed}")


class ToolArgumentError(InvalidInputError):
    """Arguments do not match a tool's JSON schema; the message names the problem."""


class ToolsImportError(InvalidInputError):
    """``--tools`` does not name an importable tool registry."""


class SwaigSchemaError(InvalidInputError):
    """A tool's schema uses a shape SWML cannot declare (the message names tool and path)."""


class InsecureServerError(InvalidInputError):
    """The server would start without credentials and was not told it is local-only."""


class RequestError(InvalidInputError):
    """An HTTP request to the package's server cannot be used."""


class BadBody(RequestError):
    """A request body that cannot be used.

    Attributes:
        status: 400 (empty or not JSON) or 413 (too large).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BadSwaigRequest(RequestError):
    """The request is not a usable SWAIG function call; the message names the problem."""


class UnknownToolError(LivekitFallbackError, KeyError):
    """A tool name has no registered handler."""

    def __str__(self) -> str:
        return f"unknown tool {self.args[0]!r}"


class DatabaseError(LivekitFallbackError):
    """The database could not be read as asked."""


class BadResponse(DatabaseError):
    """The HTTP exchange succeeded but the body is not the rows we asked for."""


class DatabaseReadError(DatabaseError):
    """The database could not be read: connection, HTTP or response-shape failure."""


class StoreUnavailable(LivekitFallbackError):
    """The machine-wide state file cannot be used now; the caller falls back to in-process state."""


class ToolBusyError(LivekitFallbackError, RuntimeError):
    """A sync tool call was shed: the tool threads (all of them, or this tool's share) are taken.

    Attributes:
        tool: The tool's name.
        running: Tool threads running now (hung ones included).
        running_for_tool: Threads of this tool running now.
    """

    def __init__(self, tool: str, running: int, running_for_tool: int) -> None:
        self.tool = tool
        self.running = running
        self.running_for_tool = running_for_tool
        super().__init__(
            f"tool {tool!r} not started: {running} tool threads are running, {running_for_tool} of them for this tool"
        )


class MetricsServerError(LivekitFallbackError, RuntimeError):
    """A metrics server was started inside one process of a multi-process worker."""


class ConfigUnavailableError(LivekitFallbackError, RuntimeError):
    """No source could supply some component (no database and no usable snapshot).

    Attributes:
        failures: Component key to the failures seen, in source order.
    """

    def __init__(self, vertical: str, platform: str, failures: dict[str, list[Failure]]) -> None:
        self.failures = failures
        details = sorted({f.detail for fs in failures.values() for f in fs})
        super().__init__(
            f"no usable configuration for {vertical}/{platform}: {len(failures)} component(s) are in no source "
            f"({', '.join(list(failures)[:4])}{', ...' if len(failures) > 4 else ''}); " + "; ".join(details[:3])
        )


class ModelBuildError(LivekitFallbackError, RuntimeError):
    """A model choice cannot be built by any path.

    Attributes:
        choice: The choice that failed.
        attempts: Path (``provider plugin``, ``LiveKit Inference``) to why it failed.
        backup: The snapshot's choice that failed too, when one was tried.
    """

    def __init__(self, choice: ModelChoice, attempts: Mapping[str, str], backup: ModelBuildError | None = None) -> None:
        self.choice = choice
        self.attempts = dict(attempts)
        self.backup = backup
        tried = "; ".join(f"{path}: {why}" for path, why in self.attempts.items())
        text = f"cannot build LiveKit {choice.kind.upper()} model '{choice.value}' ({tried})"
        if backup is not None:
            text += f"; the snapshot's {backup}"
        super().__init__(text)
