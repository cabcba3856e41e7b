"""The SignalWire Agents SDK adapter: an ``AgentBase`` whose prompt, graph, models and tools are resolved.

For SignalWire developers who build on signalwire-sdk (``pip install
"livekit-fallback[signalwire]"``): :class:`ResolvedAgent` is an ``AgentBase``
that re-resolves the config on every request through the SDK's per-request
hook (``add_per_call_config``), with the same :class:`~livekit_fallback.config.resolver.Resolver`
as everything else, so a database outage falls back per component with the
same banners, metrics and provenance. The config is mapped by
:func:`~swaig_fallback.swml.map_config`, the mapping :func:`~swaig_fallback.swml.build_swml`
uses, and fed to the SDK's contexts and steps, ``set_params`` and
``add_language``; tools come from the :class:`~livekit_fallback.tools.ToolRegistry`
and answer through :func:`~swaig_fallback.dispatch.handle_swaig`, so replies
(global data, routing within ``valid_contexts``, the ``end_call`` hangup with
``post_process``, a ``response`` for every failure) are the package server's
own, wrapped in a ``FunctionResult``.

The SDK's hook is synchronous and runs in worker threads, while the resolver
and the tools are async and keep connection pools bound to one event loop, so
the agent owns one event loop on a daemon thread (:class:`~swaig_fallback.loop.LoopThread`)
where the resolver is built and every resolution and tool call runs.

When no config can be resolved at all, or the call-state hook fails, the agent
fails closed: the SWML answers, says :data:`UNAVAILABLE_MESSAGE` and hangs up
(the SDK cannot refuse a request from its hook).

Deployment is held to the package server's rules (:mod:`swaig_fallback.sdk_guard`):
loopback unless told otherwise, credentialed URLs only on a trusted public
URL with percent-encoded userinfo, a password the operator sets (or, on
loopback, can read), tool tokens that survive restarts and replicas, and the
password masked in every log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from signalwire import AgentBase, FunctionResult

from livekit_fallback.config.model import AgentConfig
from livekit_fallback.config.resolver import ConfigUnavailableError, Resolver, default_resolver
from livekit_fallback.errors import InsecureServerError
from livekit_fallback.log import log_safe
from livekit_fallback.log import swaig_logger as logger
from livekit_fallback.metrics import SWML_DOCUMENTS
from livekit_fallback.tools import ToolRegistry

from .calls import CallInfo, CallStateHook, initial_global_data
from .dispatch import handle_swaig
from .loop import LoopThread
from .parameters import swaig_parameters
from .sdk_guard import AdapterSettings, adapter_settings, protect_adapter_secrets
from .server import DEFAULT_MAX_BODY, DEFAULT_VERTICAL, is_loopback
from .state import ServerState
from .swaig import FALLBACK_RESPONSE
from .swml import (
    DEFAULT_LANGUAGE,
    HANGUP_FUNCTION,
    CallerContext,
    Language,
    MappedConfig,
    map_config,
    swaig_functions,
)
from .urls import credentialed_url

__all__ = ["UNAVAILABLE_MESSAGE", "ResolvedAgent", "apply_mapped", "to_function_result"]

UNAVAILABLE_MESSAGE = "Sorry, we cannot take your call right now. Please call again later. Goodbye."
"""What a caller hears when no configuration can be resolved (then the call hangs up)."""

_MARGIN = 5.0
"""Seconds beyond the resolver's own deadline (or the tool timeout) before a wait is given up."""


