"""``livekit-fallback swml`` and ``livekit-fallback serve``: the SignalWire side of the CLI.

``swml`` prints the SWML document for one resolution. ``serve`` runs the
webhook server (see :mod:`swaig_fallback.server`). Both take ``--tools
module:attribute`` naming a :class:`~livekit_fallback.tools.ToolRegistry` to
import; without it, functions are declared from the config's tool names with
empty parameter schemas and ``serve`` answers every SWAIG call with 404.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from swaig_fallback.auth import InsecureServerError, credentials_from_env
from swaig_fallback.calls import CallInfo, CallStateHook, call_global_data
from swaig_fallback.server import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_VERTICAL,
    create_app,
    run_server,
)
from swaig_fallback.swml import CallerContext, build_swml

from ..config.resolver import Resolver
from ..errors import ToolsImportError
from ..log import protect_secrets
from ..tools import ToolRegistry
from .exit_codes import ExitCode
from .options import add_deadline, add_resolution_options, add_snapshot_dir, settings_from_args

__all__ = ["load_call_state", "load_registry", "register"]


def _import_target(target: str, option: str) -> object:
    """Import ``package.module:attribute`` and return the attribute."""
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise ToolsImportError(f"{option} must look like package.module:attribute, got {target!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        # Console scripts do not put the working directory on the path; `--tools
        # examples.x:y` run from a project checkout should still import.
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ToolsImportError(f"{option}: cannot import {module_name!r}: {exc}") from None
    value: object = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise ToolsImportError(f"{option}: {module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    return value


def load_registry(target: str) -> ToolRegistry:
    """Import ``package.module:attribute`` and return the registry it names.

    The attribute is a :class:`ToolRegistry`, or a factory called with no
    arguments that returns one (``examples.reverse_mortgage_tools:build_registry``).

    Raises:
        ToolsImportError: The string is malformed, the import fails, or the
            attribute is not a :class:`ToolRegistry`.
    """
    value = _import_target(target, "--tools")
    if callable(value) and not isinstance(value, ToolRegistry):
        try:
            value = value()
        except Exception as exc:
            raise ToolsImportError(f"--tools: calling {target!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(value, ToolRegistry):
        raise ToolsImportError(f"--tools: {target!r} is a {type(value).__name__}, not a ToolRegistry")
    return value


def load_call_state(target: str) -> CallStateHook:
    """Import the call-state hook ``package.module:attribute`` (``examples.reverse_mortgage_tools:call_state``).

    Raises:
        ToolsImportError: The string is malformed, the import fails, or the
            attribute is not callable.
    """
    value = _import_target(target, "--call-state")
    if not callable(value):
        raise ToolsImportError(f"--call-state: {target!r} is a {type(value).__name__}, not callable")
    return value


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``swml`` and ``serve`` subcommands."""
    swml = commands.add_parser("swml", help="print the SWML document for a vertical")
    add_resolution_options(swml)
    swml.add_argument(
        "--webhook-url", required=True, help="SWAIG web_hook_url, with basic auth: https://user:pass@host/swaig"
    )
    _add_tools_option(swml)
    swml.add_argument("--caller-name", help="caller's name, added to every step's text")
    swml.add_argument("--caller-phone", help="caller's phone number (or SIP address), added to every step's text")
    swml.add_argument("--direction", choices=("inbound", "outbound"), help="call direction, told to the model")
    _add_call_state_option(swml)
    swml.add_argument("--compact", action="store_true", help="print on one line")
    swml.set_defaults(handler=run_swml)

    serve = commands.add_parser("serve", help="serve SWML, SWAIG functions, /healthz and /metrics")
    serve.add_argument("--vertical", default=DEFAULT_VERTICAL, help=f"business vertical (default {DEFAULT_VERTICAL})")
    add_snapshot_dir(serve)
    add_deadline(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    serve.add_argument(
        "--public-url",
        help="base URL SignalWire reaches this server at, e.g. https://agent.example.com "
        "(required unless --host is a loopback address)",
    )
    serve.add_argument(
        "--allow-http", action="store_true", help="accept an http:// --public-url (credentials travel in clear text)"
    )
    _add_tools_option(serve)
    _add_call_state_option(serve)
    serve.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="largest request body in bytes")
    serve.add_argument(
        "--idle-timeout",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT,
        help=f"seconds before an idle or half-sent connection is closed (default {DEFAULT_IDLE_TIMEOUT:g})",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help=f"most open connections, lowered to fit the file limit (default {DEFAULT_MAX_CONNECTIONS})",
    )
    serve.add_argument(
        "--local-only",
        action="store_true",
        help="allow running without SWAIG_USERNAME/SWAIG_PASSWORD (binds loopback addresses only)",
    )
    serve.set_defaults(handler=run_serve)


