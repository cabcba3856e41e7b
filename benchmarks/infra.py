"""The benchmark's database side, in its own process: PostgreSQL, the PostgREST stand-in, TLS, the fault proxy.

The stand-in and the proxy are Python threads. Run in the benchmark's own
process they would compete for its GIL and show up as event-loop stalls that
belong to the "database", not to the reader being measured, so they run in a
child process, as a real database would. The parent talks to it with one JSON
object per line over the child's stdin/stdout; closing stdin stops everything.

The database is reached as a Supabase project is: over HTTPS, with HTTP/2
offered by ALPN. Clients connect to the fault proxy (:class:`~.latency.LatencyProxy`),
which forwards bytes to the TLS front (:class:`~.tls.TlsFront`, certificate
from a CA made for this run), which serves the PostgREST stand-in. So faults and
latency apply to the TCP and TLS handshakes too, and the front counts the
handshakes. Clients trust the CA through ``SSL_CERT_FILE`` (:attr:`Infra.ca_bundle`).

The database, the stand-in and the proxy are reused from the test support code
(``tests/support``); everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
VERTICAL = "reverse_mortgage"
KEY = "benchmark-key-not-a-secret"  # the stand-in does no auth


@dataclass(frozen=True)
class Counters:
    """Database traffic so far.

    Attributes:
        requests: HTTP requests the stand-in received.
        connections: TCP connections the fault proxy accepted.
        handshakes: TLS handshakes the front completed.
        h2: Connections that chose HTTP/2.
    """

    requests: int
    connections: int
    handshakes: int
    h2: int


class Infra:
    """Handle on the child process; every method is one round trip over its pipes.

    Attributes:
        direct_url: SUPABASE_URL of the stand-in itself (plain HTTP, no proxy).
        url: SUPABASE_URL through the fault proxy and TLS (use this one; faults apply here).
        ca_bundle: CA bundle (the usual CAs plus this run's) for ``SSL_CERT_FILE``.
        key: The key clients send.
    """

    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.infra"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        hello = self._read()
        self.direct_url: str = hello["direct_url"]
        self.url: str = hello["url"]
        self.ca_bundle: str = hello["ca_bundle"]
        self.key = KEY

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            code = self._proc.wait(timeout=30)
            raise RuntimeError(f"benchmark infrastructure exited with status {code} (see stderr above)")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"benchmark infrastructure: {reply['error']}")
        return reply

    def _call(self, op: str, **args: Any) -> dict[str, Any]:
        assert self._proc.stdin is not None
        with self._lock:  # a watchdog thread may switch the mode while the main thread is blocked
            self._proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self._proc.stdin.flush()
            return self._read()

    def set_mode(self, mode: str, seconds: float = 0.0) -> None:
        """Switches the fault proxy: ``pass``, ``delay`` (``seconds`` per request), ``refuse``, ``hang``."""
        self._call("mode", mode=mode, seconds=seconds)

    def counters(self) -> Counters:
        """The database traffic so far."""
        reply = self._call("counters")
        return Counters(reply["requests"], reply["connections"], reply["handshakes"], reply["h2"])

    def close(self) -> None:
        """Stops the stand-in, the proxy and PostgreSQL, and waits for the child; idempotent."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> Infra:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _seed(dsn: str) -> None:
    import tomllib

    from livekit_fallback.config.sources.snapshot import default_snapshot_dir
    from tests.support.seed import seed_vertical

    with open(default_snapshot_dir() / f"{VERTICAL}.toml", "rb") as fh:
        seed_vertical(dsn, tomllib.load(fh))


def _serve() -> None:
    from tests.support.pg import fresh_database, start_postgres
    from tests.support.postgrest import PostgrestStandIn

    from .latency import LatencyProxy
    from .tls import TlsFront, make_certificates

    # Replies go to a private copy of stdout; anything else printed goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with ExitStack() as stack:
        try:
            server = stack.enter_context(start_postgres())
            dsn = stack.enter_context(fresh_database(server.dsn))
            _seed(dsn)
            standin = stack.enter_context(PostgrestStandIn(dsn))
            certificates = make_certificates(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            front = stack.enter_context(TlsFront(standin.port, certificates))
            proxy = stack.enter_context(LatencyProxy("127.0.0.1", front.port))
        except Exception as exc:  # report, then let the ExitStack clean up
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), file=out, flush=True)
            return
        hello = {
            "direct_url": standin.url,
            "url": f"https://127.0.0.1:{proxy.port}",
            "ca_bundle": str(certificates.bundle),
        }
        print(json.dumps(hello), file=out, flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "mode":
                proxy.set_mode(command["mode"], seconds=command.get("seconds", 0.0))
                reply: dict[str, Any] = {"ok": True}
            elif op == "counters":
                reply = {
                    "requests": len(standin.requests),
                    "connections": proxy.connections,
                    "handshakes": front.handshakes,
                    "h2": front.h2_connections,
                }
            else:
                reply = {"error": f"unknown op {op!r}"}
            print(json.dumps(reply), file=out, flush=True)


if __name__ == "__main__":
    _serve()
