"""The tests' fault proxy with latency that behaves like a network's round trip.

The fault proxy's ``delay`` mode sleeps before forwarding each client→server
chunk, one chunk after another, so on one connection chunks queue behind each
other's sleeps. Five HTTP/2 streams sharing a connection, or a TLS client's
Finished message followed by its first request, would then pay the latency
several times over, which no network does. Here every chunk is delivered
``seconds`` after it arrived, however many are in flight: one round trip per
client flight, as on a link whose whole round trip sits on the way in.

A new connection also pays one round trip for TCP's own handshake, which the
proxy cannot delay (the kernel completes it): its first chunk is held for a
second round trip. So against a ``seconds`` round trip a new HTTPS connection
costs TCP 1 + TLS 1.3 1 + request 1 round trips, as against a remote database.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import deque

from tests.support.proxy import FaultProxy

__all__ = ["LatencyProxy"]


class LatencyProxy(FaultProxy):
    """:class:`~tests.support.proxy.FaultProxy` whose ``delay`` mode is a pipelined round trip."""

    def _pump(self, link: object, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        if not upstream:
            super()._pump(link, source, sink, upstream)  # type: ignore[arg-type]
            return
        pending: deque[tuple[float, bytes]] = deque()
        ready = threading.Condition()
        done = [False]

        def deliver() -> None:
            while True:
                with ready:
                    while not pending and not done[0]:
                        ready.wait()
                    if not pending:
                        break
                    due, data = pending.popleft()
                wait = due - time.monotonic()
                if wait > 0 and self._stopping.wait(wait):
                    break
                with self._lock:
                    self.requests_forwarded += 1
                try:
                    sink.sendall(data)
                except OSError:
                    break
            self._forget(link)  # type: ignore[arg-type]

        sender = threading.Thread(target=deliver, name="latency-proxy-up", daemon=True)
        sender.start()
        first = True
        while data := self._recv(source):
            with self._lock:
                delay = self._delay if self._mode == "delay" else 0.0
            if first:
                delay *= 2  # the TCP handshake's round trip, which the kernel answered at once
                first = False
            with ready:
                pending.append((time.monotonic() + delay, data))
                ready.notify()
        with ready:
            done[0] = True
            ready.notify()
        sender.join()
