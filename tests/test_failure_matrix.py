"""The failure matrix: every database fault yields a complete config, right provenance and a banner, in time."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable

import psycopg
import pytest

from livekit_fallback import AgentConfig, Reason, Resolver, SnapshotSource, Source, SupabaseSource

from .conftest import DB_MARKER, DB_MODELS, SeededDatabase, shipped_snapshot
from .support.postgrest import Hang, Reset, Status
from .support.seed import delete_node, set_active_model, set_node_content, set_theme

pytestmark = pytest.mark.usefixtures("each_storage")

DEADLINE = 0.5
MARGIN = 0.3
NODES = list(shipped_snapshot()["nodes"])
ALL_KEYS = ["theme", *(f"nodes.{n}" for n in NODES), "models.stt", "models.llm", "models.tts"]
SNAPSHOT_MODELS = shipped_snapshot()["models"]["livekit"]

GROUPS = {
    "theme": ("theme_prompts", ["theme"]),
    "nodes": ("active_node_prompts", [f"nodes.{n}" for n in NODES]),
    "stt": ("livekit_available_stt_models", ["models.stt"]),
    "llm": ("livekit_available_llm_models", ["models.llm"]),
    "tts": ("livekit_available_voices", ["models.tts"]),
}

HTTP_FAULTS = {
    "http_500": (
        Status.json(500, {"code": "XX000", "message": "internal error", "details": None, "hint": None}),
        Reason.HTTP_ERROR,
        "internal error",
    ),
    "http_503_html": (Status(503, b"<html>Service Unavailable</html>", "text/html"), Reason.HTTP_ERROR, "503"),
    "http_401": (
        Status.json(401, {"message": "Invalid API key", "hint": "Double check your key"}),
        Reason.AUTH,
        "Invalid API key",
    ),
    "http_401_jwt": (
        Status.json(401, {"code": "PGRST301", "message": "JWSError", "details": None, "hint": None}),
        Reason.AUTH,
        "PGRST301",
    ),
    "non_json_200": (Status(200, b"<html>captive portal</html>", "text/html"), Reason.BAD_RESPONSE, "non-JSON"),
    "object_200": (Status.json(200, {"rows": []}), Reason.BAD_RESPONSE, "JSON dict"),
    "array_of_strings_200": (Status.json(200, ["x"]), Reason.BAD_RESPONSE, "not all objects"),
    "hang": (Hang(), Reason.TIMEOUT, "no answer"),
    "reset": (Reset(), Reason.UNREACHABLE, "httpx."),
}


async def _resolve(url: str, key: str, platform: str = "livekit") -> tuple[AgentConfig, float]:
    async with Resolver(database=SupabaseSource(url, key), snapshots=SnapshotSource(), deadline=DEADLINE) as r:
        started = time.perf_counter()
        config = await r.resolve("reverse_mortgage", platform)  # type: ignore[arg-type]
        return config, time.perf_counter() - started


def _assert_sources(config: AgentConfig, degraded: dict[str, Reason]) -> None:
    """Degraded keys come from the snapshot with their reason and snapshot values; the rest from the database."""
    assert list(config.nodes) == NODES
    for key in ALL_KEYS:
        prov = config.provenance[key]
        if key in degraded:
            assert (key, prov.source, prov.reason) == (key, Source.SNAPSHOT, degraded[key])
            assert prov.detail
        else:
            assert (key, prov.source, prov.reason) == (key, Source.DATABASE, None)
    for kind in ("stt", "llm", "tts"):
        expected = SNAPSHOT_MODELS[kind] if f"models.{kind}" in degraded else DB_MODELS["livekit"][kind]
        assert getattr(config.models, kind).value == expected
    for name, node in config.nodes.items():
        assert (DB_MARKER in node.instructions) is (f"nodes.{name}" not in degraded)
    assert (DB_MARKER in config.theme.text) is ("theme" not in degraded)


def _assert_banners(records: Iterable[logging.LogRecord], degraded: dict[str, Reason], fragment: str) -> None:
    """One ERROR banner per degraded component, with the structured fields and the reason text."""
    banners = {r.component: r for r in records if getattr(r, "event", None) == "config_fallback"}
    assert set(banners) == set(degraded)
    for key, record in banners.items():
        assert record.levelno == logging.ERROR and record.name == "livekit_fallback"
        assert record.reason_class == degraded[key].value
        assert record.fallback_source == "snapshot" and record.vertical == "reverse_mortgage"
        message = record.getMessage()
        assert "DATABASE FAILURE" in message and "Reason: " in message and "Impact: Using" in message
        assert "from 2025-11-21" in message and "Action: " in message
        assert fragment in message
        assert ("DATABASE CONNECTION UNREACHABLE" in message) is degraded[key].is_connection_level
        if key.startswith("models."):
            assert f"'{SNAPSHOT_MODELS[key.split('.')[1]]}'" in message
    assert "test-service-key" not in "".join(r.getMessage() for r in records)


@pytest.mark.parametrize("group", list(GROUPS))
@pytest.mark.parametrize("fault", list(HTTP_FAULTS))
async def test_http_fault_on_one_table_degrades_only_its_components(
    seeded: SeededDatabase, caplog: pytest.LogCaptureFixture, group: str, fault: str
) -> None:
    """A fault on one table sends only that table's components to the snapshot, in time, with a banner each."""
    table, keys = GROUPS[group]
    response, reason, fragment = HTTP_FAULTS[fault]
    seeded.standin.set_fault(table, response)
    caplog.set_level(logging.WARNING, logger="livekit_fallback")
    config, elapsed = await _resolve(seeded.url, seeded.key)
    degraded = dict.fromkeys(keys, reason)
    _assert_sources(config, degraded)
    _assert_banners(caplog.records, degraded, fragment)
    assert elapsed < DEADLINE + MARGIN


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