class ResolvedAgent(AgentBase):
    """An SDK ``AgentBase`` whose prompt, contexts, steps, models and tools come from the resolved config.

    Use it where you would use ``AgentBase``: serve it with ``agent.run()``
    (the SDK's server or serverless modes), mount it in an ``AgentServer``,
    check it with ``swaig-test``. Everything the config defines is set per
    request, so do not set prompts, contexts, params or languages yourself;
    hooks, skills and verbs of your own are kept.

    Args:
        vertical: The business vertical served.
        registry: The tools (the same registry the package's own server and
            LiveKit use), or ``None`` for no tools but ``end_call``.
        resolver: A zero-argument factory for the resolver, called once on the
            agent's event loop (default: the environment's, as
            :func:`~livekit_fallback.config.resolver.default_resolver`).
        call_state: The call-state hook (sync or async): each call's initial
            ``global_data`` from what SignalWire posts for the call.
        language: The ``languages`` entry's name and code (the voice is the config's TTS).
        tool_timeout: Seconds a tool may run before a graceful reply is sent instead.
        name: The agent's name (the SDK's).
        route: The agent's route (the SDK's).
        host: Address to bind (default ``127.0.0.1``).
        public_url: The base URL SignalWire reaches the agent at (else
            ``SWML_PROXY_URL_BASE``); required unless ``host`` is loopback.
        allow_http: Accept an ``http://`` public URL.
        basic_auth: ``(user, password)`` (else ``SWML_BASIC_AUTH_USER`` /
            ``SWML_BASIC_AUTH_PASSWORD``); required unless ``host`` is loopback.
        swaig_secret: Signs per-call tool tokens (else ``SIGNALWIRE_SWAIG_SECRET``,
            else derived from the credentials).
        token_lifetime: Seconds a tool token stays valid (else
            ``SWAIG_TOKEN_LIFETIME``, else 12 hours).
        **agent_options: Further ``AgentBase`` arguments (port, ...).

    Raises:
        ValueError: A registry tool is named like the built-in hangup function,
            or the public URL is unusable.
        SwaigSchemaError: A registry tool's schema cannot be declared in SWML.
        InsecureServerError: A non-loopback host without a public URL or a set password.
        SettingsError: The token lifetime is not a whole number of seconds >= 60.
    """

    def __init__(
        self,
        vertical: str = DEFAULT_VERTICAL,
        *,
        registry: ToolRegistry | None = None,
        resolver: Callable[[], Resolver] = default_resolver,
        call_state: CallStateHook | None = None,
        language: Language = DEFAULT_LANGUAGE,
        tool_timeout: float = 10.0,
        name: str = "livekit-fallback",
        route: str = "/",
        host: str | None = None,
        public_url: str | None = None,
        allow_http: bool = False,
        basic_auth: tuple[str, str] | None = None,
        swaig_secret: str | None = None,
        token_lifetime: int | None = None,
        **agent_options: Any,
    ) -> None:
        if registry is not None and HANGUP_FUNCTION in registry:
            raise ValueError(f"tool name {HANGUP_FUNCTION!r} is the built-in hangup function")
        for spec in registry or ():
            swaig_parameters(spec.parameters, tool=spec.name)  # fail at start, not on every call
        settings = adapter_settings(
            host=host,
            public_url=public_url,
            allow_http=allow_http,
            basic_auth=basic_auth,
            swaig_secret=swaig_secret,
            token_lifetime=token_lifetime,
        )
        protect_adapter_secrets(settings)
        self._lf_settings: AdapterSettings = settings
        agent_options.setdefault("use_pom", False)
        super().__init__(
            name=name,
            route=route,
            host=settings.host,
            basic_auth=(settings.credentials.username, settings.credentials.password),
            swaig_secret=settings.swaig_secret,
            token_expiry_secs=settings.token_lifetime,
            **agent_options,
        )
        # The SDK's own URL building never follows request headers: pin its base to the trusted one.
        self._proxy_url_base = self._lf_base_url()
        self._proxy_url_base_from_env = True
        self._lf_vertical = vertical
        self._lf_registry = registry
        self._lf_call_state = call_state
        self._lf_language = language
        self._lf_tool_timeout = tool_timeout
        self._lf_loop = LoopThread(f"{name}-resolver")
        self._lf_state: ServerState = self._lf_loop.run(self._make_state(resolver), timeout=30.0)
        # Fail closed: a request whose config cannot be resolved says sorry and hangs up.
        self.set_prompt_text(UNAVAILABLE_MESSAGE)
        self.add_post_answer_verb("play", {"url": f"say:{UNAVAILABLE_MESSAGE}"})
        self.add_post_answer_verb("hangup", {})
        self.add_post_ai_verb("hangup", {})
        self.add_per_call_config(self._lf_configure)

    async def _make_state(self, resolver: Callable[[], Resolver]) -> ServerState:
        return ServerState(
            resolver=resolver(),
            registry=self._lf_registry,
            credentials=None,
            vertical=self._lf_vertical,
            max_body=DEFAULT_MAX_BODY,
            public_url=None,
            tool_timeout=self._lf_tool_timeout,
            language=self._lf_language,
            call_state=self._lf_call_state,
        )

    def _lf_base_url(self) -> str:
        return self._lf_settings.public_url or f"http://{self.host}:{self.port}"

    def _build_webhook_url(self, endpoint: str, query_params: dict[str, str] | None = None) -> str:
        """The SDK's webhook URLs (SWAIG, post-prompt): the trusted base, percent-encoded credentials."""
        path = f"{self.route}/{endpoint.strip('/')}/"
        return credentialed_url(self._lf_base_url(), self._lf_settings.credentials, path, query_params)

    def serve(self, host: str | None = None, port: int | None = None, *args: Any, **options: Any) -> None:
        """The SDK's ``serve``, refusing a non-loopback host without a public URL."""
        if host is not None and not is_loopback(host) and self._lf_settings.public_url is None:
            raise InsecureServerError(f"binding {host!r} needs a public URL (public_url or SWML_PROXY_URL_BASE)")
        if host is not None or port is not None:
            self.host, self.port = host or self.host, port or self.port
            self._proxy_url_base = self._lf_base_url()
        super().serve(host, port, *args, **options)

    @property
    def resolver(self) -> Resolver:
        """The resolver every request of this agent resolves through."""
        return self._lf_state.resolver

    def resolve(self) -> AgentConfig:
        """Resolve the config now (on the agent's loop), as a request would.

        Raises:
            ConfigUnavailableError: No source could give a complete config.
        """
        resolver = self._lf_state.resolver
        config: AgentConfig = self._lf_loop.run(
            resolver.resolve(self._lf_vertical, "signalwire"), timeout=resolver.deadline + _MARGIN
        )
        return config

    def close(self) -> None:
        """Close the resolver and stop the agent's event loop (idempotent)."""
        if self._lf_loop.running:
            try:
                self._lf_loop.run(self._lf_state.resolver.aclose(), timeout=_MARGIN)
            finally:
                self._lf_loop.stop()

    def _lf_configure(self, query: Mapping[str, Any], body: Any, headers: Mapping[str, Any], agent: AgentBase) -> None:
        """The per-request hook: resolve, map, and configure the request's copy of the agent."""
        del headers
        body = body if isinstance(body, Mapping) else {}
        if "function" in body:
            # A function call: the SWML is already out; every tool stays callable, as on the package's server.
            self._define_tools(agent, None)
            return
        try:
            config = self.resolve()
        except (ConfigUnavailableError, TimeoutError) as exc:
            SWML_DOCUMENTS.labels("unavailable").inc()
            logger.error(
                "No SignalWire config available for %s: %s; the call is told to call again", self._lf_vertical, exc
            )
            return
        call = CallInfo.from_request(body, {str(k): str(v) for k, v in query.items()})
        try:
            global_data = self._lf_loop.run(
                initial_global_data(self._lf_call_state, call), timeout=self._lf_tool_timeout + _MARGIN
            )
        except Exception:
            SWML_DOCUMENTS.labels("unavailable").inc()
            logger.error(
                "The call-state hook failed for call %s; the call is told to call again",
                log_safe(call.call_id, 64),
                exc_info=True,
            )
            return
        mapped = map_config(
            config,
            registry=self._lf_registry,
            caller=CallerContext.of_call(call),
            language=self._lf_language,
            missing_tools="omit",
            global_data=global_data,
        )
        if self._lf_registry is not None:
            missing = sorted({n for node in config.nodes.values() for n in node.tools if n not in self._lf_registry})
            if missing:
                logger.error(
                    "Config for %s names tools this agent does not implement: %s; they are left out of the SWML",
                    self._lf_vertical,
                    missing,
                )
        self._define_tools(agent, mapped)
        apply_mapped(agent, mapped)
        agent.clear_post_answer_verbs()
        SWML_DOCUMENTS.labels("degraded" if config.is_degraded else "ok").inc()

    def _define_tools(self, agent: AgentBase, mapped: MappedConfig | None) -> None:
        """Register the SWML's functions (or, with ``None``, every registry tool and the hangup) as SDK tools."""
        if mapped is not None:
            functions = mapped.functions
        else:
            functions = swaig_functions([spec.name for spec in self._lf_registry or ()], self._lf_registry)
        for function in functions:
            agent.define_tool(
                name=function["function"],
                description=function["description"],
                parameters=function["parameters"],
                handler=self._handler(function["function"]),
            )

    def _handler(self, name: str) -> Callable[[Any, Any], FunctionResult]:
        def handle(args: Any, raw_data: Any) -> FunctionResult:
            return self.call_tool(name, args, raw_data)

        return handle

    def call_tool(self, name: str, args: Any, raw_data: Any = None) -> FunctionResult:
        """Run one SWAIG function call as the package's server does, as a ``FunctionResult``.

        Args:
            name: The function name.
            args: The model's arguments.
            raw_data: The SWAIG request (``global_data``, ``call_id``, ...).
        """
        raw = raw_data if isinstance(raw_data, Mapping) else {}
        # The request's own ``argument`` when there is one, so a malformed call gets the package server's reply.
        payload: dict[str, Any] = {"function": name, "argument": {"parsed": [args if args is not None else {}]}}
        for key in ("argument", "global_data", "call_id", "call_log"):
            if key in raw:
                payload[key] = raw[key]
        limit = self._lf_tool_timeout + self._lf_state.resolver.deadline + _MARGIN
        try:
            _status, reply = self._lf_loop.run(handle_swaig(self._lf_state, payload), timeout=limit)
        except (TimeoutError, asyncio.TimeoutError):
            logger.error("SWAIG function %s got no answer within %.1f s", name, limit)
            reply = {"response": FALLBACK_RESPONSE}
        return to_function_result(reply)


