"""The SDK adapter's deployment settings, held to the package server's rules.

signalwire-sdk, run as its documentation shows, listens on ``0.0.0.0:3000``
over HTTP with a generated password nobody sees, builds its credentialed
webhook URLs from ``Host`` and ``X-Forwarded-*`` headers, writes the password
into them unencoded, and signs per-call tool tokens with a random secret per
process (every tool call of a call in progress fails after a restart or on a
second replica). :func:`adapter_settings` settles each of these before the
agent starts:

- ``host``: loopback (``127.0.0.1``) unless told otherwise;
- ``public_url`` (else ``SWML_PROXY_URL_BASE``): the only base a
  credentialed URL is built on; required off loopback, https unless
  ``allow_http``;
- ``basic_auth`` (else ``SWML_BASIC_AUTH_USER`` / ``SWML_BASIC_AUTH_PASSWORD``):
  required off loopback; on loopback a password is generated and shown by
  ``agent.get_basic_auth_credentials()``;
- ``swaig_secret`` (else ``SIGNALWIRE_SWAIG_SECRET``): signs the tool tokens;
  by default derived from the credentials, so every restart and every replica
  sharing them verifies every other's tokens;
- ``token_lifetime`` (else ``SWAIG_TOKEN_LIFETIME``): seconds a token stays
  valid, longer than the longest call (default 12 hours).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from livekit_fallback.errors import InsecureServerError, SettingsError
from livekit_fallback.log import protect_secrets

from .auth import Credentials

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_TOKEN_LIFETIME",
    "AdapterSettings",
    "adapter_settings",
    "derived_swaig_secret",
    "protect_adapter_secrets",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TOKEN_LIFETIME = 12 * 3600
"""Seconds a per-call tool token stays valid: longer than any call."""

PUBLIC_URL_ENV = "SWML_PROXY_URL_BASE"
USER_ENV = "SWML_BASIC_AUTH_USER"
PASSWORD_ENV = "SWML_BASIC_AUTH_PASSWORD"
SECRET_ENV = "SIGNALWIRE_SWAIG_SECRET"
LIFETIME_ENV = "SWAIG_TOKEN_LIFETIME"
DEFAULT_USER = "signalwire"
_DERIVATION = b"livekit-fallback swaig tool tokens v1\x00"


@dataclass(frozen=True)
class AdapterSettings:
    """What the adapter runs with, checked.

    Attributes:
        host: The address the SDK's server binds.
        public_url: The trusted public base URL, or ``None`` (loopback only).
        credentials: The basic-auth credentials SignalWire must send.
        generated_password: The password was generated (loopback only).
        swaig_secret: The secret signing per-call tool tokens.
        secret_source: ``argument``, ``environment`` or ``derived``.
        token_lifetime: Seconds a tool token stays valid.
    """

    host: str
    public_url: str | None
    credentials: Credentials
    generated_password: bool
    swaig_secret: str = field(repr=False)
    secret_source: str
    token_lifetime: int


def derived_swaig_secret(credentials: Credentials) -> str:
    """A token secret every process sharing ``credentials`` derives alike (HMAC-SHA256 of the user name)."""
    message = _DERIVATION + credentials.username.encode()
    return hmac.new(credentials.password.encode(), message, hashlib.sha256).hexdigest()


def adapter_settings(
    *,
    host: str | None,
    public_url: str | None,
    allow_http: bool,
    basic_auth: tuple[str, str] | None,
    swaig_secret: str | None,
    token_lifetime: int | None,
    env: Mapping[str, str] | None = None,
) -> AdapterSettings:
    """Settle the adapter's settings from its arguments, else the environment, else safe defaults.

    Raises:
        InsecureServerError: A non-loopback host without a public URL or without a set password.
        ValueError: The public URL is unusable (see :func:`~swaig_fallback.urls.checked_public_url`).
        SettingsError: ``SWAIG_TOKEN_LIFETIME`` (or ``token_lifetime``) is not a whole number of seconds >= 60.
    """
    from .server import is_loopback
    from .urls import checked_public_url

    env = os.environ if env is None else env
    host = host or DEFAULT_HOST
    public_url = public_url or env.get(PUBLIC_URL_ENV) or None
    if public_url is not None:
        public_url = checked_public_url(public_url, allow_http=allow_http)
    loopback = is_loopback(host)
    if not loopback and public_url is None:
        raise InsecureServerError(
            f"binding {host!r} needs a public URL (public_url or {PUBLIC_URL_ENV}): the webhook URLs carry the "
            "credentials and must not be built from a request's Host or X-Forwarded-* headers"
        )
    user, password = basic_auth if basic_auth is not None else (env.get(USER_ENV, ""), env.get(PASSWORD_ENV, ""))
    generated = not password
    if generated:
        if not loopback:
            raise InsecureServerError(
                f"binding {host!r} needs a basic-auth password set by you ({PASSWORD_ENV} or basic_auth), "
                "not one generated and lost at every restart"
            )
        password = secrets.token_urlsafe(24)
    credentials = Credentials(user or DEFAULT_USER, password)
    if swaig_secret:
        secret, source = swaig_secret, "argument"
    elif env.get(SECRET_ENV):
        secret, source = env[SECRET_ENV], "environment"
    else:
        secret, source = derived_swaig_secret(credentials), "derived"
    return AdapterSettings(
        host, public_url, credentials, generated, secret, source, _lifetime(token_lifetime, env.get(LIFETIME_ENV))
    )


def _lifetime(value: int | None, text: str | None) -> int:
    if value is None and not text:
        return DEFAULT_TOKEN_LIFETIME
    try:
        seconds = int(value if value is not None else str(text).strip())
    except ValueError:
        seconds = -1
    if seconds < 60:
        raise SettingsError(f"{LIFETIME_ENV} must be a whole number of seconds, at least 60 (got {text or value!r})")
    return seconds


def protect_adapter_secrets(settings: AdapterSettings) -> None:
    """Mask the password (every encoded form) and the token secret in the package's and the SDK's logs."""
    sdk_loggers = tuple(
        logging.getLogger(name)
        for name in list(logging.Logger.manager.loggerDict)
        if name == "signalwire" or name.startswith("signalwire.")
    )
    protect_secrets(*settings.credentials.secret_forms(), settings.swaig_secret, loggers=sdk_loggers)