CONNECTION_FAULTS: dict[str, tuple[Callable[[SeededDatabase], str], Reason, str]] = {
    "connection_refused": (lambda db: _refused_url(), Reason.UNREACHABLE, "ConnectError"),
    "dns_failure": (lambda db: "http://config-db.invalid", Reason.UNREACHABLE, "ConnectError"),
    "hang_everything": (lambda db: (db.standin.set_fault("*", Hang()), db.url)[1], Reason.TIMEOUT, "no answer"),
}


@pytest.mark.parametrize("fault", list(CONNECTION_FAULTS))
@pytest.mark.parametrize("platform", ["livekit", "signalwire"])
async def test_unreachable_database_degrades_everything_within_the_deadline(
    seeded: SeededDatabase, caplog: pytest.LogCaptureFixture, fault: str, platform: str
) -> None:
    """Refused, unresolvable or hanging databases give a full snapshot config within the deadline."""
    make_url, reason, fragment = CONNECTION_FAULTS[fault]
    caplog.set_level(logging.WARNING, logger="livekit_fallback")
    config, elapsed = await _resolve(make_url(seeded), seeded.key, platform)
    assert elapsed < DEADLINE + MARGIN
    assert {(p.source, p.reason) for p in config.provenance.values()} == {(Source.SNAPSHOT, reason)}
    expected_llm = shipped_snapshot()["models"][platform]["llm"]
    assert config.models.llm.value == expected_llm
    banners = [r for r in caplog.records if getattr(r, "event", None) == "config_fallback"]
    assert {r.component for r in banners} == set(ALL_KEYS)
    assert all("DATABASE CONNECTION UNREACHABLE" in r.getMessage() and fragment in r.getMessage() for r in banners)
    if reason is Reason.UNREACHABLE:
        traced = [r for r in banners if r.exc_info and r.exc_info[0] is not None]
        # one trace per failed request: theme, the node request, three model requests
        assert len(traced) == 5 and len({id(r.exc_info[1]) for r in traced}) == 5
        assert sum(r.component.startswith("nodes.") for r in traced) == 1


def _two_active_prompts(db: SeededDatabase) -> None:
    with psycopg.connect(db.dsn) as conn:
        (prompt_id,) = conn.execute(
            "INSERT INTO prompts (name, vertical, node_name) VALUES ('dup', 'reverse_mortgage', 'verify') RETURNING id"
        ).fetchone()
        conn.execute(
            "INSERT INTO prompt_versions (prompt_id, version_number, content, is_active)"
            " SELECT %s, 1, content, true FROM active_node_prompts WHERE node_name = 'verify' LIMIT 1",
            (prompt_id,),
        )


def _two_active_models(db: SeededDatabase) -> None:
    with psycopg.connect(db.dsn) as conn:
        conn.execute("DROP INDEX livekit_available_llm_models_one_active")
        conn.execute(
            "INSERT INTO livekit_available_llm_models (provider, model_name, model_id_full, is_active)"
            " VALUES ('openai', 'gpt-4o', 'openai/gpt-4o', true)"
        )


def _restore_model_index(db: SeededDatabase) -> None:
    with psycopg.connect(db.dsn) as conn:
        conn.execute("DELETE FROM livekit_available_llm_models WHERE model_id_full = 'openai/gpt-4o'")
        conn.execute(
            "CREATE UNIQUE INDEX IF NOT EXISTS livekit_available_llm_models_one_active"
            " ON livekit_available_llm_models (is_active) WHERE is_active"
        )