def apply_mapped(agent: AgentBase, mapped: MappedConfig) -> None:
    """Set a mapped config on an SDK agent: prompt, contexts and steps, params, languages, global data."""
    agent.set_prompt_text(mapped.prompt)
    builder = agent.define_contexts()
    builder.reset()
    for context_name, context in mapped.contexts.items():
        ctx = builder.add_context(context_name)
        for spec in context["steps"]:
            step = ctx.add_step(spec["name"])
            step.set_text(spec["text"])
            if "step_criteria" in spec:
                step.set_step_criteria(spec["step_criteria"])
            step.set_functions(list(spec["functions"]))
            if "valid_contexts" in spec:
                step.set_valid_contexts(list(spec["valid_contexts"]))
            if spec.get("end"):
                step.set_end(True)
    agent.set_params(dict(mapped.params))
    for language in mapped.languages:
        agent.add_language(language["name"], language["code"], language["voice"])
    agent.set_global_data(dict(mapped.global_data))


def to_function_result(reply: Mapping[str, Any]) -> FunctionResult:
    """The package server's SWAIG reply as the SDK's ``FunctionResult`` (same ``to_dict()``)."""
    result = FunctionResult(reply["response"], post_process=bool(reply.get("post_process", False)))
    actions = reply.get("action")
    if actions:
        result.add_actions(list(actions))
    return result
