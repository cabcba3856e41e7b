"""A thread-based TCP proxy on 127.0.0.1 whose failure mode can be switched at run time.

Modes:
    ``pass``    forward both ways.
    ``delay``   forward, sleeping ``seconds`` before each client→server chunk.
    ``refuse``  nothing listens: connects get ECONNREFUSED (the port is re-bound on leaving).
    ``hang``    accept and read, never answer.
    ``reset``   accept and close at once with a TCP RST.

Switching to ``refuse``, ``hang`` or ``reset`` (and leaving ``hang``) drops every open
connection, so a client holding a pooled keep-alive connection sees the new mode too.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

MODES = ("pass", "delay", "refuse", "hang", "reset")
_CHUNK = 65536
_DROPPING_MODES = ("refuse", "hang", "reset")
_SETTLE = 0.01  # seconds; without it ~5% of pooled connections were reused before the FIN landed


class _Link:
    """One accepted client connection and, when forwarding, its upstream connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self._lock = threading.Lock()
        self.closed = False

    def close(self, *, rst: bool = False) -> None:
        """Closes both sockets once; ``rst`` aborts the client side with a TCP RST."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            try:
                if rst:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to a target, with switchable failure modes.

    Attributes:
        connections: Client connections accepted so far.
        requests_forwarded: Client→server chunks forwarded (about one per HTTP request).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        """Prepares the proxy; :meth:`start` binds and serves.

        Args:
            target_host: Host to forward to.
            target_port: Port to forward to.
        """
        self._target = (target_host, target_port)
        self._mode, self._delay = "pass", 0.0
        self._port = 0
        self._listener: socket.socket | None = None
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.RLock()
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = threading.Event()
        self.connections = 0
        self.requests_forwarded = 0

    @property
    def port(self) -> int:
        """The proxy's TCP port on 127.0.0.1 (kept across ``refuse``)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def mode(self) -> str:
        """The current mode name."""
        return self._mode

    def start(self) -> FaultProxy:
        """Binds a free port and starts accepting."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._listen()
        self._spawn(self._accept_loop, "fault-proxy-accept")
        return self

    def set_mode(self, mode: str, *, seconds: float = 0.0) -> None:
        """Switches the failure mode.

        Args:
            mode: One of ``pass``, ``delay``, ``refuse``, ``hang``, ``reset``.
            seconds: Latency per client→server chunk in ``delay`` mode.
        """
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
        if self._wake_w is None or self._stopping.is_set():
            raise RuntimeError("the proxy is not running")
        with self._lock:
            previous, self._mode, self._delay = self._mode, mode, seconds
            dropped = mode in _DROPPING_MODES or previous == "hang"
            if dropped:
                self._drop_links()
            if mode == "refuse":
                self._close_listener()
            elif self._listener is None:
                self._listen()
        self._wake_w.send(b"x")
        if dropped:
            time.sleep(_SETTLE)  # let clients' kernels see the FIN before their next request

    def reset_counters(self) -> None:
        """Sets ``connections`` and ``requests_forwarded`` back to zero."""
        with self._lock:
            self.connections = self.requests_forwarded = 0

    def stop(self) -> None:
        """Closes the listener and every connection, and joins the threads; idempotent."""
        if self._stopping.is_set() or self._wake_w is None:
            return
        self._stopping.set()
        with self._lock:
            self._close_listener()
            self._drop_links()
        self._wake_w.send(b"x")
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self._port))
        listener.listen(128)
        listener.setblocking(False)
        self._port = listener.getsockname()[1]
        self._listener = listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _drop_links(self) -> None:
        links, self._links = self._links, set()
        for link in links:
            link.close()

    def _spawn(self, target: object, name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                listener = self._listener
            try:
                readable, _, _ = select.select([self._wake_r, *filter(None, [listener])], [], [])
            except (OSError, ValueError):
                continue  # the listener was closed by a mode switch before select() ran
            if self._wake_r in readable:
                self._wake_r.recv(1024)
            if listener is not None and listener in readable:
                with self._lock:
                    if listener is not self._listener:
                        continue  # closed by a mode switch while we waited
                    try:
                        client, _ = listener.accept()
                    except OSError:
                        continue
                self._on_accept(client)

    def _on_accept(self, client: socket.socket) -> None:
        client.setblocking(True)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client)
        with self._lock:
            self.connections += 1
            mode = self._mode
            if mode == "reset":
                link.close(rst=True)
                return
            self._links.add(link)
        if mode == "hang":
            self._spawn(self._discard, "fault-proxy-hang", link)
            return
        try:
            link.upstream = socket.create_connection(self._target, timeout=5)
            link.upstream.settimeout(None)
            link.upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            link.close(rst=True)
            return
        self._spawn(self._pump, "fault-proxy-up", link, link.client, link.upstream, True)
        self._spawn(self._pump, "fault-proxy-down", link, link.upstream, link.client, False)

    def _discard(self, link: _Link) -> None:
        """Reads and throws away what a client sends in ``hang`` mode."""
        while self._recv(link.client):
            pass
        self._forget(link)

    def _forget(self, link: _Link) -> None:
        link.close()
        with self._lock:
            self._links.discard(link)

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        while data := self._recv(source):
            if upstream:
                with self._lock:
                    delay = self._delay if self._mode == "delay" else 0.0
                if delay and self._stopping.wait(delay):
                    break
                with self._lock:
                    self.requests_forwarded += 1
            try:
                sink.sendall(data)
            except OSError:
                break
        self._forget(link)

    @staticmethod
    def _recv(sock: socket.socket) -> bytes:
        try:
            return sock.recv(_CHUNK)
        except OSError:
            return b""
