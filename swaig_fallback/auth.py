"""HTTP basic auth for the webhook server: credentials, constant-time check, middleware.

SignalWire sends basic auth from the userinfo of the URLs in the SWML
(``https://user:pass@host/swaig``). Both the user name and the password are
compared with :func:`hmac.compare_digest`, always both, so timing reveals
neither. The password is never logged or echoed.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from livekit_fallback.errors import InsecureServerError
from livekit_fallback.log import log_safe
from livekit_fallback.log import swaig_logger as logger

__all__ = ["Credentials", "InsecureServerError", "auth_middleware", "credentials_from_env"]


USERNAME_ENV = "SWAIG_USERNAME"
PASSWORD_ENV = "SWAIG_PASSWORD"


@dataclass(frozen=True)
class Credentials:
    """The basic-auth user name and password the server requires.

    Attributes:
        username: The user name.
        password: The password; excluded from ``repr``.
    """

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username or not self.password:
            raise InsecureServerError("basic auth needs both a user name and a password")
        if ":" in self.username:
            raise InsecureServerError("the basic-auth user name must not contain ':'")

    def secret_forms(self) -> tuple[str, ...]:
        """The password as it may appear in text: plain, percent-encoded, and in the base64 ``Authorization`` value.

        The secrets filter masks each form, since a URL carries the encoded
        password and an HTTP header the base64 of ``user:password``.
        """
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return tuple(dict.fromkeys((self.password, quote(self.password, safe=""), quote(self.password), token)))

    def matches(self, header: str | None) -> bool:
        """True when an ``Authorization`` header carries these credentials."""
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or not token.strip():
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):  # ValueError: non-ASCII header text
            return False
        user, sep, password = decoded.partition(":")
        user_ok = hmac.compare_digest(user.encode(), self.username.encode())
        password_ok = hmac.compare_digest(password.encode(), self.password.encode())
        return bool(sep) and user_ok & password_ok


def credentials_from_env(env: Mapping[str, str] | None = None) -> Credentials | None:
    """Read ``SWAIG_USERNAME`` and ``SWAIG_PASSWORD``; ``None`` when both are unset.

    Raises:
        InsecureServerError: Only one of the two is set.
    """
    env = os.environ if env is None else env
    username = env.get(USERNAME_ENV, "")
    password = env.get(PASSWORD_ENV, "")
    if not username and not password:
        return None
    if not username or not password:
        missing = USERNAME_ENV if not username else PASSWORD_ENV
        raise InsecureServerError(f"{missing} is not set (both {USERNAME_ENV} and {PASSWORD_ENV} are needed)")
    return Credentials(username, password)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def auth_middleware(
    credentials: Credentials | None, public_paths: Collection[str]
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware answering 401 unless the request carries ``credentials``.

    Args:
        credentials: Required credentials, or ``None`` to allow every request
            (only for a local-only server).
        public_paths: Paths served without auth (health and metrics).
    """

    @web.middleware
    async def check_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if credentials is None or request.path in public_paths:
            return await handler(request)
        if credentials.matches(request.headers.get("Authorization")):
            return await handler(request)
        logger.warning(
            "Rejected %s %s from %s: missing or wrong basic auth",
            log_safe(request.method, 16),
            log_safe(request.path),
            log_safe(request.remote, 64),
        )
        return web.json_response(
            {"error": "authentication required"},
            status=401,
            headers={"WWW-Authenticate": 'Basic realm="swaig", charset="UTF-8"'},
        )

    return check_auth
