"""The webhook URLs both servers put in the SWML: a trusted base, and basic-auth userinfo percent-encoded.

SignalWire authenticates to a SWAIG webhook with the userinfo of the URL the
SWML gives it (``https://user:pass@host/swaig``). Written unencoded, a
password holding ``@ / % # ?`` makes the URL parse to another host or path, so
every character outside the unreserved set is percent-encoded here. The base
of a credentialed URL is never taken from a request header unless a server
runs on loopback (see the servers' own rules); :func:`checked_public_url`
holds the rule for a configured public URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from .auth import Credentials

__all__ = ["checked_public_url", "credentialed_url"]


def checked_public_url(public_url: str, *, allow_http: bool) -> str:
    """``public_url`` if it is a usable public base URL.

    Raises:
        ValueError: Not an http(s) URL with a host, or it has a query,
            fragment or userinfo, or it is ``http://`` without ``allow_http``.
    """
    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("public_url must be an http(s) URL with a host and no query")
    if "@" in parts.netloc:
        raise ValueError("public_url must not carry credentials (they are added from the basic-auth settings)")
    if parts.scheme == "http" and not allow_http:
        raise ValueError("public_url must be https (the webhook URL carries the credentials); or allow http")
    return public_url


def credentialed_url(
    base: str, credentials: Credentials | None, path: str, query: Mapping[str, str] | None = None
) -> str:
    """``base`` plus ``path`` (and ``query``), with ``credentials`` as percent-encoded userinfo.

    Args:
        base: ``scheme://host[:port][/prefix]`` (any userinfo in it is dropped).
        credentials: The basic-auth credentials, or ``None`` for none.
        path: The path under ``base``'s prefix, starting with ``/``.
        query: Query parameters; empty values are left out.
    """
    parts = urlsplit(base)
    host = parts.netloc.rpartition("@")[2]
    if credentials is not None:
        host = f"{quote(credentials.username, safe='')}:{quote(credentials.password, safe='')}@{host}"
    params = urlencode({k: v for k, v in (query or {}).items() if v})
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/") + path, params, ""))
