"""Real supabase clients configured for tests: retries off, fractional ``httpx.Timeout``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from supabase import AClient, AsyncClientOptions, acreate_client

TEST_KEY = "test-anon-key"  # any non-empty string; the stand-in does no auth


@asynccontextmanager
async def async_supabase(url: str, *, timeout: float = 2.0) -> AsyncIterator[AClient]:
    """Yields a real async supabase client with retries off and an ``httpx.Timeout``.

    Args:
        url: SUPABASE_URL, e.g. ``standin.url`` or ``proxy.url``.
        timeout: Connect/read/write/pool timeout in seconds (fractions are honoured).
    """
    options = AsyncClientOptions(postgrest_client_retry=False, postgrest_client_timeout=httpx.Timeout(timeout))
    client = await acreate_client(url, TEST_KEY, options)
    try:
        yield client
    finally:
        await client.postgrest.aclose()
