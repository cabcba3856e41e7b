"""The database source's response classification, driven through an in-process HTTP transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import pytest

from livekit_fallback.config.model import ModelChoice, Node, Reason, Theme
from livekit_fallback.config.sources.base import Failure, FetchRequest, Found, Outcome
from livekit_fallback.config.sources.supabase import SupabaseSource

pytestmark = pytest.mark.unit

URL = "https://project.supabase.test"
KEY = "sb_secret_unit_test_key"
VERTICAL = "reverse_mortgage"
NODES = ("greet", "end")
KEYS = ("theme", "nodes.greet", "nodes.end", "models.stt", "models.llm", "models.tts")

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]

HEALTHY: dict[str, list[dict[str, Any]]] = {
    "theme_prompts": [{"vertical": VERTICAL, "content": "Be kind and brief.", "content_structured": None}],
    "active_node_prompts": [
        {"node_name": "end", "version_number": 1, "content": {"role": "r", "instructions": "Say goodbye."}},
        {
            "node_name": "greet",
            "version_number": 3,
            "content": {"role": "r", "instructions": "Greet.", "valid_contexts": ["end"], "tools": []},
        },
    ],
    "livekit_available_stt_models": [{"model_id_full": "deepgram/nova-3:multi"}],
    "livekit_available_llm_models": [{"model_id_full": "openai/gpt-4.1-mini"}],
    "livekit_available_voices": [{"voice_id_full": "elevenlabs/eleven_turbo_v2_5:voice123", "is_custom": False}],
}
"""Table to the rows a healthy database returns."""

GROUP_KEYS = {
    "theme_prompts": ["theme"],
    "active_node_prompts": ["nodes.greet", "nodes.end"],
    "livekit_available_stt_models": ["models.stt"],
}


def _table(request: httpx.Request) -> str:
    return request.url.path.rsplit("/", 1)[1]


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


async def _fetch(overrides: Mapping[str, Handler], deadline: float = 2.0) -> dict[str, Outcome]:
    """Fetch every component with ``overrides`` answering for their tables and healthy rows elsewhere."""

    async def handle(request: httpx.Request) -> httpx.Response:
        table = _table(request)
        if table in overrides:
            answer = overrides[table](request)
            return answer if isinstance(answer, httpx.Response) else await answer
        return _json(200, HEALTHY[table])

    source = SupabaseSource(URL, KEY, transport=httpx.MockTransport(handle))
    loop = asyncio.get_running_loop()
    try:
        return await source.fetch(FetchRequest(VERTICAL, "livekit", KEYS, NODES, loop.time() + deadline))
    finally:
        await source.aclose()


def _failures(outcomes: Mapping[str, Outcome], keys: list[str]) -> list[Failure]:
    failures = [outcomes[key] for key in keys]
    assert all(isinstance(f, Failure) for f in failures), failures
    found = [k for k, o in outcomes.items() if k not in keys]
    assert all(isinstance(outcomes[k], Found) for k in found), {k: outcomes[k] for k in found}
    return failures  # type: ignore[return-value]


def _assert_failed(outcomes: Mapping[str, Outcome], table: str, reason: Reason, words: str) -> None:
    for failure in _failures(outcomes, GROUP_KEYS[table]):
        assert failure.reason is reason, failure
        assert words in failure.detail, failure.detail
        assert KEY not in failure.detail


async def test_healthy_answers_give_every_component() -> None:
    """Healthy answers give a validated theme, each node and each model, from the right tables."""
    outcomes = await _fetch({})
    assert all(isinstance(o, Found) for o in outcomes.values()), outcomes
    assert isinstance(outcomes["theme"].value, Theme)  # type: ignore[union-attr]
    assert isinstance(outcomes["nodes.greet"].value, Node)  # type: ignore[union-attr]
    tts = outcomes["models.tts"]
    assert isinstance(tts, Found) and isinstance(tts.value, ModelChoice) and tts.value.variant == "voice123"
    assert tts.location == "livekit_available_voices"
    assert outcomes["nodes.end"].location == "prompts, prompt_versions"


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("All connection attempts failed", request=request)


def _read_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


async def _hang(request: httpx.Request) -> httpx.Response:
    await asyncio.sleep(30)
    return _json(200, [])


@pytest.mark.parametrize(
    ("handler", "reason", "words"),
    [
        (_refuse, Reason.UNREACHABLE, "httpx.ConnectError: All connection attempts failed"),
        (_read_timeout, Reason.TIMEOUT, "httpx.ReadTimeout"),
        (lambda r: _json(500, {"code": "XX000", "message": "internal error"}), Reason.HTTP_ERROR, "internal error"),
        (lambda r: httpx.Response(503, content=b"<html>Service Unavailable</html>"), Reason.HTTP_ERROR, "503"),
        (lambda r: _json(401, {"message": "Invalid API key", "hint": "Double check"}), Reason.AUTH, "Invalid API key"),
        (lambda r: _json(401, {"code": "PGRST301", "message": "JWSError"}), Reason.AUTH, "PGRST301"),
        (lambda r: _json(403, {"code": "42501", "message": "permission denied"}), Reason.AUTH, "permission denied"),
        (
            lambda r: httpx.Response(200, content=b"<html>portal</html>", headers={"content-type": "text/html"}),
            Reason.BAD_RESPONSE,
            "non-JSON",
        ),
        (lambda r: _json(200, {"rows": []}), Reason.BAD_RESPONSE, "JSON dict, expected an array of rows"),
        (lambda r: _json(200, ["x"]), Reason.BAD_RESPONSE, "not all objects"),
    ],
    ids=[
        "refused",
        "read_timeout",
        "http_500",
        "http_503_html",
        "http_401",
        "http_401_jwt",
        "http_403",
        "non_json_200",
        "object_200",
        "strings_200",
    ],
)
@pytest.mark.parametrize("table", list(GROUP_KEYS))
async def test_transport_and_body_failures_are_classified(
    table: str, handler: Handler, reason: Reason, words: str
) -> None:
    """Each failure of one table's request fails exactly that group's components, with its reason and detail."""
    _assert_failed(await _fetch({table: handler}), table, reason, words)


async def test_a_hanging_request_is_cut_at_the_deadline() -> None:
    """A request still unanswered at the deadline is a timeout for its components; the others are served."""
    started = asyncio.get_running_loop().time()
    outcomes = await _fetch({"theme_prompts": _hang}, deadline=0.2)
    assert asyncio.get_running_loop().time() - started < 2
    _assert_failed(outcomes, "theme_prompts", Reason.TIMEOUT, "no answer from theme_prompts")


@pytest.mark.parametrize(
    ("table", "rows", "reason", "words"),
    [
        ("theme_prompts", [], Reason.MISSING_ROW, "no row in theme_prompts with vertical='reverse_mortgage'"),
        ("active_node_prompts", [], Reason.MISSING_ROW, "no active, non-draft prompt version"),
        ("livekit_available_stt_models", [], Reason.MISSING_ROW, "no row in livekit_available_stt_models"),
        (
            "theme_prompts",
            HEALTHY["theme_prompts"] * 2,
            Reason.INVALID_CONTENT,
            "2 rows in theme_prompts with vertical='reverse_mortgage', is_active=true; expected exactly one",
        ),
        (
            "livekit_available_stt_models",
            [{"model_id_full": "deepgram/nova-3"}, {"model_id_full": "deepgram/nova-2"}],
            Reason.INVALID_CONTENT,
            "2 rows in livekit_available_stt_models",
        ),
        ("theme_prompts", [{"vertical": VERTICAL}], Reason.BAD_RESPONSE, "lacks content columns"),
        ("active_node_prompts", [{"node_name": "greet"}], Reason.BAD_RESPONSE, "lacks node_name/content"),
        ("livekit_available_stt_models", [{"model_id_full": 3}], Reason.BAD_RESPONSE, "no string model_id_full"),
        (
            "theme_prompts",
            [{"vertical": VERTICAL, "content": " ", "content_structured": None}],
            Reason.INVALID_CONTENT,
            "neither content_structured nor non-empty content",
        ),
        (
            "livekit_available_stt_models",
            [{"model_id_full": "nova-3"}],
            Reason.INVALID_CONTENT,
            "is not provider/model[:language]",
        ),
    ],
    ids=[
        "no_theme",
        "no_nodes",
        "no_model",
        "two_themes",
        "two_models",
        "theme_without_content",
        "node_without_content",
        "model_not_string",
        "blank_theme",
        "bad_model_string",
    ],
)
async def test_row_problems_are_classified(table: str, rows: list[dict[str, Any]], reason: Reason, words: str) -> None:
    """Zero rows, two active rows, rows lacking columns and invalid content fail just those components."""
    _assert_failed(await _fetch({table: lambda r: _json(200, rows)}), table, reason, words)


async def test_two_active_versions_of_one_node_fail_that_node_only() -> None:
    """Two active versions of a node fail that node as invalid content; the other node is served."""
    greet = HEALTHY["active_node_prompts"][1]
    rows = [*HEALTHY["active_node_prompts"], {**greet, "version_number": 4}]
    outcomes = await _fetch({"active_node_prompts": lambda r: _json(200, rows)})
    (failure,) = _failures(outcomes, ["nodes.greet"])
    assert failure.reason is Reason.INVALID_CONTENT and "2 active prompts for node_name='greet'" in failure.detail


BAD_TARGET = {"role": "r", "instructions": "i", "valid_contexts": ["x"]}


async def test_invalid_node_content_fails_that_node_only() -> None:
    """A node whose content does not validate (a target that is not a node) fails alone, naming the field."""
    rows = [
        HEALTHY["active_node_prompts"][0],
        {"node_name": "greet", "version_number": 3, "content": BAD_TARGET},
    ]
    outcomes = await _fetch({"active_node_prompts": lambda r: _json(200, rows)})
    (failure,) = _failures(outcomes, ["nodes.greet"])
    assert failure.reason is Reason.INVALID_CONTENT and "node 'greet'" in failure.detail and "'x'" in failure.detail


async def test_the_key_is_sent_but_never_reported() -> None:
    """Requests carry the key in both auth headers; an error body echoing it is redacted in the detail."""
    seen: list[httpx.Request] = []

    def echo(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return _json(500, {"code": "XX000", "message": f"bad header apikey={KEY}"})

    outcomes = await _fetch({"theme_prompts": echo})
    assert seen and seen[0].headers["apikey"] == KEY and seen[0].headers["authorization"] == f"Bearer {KEY}"
    _assert_failed(outcomes, "theme_prompts", Reason.HTTP_ERROR, "***")