BAD_NODE = {"role": "r", "instructions": "i", "tools": []}
DATA_FAULTS: dict[str, tuple[Callable[[SeededDatabase], None], dict[str, Reason], str]] = {
    "theme_zero_rows": (
        lambda db: set_theme(db.dsn, "reverse_mortgage", None),
        {"theme": Reason.MISSING_ROW},
        "no row in theme_prompts",
    ),
    "theme_inactive": (
        lambda db: set_theme(db.dsn, "reverse_mortgage", {"content": "x"}, is_active=False),
        {"theme": Reason.MISSING_ROW},
        "no row in theme_prompts",
    ),
    "theme_invalid": (
        lambda db: set_theme(db.dsn, "reverse_mortgage", {"identity": "only identity"}),
        {"theme": Reason.INVALID_CONTENT},
        "content_structured",
    ),
    "node_missing": (
        lambda db: delete_node(db.dsn, "reverse_mortgage", "verify"),
        {"nodes.verify": Reason.MISSING_ROW},
        "no active, non-draft prompt version",
    ),
    "some_nodes_missing": (
        lambda db: [delete_node(db.dsn, "reverse_mortgage", n) for n in ("quote", "book", "end")],
        {"nodes.quote": Reason.MISSING_ROW, "nodes.book": Reason.MISSING_ROW, "nodes.end": Reason.MISSING_ROW},
        "no active, non-draft prompt version",
    ),
    "node_two_active": (_two_active_prompts, {"nodes.verify": Reason.INVALID_CONTENT}, "2 active prompts"),
    "node_unknown_target": (
        lambda db: set_node_content(db.dsn, "reverse_mortgage", "verify", {**BAD_NODE, "valid_contexts": ["nowhere"]}),
        {"nodes.verify": Reason.INVALID_CONTENT},
        "unknown node(s) ['nowhere']",
    ),
    "node_bad_criteria": (
        lambda db: set_node_content(
            db.dsn, "reverse_mortgage", "qualify", {**BAD_NODE, "step_criteria_lk": "__import__('os').system('id')"}
        ),
        {"nodes.qualify": Reason.INVALID_CONTENT},
        "Call is not allowed",
    ),
    "node_not_an_object": (
        lambda db: set_node_content(db.dsn, "reverse_mortgage", "greet", '"just text"'),
        {"nodes.greet": Reason.INVALID_CONTENT},
        "not valid JSON, expected a JSON object",
    ),
    "end_not_terminal": (
        lambda db: set_node_content(db.dsn, "reverse_mortgage", "end", {**BAD_NODE, "valid_contexts": ["greet"]}),
        {"nodes.end": Reason.INVALID_CONTENT},
        "terminal node",
    ),
    "model_zero_rows": (
        lambda db: set_active_model(db.dsn, "livekit_available_stt_models", None),
        {"models.stt": Reason.MISSING_ROW},
        "no row in livekit_available_stt_models",
    ),
    "model_two_active": (_two_active_models, {"models.llm": Reason.INVALID_CONTENT}, "2 rows"),
    "model_unknown_provider": (
        lambda db: set_active_model(db.dsn, "livekit_available_voices", "acme/voice-1:v"),
        {"models.tts": Reason.INVALID_CONTENT},
        "unknown provider 'acme'",
    ),
    "model_malformed": (
        lambda db: set_active_model(db.dsn, "livekit_available_stt_models", "nova-3"),
        {"models.stt": Reason.INVALID_CONTENT},
        "is not provider/model",
    ),
}


@pytest.mark.parametrize("case", list(DATA_FAULTS))
async def test_bad_data_falls_back_per_component(
    seeded: SeededDatabase, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    """Missing, duplicated and invalid rows fall back alone, like connection errors, with their own reason."""
    mutate, degraded, fragment = DATA_FAULTS[case]
    mutate(seeded)
    caplog.set_level(logging.WARNING, logger="livekit_fallback")
    try:
        config, elapsed = await _resolve(seeded.url, seeded.key)
    finally:
        if case == "model_two_active":
            _restore_model_index(seeded)
    _assert_sources(config, degraded)
    _assert_banners(caplog.records, degraded, fragment)
    assert elapsed < DEADLINE + MARGIN


async def test_next_resolution_after_recovery_reads_the_database(seeded: SeededDatabase) -> None:
    """After the database comes back, the very next resolution is served from it again."""
    async with Resolver(database=SupabaseSource(seeded.url, seeded.key), deadline=DEADLINE) as resolver:
        seeded.standin.set_fault("*", Status.json(500, {"message": "down"}))
        down = await resolver.resolve("reverse_mortgage")
        seeded.standin.clear_faults()
        up = await resolver.resolve("reverse_mortgage")
    assert {p.source for p in down.provenance.values()} == {Source.SNAPSHOT}
    assert {p.source for p in up.provenance.values()} == {Source.DATABASE}
    assert up.models.llm.value == DB_MODELS["livekit"]["llm"]