def _add_tools_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tools",
        metavar="MODULE:ATTR",
        help="ToolRegistry (or a no-argument factory of one) to declare and serve, "
        "e.g. examples.reverse_mortgage_tools:build_registry",
    )


def _add_call_state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--call-state",
        metavar="MODULE:ATTR",
        help="call-state hook: called with each call's facts (from, to, direction, call id, headers, URL "
        "parameters), returns its initial global_data, e.g. examples.reverse_mortgage_tools:call_state",
    )


def _fail(message: str, code: ExitCode = ExitCode.USAGE) -> int:
    print(f"livekit-fallback: {message}", file=sys.stderr)
    return code


async def run_swml(args: argparse.Namespace) -> int:
    """Resolve once for SignalWire and print the SWML document."""
    try:
        registry = load_registry(args.tools) if args.tools else None
        hook = load_call_state(args.call_state) if args.call_state else None
    except ToolsImportError as exc:
        return _fail(str(exc))
    async with Resolver.from_settings(settings_from_args(args)) as resolver:
        config = await resolver.resolve(args.vertical, "signalwire")
    caller = CallerContext.clean(args.caller_name, args.caller_phone, args.direction)
    call = CallInfo(from_address=args.caller_phone, direction=args.direction, caller_name=caller.name)
    try:
        data = call_global_data(hook, call) if hook is not None else None
        doc = build_swml(config, webhook_url=args.webhook_url, registry=registry, caller=caller, global_data=data)
    except (ValueError, TypeError) as exc:  # UnknownToolsError, SwaigSchemaError, a bad webhook URL, a bad hook
        return _fail(str(exc))
    print(json.dumps(doc, separators=(",", ":")) if args.compact else json.dumps(doc, indent=2, ensure_ascii=False))
    return ExitCode.OK


async def run_serve(args: argparse.Namespace) -> int:
    """Run the webhook server until interrupted."""
    try:
        registry = load_registry(args.tools) if args.tools else None
        hook = load_call_state(args.call_state) if args.call_state else None
        credentials = credentials_from_env()
    except (ToolsImportError, InsecureServerError) as exc:
        return _fail(str(exc))
    settings = settings_from_args(args)
    protect_secrets(settings.supabase_key, credentials.password if credentials else None)
    async with Resolver.from_settings(settings) as resolver:
        try:
            app = create_app(
                resolver,
                registry,
                username=credentials.username if credentials else None,
                password=credentials.password if credentials else None,
                local_only=args.local_only,
                vertical=args.vertical,
                max_body=args.max_body,
                public_url=args.public_url,
                call_state=hook,
                allow_http=args.allow_http,
            )
            await run_server(
                app,
                host=args.host,
                port=args.port,
                idle_timeout=args.idle_timeout,
                max_connections=args.max_connections,
                ready=lambda port: print(
                    f"Serving {args.vertical} on http://{args.host}:{port} "
                    f"(SWML /swml, SWAIG /swaig, /healthz, /metrics)",
                    file=sys.stderr,
                    flush=True,
                ),
            )
        except (InsecureServerError, ValueError) as exc:
            return _fail(str(exc))
        except OSError as exc:  # the port is taken or the address is not ours
            return _fail(str(exc), ExitCode.FAILED)
    return ExitCode.OK
