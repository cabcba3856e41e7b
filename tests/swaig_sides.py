"""Both SignalWire servers behind one interface, driven as SignalWire drives them.

:class:`PackageSide` is the package's aiohttp server on a real socket;
:class:`AdapterSide` is the SDK adapter behind the SDK's own app (in process).
Each fetches the SWML as the platform does, then sends every function call to
the ``web_hook_url`` the SWML gave that function, with the basic-auth
credentials taken from the URL's (percent-encoded) userinfo, exactly as an
HTTP client following the URL would.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi.testclient import TestClient

from swaig_fallback import ResolvedAgent
from tests.swaig_helpers import ai_verb
from tests.test_swaig_server import Server, documented_payload


def function_urls(doc: dict[str, Any]) -> dict[str, str]:
    """Each SWAIG function's webhook URL (its own, else the defaults')."""
    swaig = ai_verb(doc)["SWAIG"]
    default = swaig["defaults"]["web_hook_url"]
    return {f["function"]: f.get("web_hook_url", default) for f in swaig["functions"]}


def credentials_of(url: str) -> tuple[str, str]:
    """The basic-auth user and password a client takes from a URL's userinfo."""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def swaig_request(
    function: str, args: Any, global_data: dict[str, Any], call_id: str, call_log: list[Any] | None = None
) -> dict[str, Any]:
    """A function call as SignalWire posts it, with the AI's context changes in the call log when given."""
    body = documented_payload(function, args, global_data=global_data, call_id=call_id)
    if call_log is not None:
        body["call_log"] = call_log
    return body


def entered(context: str) -> dict[str, Any]:
    """A call-log entry saying the AI entered ``context`` (SignalWire's step tracing)."""
    return {"role": "system-log", "action": "change_context", "context": context, "step": context}


class PackageSide:
    """The package's server, reached over its socket."""

    name = "package"

    def __init__(self, server: Server, auth: tuple[str, str]) -> None:
        self.server = server
        self.auth = auth
        self.urls: dict[str, str] = {}

    async def swml(self, call: dict[str, Any]) -> dict[str, Any]:
        status, doc, _ = await self.server.post("/swml", {"call": call}, auth=self.auth)
        assert status == 200, doc
        self.urls = function_urls(doc)
        return doc  # type: ignore[no-any-return]

    async def call(self, function: str, body: dict[str, Any]) -> dict[str, Any]:
        url = urlsplit(self.urls[function])
        status, reply, _ = await self.server.post(url.path, body, auth=credentials_of(self.urls[function]))
        assert status == 200, reply
        return reply  # type: ignore[no-any-return]


class AdapterSide:
    """The SDK adapter, reached through the SDK's app."""

    name = "adapter"

    def __init__(self, agent: ResolvedAgent) -> None:
        self.agent = agent
        self.client = TestClient(agent.get_app())
        self.urls: dict[str, str] = {}

    def swml_sync(self, call: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        creds = self.agent.get_basic_auth_credentials()
        response = self.client.post("/", json={"call": call}, auth=(creds[0], creds[1]), headers=headers or {})
        assert response.status_code == 200, response.text
        doc: dict[str, Any] = response.json()
        self.urls = function_urls(doc)
        return doc

    def call_sync(self, function: str, body: dict[str, Any], urls: dict[str, str] | None = None) -> dict[str, Any]:
        url = (urls or self.urls)[function]
        parts = urlsplit(url)
        response = self.client.post(f"{parts.path}?{parts.query}", json=body, auth=credentials_of(url))
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply

    async def swml(self, call: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.swml_sync, call)

    async def call(self, function: str, body: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self.call_sync, function, body)
