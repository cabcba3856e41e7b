"""The baseline: configuration read the way the original system read it.

Faithful to the defects this package replaces (see the original-system notes):

* one process-wide **synchronous** supabase client with **default options**
  (built-in retries on: 1 + 2 + 4 s of ``time.sleep`` on a refused connection;
  120 s read timeout), called directly inside an ``async def``, so every wait
  blocks the event loop;
* **N+1 reads**: the theme, then for each of the 9 nodes the node row *and the
  theme again*, then each model table: 22 round trips;
* theme and node reads are wrapped in ``try`` with a hard-coded fallback, but the
  model reads are not, so a database outage raises out of the entrypoint.

The original fetched a node with the ``get_node_prompt`` RPC; the PostgREST
stand-in serves tables and views only, so the baseline reads the same row from
the ``active_node_prompts`` view, also one request.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from supabase import Client, create_client

__all__ = [
    "MODEL_TABLES",
    "NODES",
    "baseline_resolve",
    "close_baseline_client",
    "create_baseline_client",
    "load_theme",
    "requests_per_resolution",
    "requests_until_crash",
]

NODES = ("greet", "verify", "qualify", "quote", "answer", "objections", "book", "goodbye", "end")
MODEL_TABLES = (
    ("livekit_available_stt_models", "model_id_full"),
    ("livekit_available_llm_models", "model_id_full"),
    ("livekit_available_voices", "voice_id_full"),
)
FALLBACK_THEME = "You are a helpful assistant."  # stands in for the original's hard-coded constants
_log = logging.getLogger("benchmarks.baseline")


def create_baseline_client(url: str, key: str) -> Client:
    """The original's singleton: ``create_client(url, key)`` with default options."""
    client = create_client(url, key)
    with warnings.catch_warnings():
        # postgrest-py deprecation noise about its own default timeout argument.
        warnings.simplefilter("ignore", DeprecationWarning)
        _ = client.postgrest
    return client


def close_baseline_client(client: Client) -> None:
    """Closes the client's HTTP connections (the sync postgrest client names this ``aclose``)."""
    client.postgrest.aclose()


def load_theme(client: Client, vertical: str) -> str:
    """The theme row, or the hard-coded theme if the read fails (one request, blocking)."""
    try:
        rows = (
            client.table("theme_prompts")
            .select("content,content_structured")
            .eq("vertical", vertical)
            .eq("is_active", True)
            .limit(1)
            .execute()
            .data
        )
        return rows[0]["content"]
    except Exception:  # the original logged a banner and used its hard-coded theme
        _log.debug("theme read failed; using the hard-coded theme", exc_info=True)
        return FALLBACK_THEME


def _load_node(client: Client, vertical: str, node: str) -> dict[str, Any]:
    try:
        rows = (
            client.table("active_node_prompts")
            .select("content")
            .eq("vertical", vertical)
            .eq("node_name", node)
            .limit(1)
            .execute()
            .data
        )
        content = dict(rows[0]["content"])
    except Exception:
        _log.debug("node %s read failed; using the hard-coded node", node, exc_info=True)
        content = {"instructions": f"hard-coded {node} instructions", "valid_contexts": []}
    # The original re-read the theme for every node to build the node's full prompt.
    content["prompt"] = load_theme(client, vertical) + "\n\n" + str(content.get("instructions", ""))
    return content


def _active_model(client: Client, table: str, column: str) -> str:
    # Not in a try: an outage raises here, before any model fallback runs.
    rows = client.table(table).select("*").eq("is_active", True).limit(1).execute().data
    return rows[0][column]


async def baseline_resolve(client: Client, vertical: str) -> dict[str, Any]:
    """One call pickup's configuration read, as the original's async entrypoint did it.

    Every ``execute()`` is a blocking HTTP request on the event loop's thread.

    Raises:
        httpx.HTTPError: The database failed while reading a model row.
    """
    theme = load_theme(client, vertical)
    nodes = {node: _load_node(client, vertical, node) for node in NODES}
    models = {table: _active_model(client, table, column) for table, column in MODEL_TABLES}
    return {"theme": theme, "nodes": nodes, "models": models}


def requests_per_resolution() -> int:
    """Round trips of one healthy baseline resolution: 1 + 9 * 2 + 3 = 22."""
    return 1 + 2 * len(NODES) + len(MODEL_TABLES)


def requests_until_crash() -> int:
    """Requests a resolution makes before it raises in an outage: all theme/node reads, then one model read."""
    return 1 + 2 * len(NODES) + 1
