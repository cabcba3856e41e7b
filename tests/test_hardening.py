"""Hardening: secrets stay out of logs and other hosts, odd inputs never crash a resolution."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from livekit_fallback import Reason, Resolver, Source, SupabaseSource, resolve_agent_config

from .conftest import DB_MODELS, SeededDatabase
from .support.postgrest import Status
from .support.seed import delete_node


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    location = ""

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(dict(self.headers))
        if self.location:
            self.send_response(302)
            self.send_header("Location", self.location + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            body = b"[]"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def test_redirects_are_not_followed_so_the_key_stays_home() -> None:
    """A database answering 302 to another host gets an http_error fallback; the other host sees nothing."""
    target_handler = type("Target", (_Recorder,), {"seen": [], "location": ""})
    target = _serve(target_handler)
    redirect_handler = type(
        "Redirect", (_Recorder,), {"seen": [], "location": f"http://127.0.0.1:{target.server_address[1]}"}
    )
    redirect = _serve(redirect_handler)
    try:
        url = f"http://127.0.0.1:{redirect.server_address[1]}"
        async with Resolver(database=SupabaseSource(url, "sb_secret_do_not_forward"), deadline=0.5) as resolver:
            config = await resolver.resolve("reverse_mortgage")
    finally:
        for server in (redirect, target):
            server.shutdown()
            server.server_close()
    assert len(redirect_handler.seen) == 5 and target_handler.seen == []
    assert {(p.source, p.reason) for p in config.provenance.values()} == {(Source.SNAPSHOT, Reason.HTTP_ERROR)}


async def test_an_error_page_echoing_the_key_is_redacted_in_logs_and_provenance(
    seeded: SeededDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """A 502 page that echoes request headers never puts the key in a banner, trace or provenance."""
    page = f"<html>502 Bad Gateway<pre>apikey: {seeded.key}</pre></html>".encode()
    seeded.standin.set_fault("*", Status(502, page, "text/html"))
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    async with Resolver(database=SupabaseSource(seeded.url, seeded.key), deadline=0.5) as resolver:
        config = await resolver.resolve("reverse_mortgage")
    assert config.provenance["theme"].reason is Reason.HTTP_ERROR
    assert "***" in caplog.text and "Traceback" in caplog.text
    assert seeded.key not in caplog.text
    assert seeded.key not in json.dumps([p.model_dump(mode="json") for p in config.provenance.values()])


async def test_a_new_problem_after_an_outage_gets_its_own_banner(
    seeded: SeededDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    """A component going from 'database down' straight to 'bad row' is bannered again, not folded into the outage."""
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    async with Resolver(database=SupabaseSource(seeded.url, seeded.key), ttl=0, deadline=0.5) as resolver:
        seeded.standin.set_fault("*", Status.json(500, {"message": "down"}))
        await resolver.resolve("reverse_mortgage")
        seeded.standin.clear_faults()
        delete_node(seeded.dsn, "reverse_mortgage", "verify")
        await resolver.resolve("reverse_mortgage")
    verify = [r for r in caplog.records if getattr(r, "component", None) == "nodes.verify"]
    assert [(r.event, r.reason_class) for r in verify] == [
        ("config_fallback", "http_error"),
        ("config_fallback", "missing_row"),
    ]


async def test_ttl_zero_reads_the_database_every_time(seeded: SeededDatabase) -> None:
    """With ttl=0 nothing is reused: an edit is visible to the very next call."""
    from .support.seed import set_active_model

    async with Resolver(database=SupabaseSource(seeded.url, seeded.key), ttl=0) as resolver:
        first = await resolver.resolve("reverse_mortgage")
        set_active_model(seeded.dsn, "livekit_available_llm_models", "openai/gpt-4o")
        second = await resolver.resolve("reverse_mortgage")
    assert (first.models.llm.value, second.models.llm.value) == (DB_MODELS["livekit"]["llm"], "openai/gpt-4o")


async def test_invalid_settings_still_answer_from_the_snapshot(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, clean_env: None
) -> None:
    """A typo in an environment variable logs an ERROR and calls are served from the snapshot."""
    monkeypatch.setenv("LIVEKIT_FALLBACK_DEADLINE", "1s")
    caplog.set_level(logging.ERROR, logger="livekit_fallback")
    config = await resolve_agent_config("reverse_mortgage")
    assert {p.source for p in config.provenance.values()} == {Source.SNAPSHOT}
    assert "INVALID SETTINGS: LIVEKIT_FALLBACK_DEADLINE must be a number of seconds" in caplog.text
