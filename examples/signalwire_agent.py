"""A reverse-mortgage SignalWire agent on the SignalWire Agents SDK, configured by livekit-fallback.

The prompt, the nine-node graph (contexts and steps), the models and the voice
are resolved on every SWML request from Supabase (``SUPABASE_URL`` /
``SUPABASE_SERVICE_KEY``), or from the shipped snapshot when the database is
unset, down or holds bad data. The tools are ``reverse_mortgage_tools``; the
caller's lead comes from its call-state hook.

Run it as the SDK's examples run (needs ``pip install "livekit-fallback[signalwire]"``)::

    python examples/signalwire_agent.py            # the SDK's server on 127.0.0.1:3000
    # in production: SWML_PROXY_URL_BASE, SWML_BASIC_AUTH_USER/PASSWORD (see docs/signalwire.md)
    swaig-test examples/signalwire_agent.py --dump-swml --raw
    swaig-test examples/signalwire_agent.py --exec search_knowledge --query "what fees are there"
"""

from __future__ import annotations

import os

from reverse_mortgage_tools import build_registry, call_state

from swaig_fallback.sdk import ResolvedAgent

agent = ResolvedAgent(
    os.environ.get("AGENT_VERTICAL", "reverse_mortgage"),
    registry=build_registry(),
    call_state=call_state,
    name="reverse-mortgage",
)


if __name__ == "__main__":
    agent.run()
