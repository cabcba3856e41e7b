"""TLS on the benchmark's database path: a throwaway CA and a TLS front speaking HTTP/2 and HTTP/1.1.

A real Supabase project is reached over HTTPS, and its front end offers HTTP/2
by ALPN. The PostgREST stand-in speaks plain HTTP/1.1, so the benchmark puts
:class:`TlsFront` in front of it: it terminates TLS on 127.0.0.1 with a
certificate signed by a CA made at benchmark time (:func:`make_certificates`),
answers HTTP/2 connections itself (``h2``) by forwarding each stream to the
stand-in, and relays HTTP/1.1 connections byte for byte. It counts completed
TLS handshakes and the protocol each connection chose, so the benchmark can
show what a cold read pays in handshakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import certifi
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["Certificates", "TlsFront", "make_certificates"]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "host", "content-encoding"}
)


@dataclass(frozen=True)
class Certificates:
    """Files of one throwaway PKI.

    Attributes:
        ca: The CA certificate (PEM).
        bundle: The system's usual CA bundle plus the throwaway CA, for ``SSL_CERT_FILE``
            (so a client loads as many CAs as it would in production).
        cert: The server certificate for 127.0.0.1 and localhost (PEM).
        key: The server's private key (PEM, unencrypted).
    """

    ca: Path
    bundle: Path
    cert: Path
    key: Path


def make_certificates(directory: Path) -> Certificates:
    """Makes a CA and a server certificate for 127.0.0.1 in ``directory``; valid for one day."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "livekit-fallback benchmark CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = Certificates(
        directory / "ca.pem", directory / "bundle.pem", directory / "server.pem", directory / "server.key"
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files.ca.write_bytes(ca_pem)
    files.bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca_pem)
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class TlsFront:
    """HTTPS on 127.0.0.1 in front of a plain-HTTP server, in its own thread and event loop.

    Attributes:
        handshakes: TLS handshakes completed so far.
        h2_connections: Connections that chose HTTP/2 by ALPN.
        http1_connections: Connections that chose HTTP/1.1 (or no ALPN).
    """

    def __init__(self, upstream_port: int, certificates: Certificates) -> None:
        self._upstream_port = upstream_port
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(certificates.cert, certificates.key)
        self._context.set_alpn_protocols(["h2", "http/1.1"])
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-front", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.handshakes = 0
        self.h2_connections = 0
        self.http1_connections = 0

    def start(self) -> TlsFront:
        """Binds a free port and starts serving."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self._upstream_port}",
            timeout=None,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Closes the listener and every connection and stops the thread; idempotent."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def __enter__(self) -> TlsFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.handshakes += 1  # asyncio calls the handler once the handshake is done
        tls = writer.get_extra_info("ssl_object")
        try:
            if tls is not None and tls.selected_alpn_protocol() == "h2":
                self.h2_connections += 1
                await _H2Connection(reader, writer, self._forward).serve()
            else:
                self.http1_connections += 1
                await self._relay(reader, writer)
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._upstream_port)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            up_writer.close()

    async def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._client is not None
        request = self._client.build_request(method, path, headers=headers, content=body)
        response = await self._client.send(request, stream=True)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        kept = [(k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
        kept = [(k, v) for k, v in kept if k != "content-length"] + [("content-length", str(len(content)))]
        return response.status_code, kept, content


_Forward = Callable[[str, str, list[tuple[str, str]], bytes], Awaitable[tuple[int, list[tuple[str, str]], bytes]]]
"""Forwards one request upstream: ``(method, path, headers, body) -> (status, headers, body)``."""


class _H2Connection:
    """One HTTP/2 server connection: each request stream is forwarded upstream as HTTP/1.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, forward: _Forward) -> None:
        self._reader = reader
        self._writer = writer
        self._forward = forward
        self._conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self._requests: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        self._window = asyncio.Event()
        self._streams: set[asyncio.Task[None]] = set()

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            self._writer.write(data)

    async def serve(self) -> None:
        self._conn.initiate_connection()
        self._flush()
        try:
            while data := await self._reader.read(65536):
                try:
                    events = self._conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self._flush()
                    return
                for event in events:
                    self._on(event)
                self._flush()
                await self._writer.drain()
        finally:
            for task in list(self._streams):
                task.cancel()
            await asyncio.gather(*self._streams, return_exceptions=True)

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = [(str(k), str(v)) for k, v in event.headers or []]
            self._requests[event.stream_id] = (headers, bytearray())
        elif isinstance(event, h2.events.DataReceived):
            self._requests[event.stream_id][1].extend(event.data or b"")
            self._conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            self._window.set()
        elif isinstance(event, h2.events.StreamReset):
            self._requests.pop(event.stream_id or 0, None)
        elif isinstance(event, h2.events.StreamEnded):  # also follows a RequestReceived with END_STREAM
            stream_id = event.stream_id or 0
            if stream_id in self._requests:
                headers, body = self._requests.pop(stream_id)
                task = asyncio.ensure_future(self._answer(stream_id, headers, bytes(body)))
                self._streams.add(task)
                task.add_done_callback(self._streams.discard)

    async def _answer(self, stream_id: int, headers: list[tuple[str, str]], body: bytes) -> None:
        pseudo = {k: v for k, v in headers if k.startswith(":")}
        plain = [(k, v) for k, v in headers if not k.startswith(":") and k not in _HOP_BY_HOP]
        try:
            status, reply_headers, content = await self._forward(pseudo[":method"], pseudo[":path"], plain, body)
            self._conn.send_headers(stream_id, [(":status", str(status)), *reply_headers], end_stream=not content)
            self._flush()
            while content:
                size = min(self._conn.local_flow_control_window(stream_id), self._conn.max_outbound_frame_size)
                if size <= 0:
                    self._window.clear()
                    await self._window.wait()
                    continue
                self._conn.send_data(stream_id, content[:size], end_stream=len(content) <= size)
                content = content[size:]
                self._flush()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, ConnectionError):
            return
        except httpx.HTTPError:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._conn.reset_stream(stream_id)
                self._flush()
