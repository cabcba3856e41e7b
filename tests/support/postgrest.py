"""A PostgREST-compatible stand-in serving ``/rest/v1/<table>`` over a real PostgreSQL.

The real supabase client (sync and async) runs against it unchanged. Tests can inspect
the requests it received and inject faults per table. See ``postgrest_grammar`` for the
supported URL grammar and ``postgrest_ops`` for how requests become SQL.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg

from .pool import ConnectionPool
from .postgrest_grammar import IDENT, PgrstError, unsupported
from .postgrest_ops import Reply, Request, db_error, execute

REST_PREFIX = "/rest/v1/"
_METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE")


@dataclass(frozen=True)
class Status:
    """Fault: answer with this status and body instead of querying the database."""

    code: int
    body: bytes = b""
    content_type: str = "application/json"

    @classmethod
    def json(cls, code: int, payload: object) -> Status:
        """Builds a JSON fault, e.g. ``Status.json(500, {"code": "XX000", "message": "boom"})``."""
        return cls(code, json.dumps(payload).encode())


@dataclass(frozen=True)
class Hang:
    """Fault: read the request and never answer (until the stand-in stops)."""


@dataclass(frozen=True)
class Reset:
    """Fault: close the connection with a TCP RST and no response."""


@dataclass(frozen=True)
class Delay:
    """Fault: wait ``seconds``, then serve the request normally."""

    seconds: float


Fault = Status | Hang | Reset | Delay


@dataclass(frozen=True)
class RecordedRequest:
    """A request as received: method, raw path with query string, lower-cased headers.

    ``headers`` is left out of the repr so assertion output never shows the API key.
    """

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)


class PostgrestStandIn:
    """Serves PostgREST's ``/rest/v1/<table>`` API over a PostgreSQL database.

    Example:
        with PostgrestStandIn(dsn) as standin:
            client = await acreate_client(standin.url, "any-key", options)
    """

    def __init__(self, dsn: str, host: str = "127.0.0.1", port: int = 0) -> None:
        """Prepares the stand-in; :meth:`start` binds and serves.

        Args:
            dsn: Database to serve.
            host: Listen address (keep it on loopback).
            port: Listen port; 0 picks a free one.
        """
        self._address = (host, port)
        self._pool = ConnectionPool(dsn)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: dict[str, Fault] = {}
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._server is None:
            raise RuntimeError("stand-in not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the value to use as SUPABASE_URL."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forgets the recorded requests."""
        with self._lock:
            self._requests.clear()

    def set_fault(self, table: str, fault: Fault) -> None:
        """Injects a fault for requests on ``table`` (``"*"`` for every table).

        Args:
            table: Table name from the URL path, or ``"*"``.
            fault: A :class:`Status`, :class:`Hang`, :class:`Reset` or :class:`Delay`.
        """
        with self._lock:
            self._faults[table] = fault

    def clear_faults(self) -> None:
        """Removes every injected fault."""
        with self._lock:
            self._faults.clear()

    def start(self) -> PostgrestStandIn:
        """Binds the listener and serves in a background thread."""
        self._stopping.clear()
        self._server = _Server(self._address, _Handler)
        self._server.standin = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="postgrest-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving, releases hung handlers, closes connections; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_client_sockets()
        server.server_close()
        self._thread.join()
        self._pool.close()

    def __enter__(self) -> PostgrestStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _record(self, method: str, path: str, headers: dict[str, str]) -> None:
        """Records a received request (called by the handler)."""
        with self._lock:
            self._requests.append(RecordedRequest(method, path, headers))

    def _fault_for(self, table: str | None) -> Fault | None:
        """Returns the fault applying to ``table``, if any (called by the handler)."""
        with self._lock:
            return self._faults.get(table) or self._faults.get("*")

    def _serve(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        """Answers one request from the database (called by the handler)."""
        try:
            request = _parse_request(method, path, headers, body)
            with self._pool.transaction() as cur:
                return execute(cur, request)
        except PgrstError as exc:
            return Reply(exc.status, exc.body(), {"Content-Type": "application/json"})
        except psycopg.Error as exc:
            error = db_error(exc)
            return Reply(error.status, error.body(), {"Content-Type": "application/json"})


def table_of(path: str) -> str | None:
    """Returns the raw table segment of ``/rest/v1/<table>?...``, else None."""
    route = unquote(urlsplit(path).path)
    return route[len(REST_PREFIX) :] if route.startswith(REST_PREFIX) else None


def _parse_request(method: str, path: str, headers: dict[str, str], body: bytes) -> Request:
    table = table_of(path)
    if table is None:
        raise PgrstError(404, "PGRST125", "Invalid path specified in request URL")
    if table == "" or table.startswith("rpc/"):
        raise unsupported("rpc and the OpenAPI root")
    if not IDENT.match(table):
        raise PgrstError(404, "42P01", f'relation "public.{table}" does not exist')
    if method not in _METHODS:
        raise unsupported(f"method {method}")
    query = parse_qsl(urlsplit(path).query, keep_blank_values=True)
    return Request(method, table, query, headers, body)


class _Server(ThreadingHTTPServer):
    """Tracks client sockets so that stop() can close idle keep-alive connections."""

    daemon_threads = False
    block_on_close = True
    request_queue_size = 128  # socketserver's default of 5 drops SYNs under bursts (1 s stalls)
    standin: PostgrestStandIn

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:
        with self._clients_lock:
            self._clients.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._clients_lock:
            self._clients.discard(request)
        super().shutdown_request(request)

    def close_client_sockets(self) -> None:
        with self._clients_lock:
            clients = list(self._clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler; TCP_NODELAY avoids a 40 ms delayed-ACK stall per request."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch()

    do_HEAD = do_POST = do_PATCH = do_DELETE = do_PUT = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Keeps test output quiet (requests are recorded instead)."""

    def _dispatch(self) -> None:
        standin = self.server.standin
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {key.lower(): value for key, value in self.headers.items()}
        standin._record(self.command, self.path, headers)
        fault = standin._fault_for(table_of(self.path))
        if fault is not None and not self._apply_fault(fault, standin._stopping):
            return
        self._send(standin._serve(self.command, self.path, headers, body))

    def _apply_fault(self, fault: Fault, stopping: threading.Event) -> bool:
        """Acts out a fault; returns True when the request should then be served normally."""
        if isinstance(fault, Status):
            self._send(Reply(fault.code, fault.body, {"Content-Type": fault.content_type}))
        elif isinstance(fault, Hang):
            stopping.wait()
            self.close_connection = True
        elif isinstance(fault, Reset):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()  # drop makefile()'s reference so close() really closes the socket
            self.connection.close()
            self.close_connection = True
        elif isinstance(fault, Delay):
            if not stopping.wait(fault.seconds):
                return True
            self.close_connection = True
        return False

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status not in (204, 304):
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(reply.body)
