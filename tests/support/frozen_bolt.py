"""A Neo4j that freezes: a Bolt proxy that, on demand, stops answering after the login.

Thawed, it forwards bytes between the driver and a real Neo4j. Frozen, it stops relaying the
server's replies on the connections it forwards (keeping them open, as a peer in a long pause
does), and answers every new connection's handshake, HELLO and LOGON itself, then nothing
more: the driver logs in and waits forever for its first RUN or BEGIN. Toxiproxy can freeze
the connections that exist; only a peer that speaks Bolt can freeze the new ones after their
login, which is what a Neo4j in a GC pause behind a load balancer does. Thawing closes every
connection that crossed the freeze (their streams lost bytes), so the driver reconnects.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field

from tests.support.ports import free_port

# The driver proposes Bolt 5.0 to 5.8 among others; 5.4 logs in with HELLO then LOGON.
BOLT_VERSION = bytes([0, 0, 4, 5])
HANDSHAKE_BYTES = 20  # the magic number and four version proposals
HELLO, LOGON, GOODBYE = 0x01, 0x6A, 0x02
_SUCCESS_HELLO = b"\xb1\x70\xa3\x86server\x8cNeo4j/5.26.0\x8dconnection_id\x86bolt-1\x85hints\xa0"
_SUCCESS_EMPTY = b"\xb1\x70\xa0"


def _chunked(message: bytes) -> bytes:
    return struct.pack(">H", len(message)) + message + b"\x00\x00"


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _read_message(conn: socket.socket) -> bytes:
    message = b""
    while True:
        (size,) = struct.unpack(">H", _read_exactly(conn, 2))
        if size == 0:
            return message
        message += _read_exactly(conn, size)


@dataclass
class FrozenBolt:
    """The proxy on a free loopback port in front of Neo4j's Bolt port ``upstream_port``."""

    upstream_port: int
    port: int = field(default_factory=free_port)
    frozen: bool = False
    _listener: socket.socket | None = None
    _crossed: list[socket.socket] = field(default_factory=list)
    _open: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: bool = False

    def start(self) -> FrozenBolt:
        """Listen and serve connections in background threads."""
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, name="frozen-bolt", daemon=True).start()
        return self

    def url(self) -> str:
        """The bolt:// URL to give the service."""
        return f"bolt://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        """Stop answering: forwarded replies are dropped, new connections hang after login."""
        with self._lock:
            self.frozen = True

    def thaw(self) -> None:
        """Answer again; close every connection that crossed the freeze."""
        with self._lock:
            self.frozen = False
            crossed, self._crossed = self._crossed, []
        for conn in crossed:
            self._close(conn)

    def stop(self) -> None:
        """Stop listening and close every connection."""
        self._closing = True
        if self._listener is not None:
            self._listener.close()
        self.thaw()
        with self._lock:
            remaining, self._open = list(self._open), set()
        for conn in remaining:
            self._close(conn)

    def _track(self, conn: socket.socket) -> socket.socket:
        with self._lock:
            self._open.add(conn)
        return conn

    def _close(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()
        with self._lock:
            self._open.discard(conn)

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._closing:
            try:
                client = self._track(self._listener.accept()[0])
            except OSError:
                return
            with self._lock:
                frozen = self.frozen
                if frozen:
                    self._crossed.append(client)
            target = self._answer_login_then_nothing if frozen else self._forward
            threading.Thread(target=target, args=(client,), daemon=True).start()

    def _answer_login_then_nothing(self, client: socket.socket) -> None:
        with contextlib.closing(client), contextlib.suppress(OSError, ConnectionError):
            _read_exactly(client, HANDSHAKE_BYTES)
            client.sendall(BOLT_VERSION)
            while True:
                message = _read_message(client)
                signature = message[1] if len(message) > 1 else None
                if signature == HELLO:
                    client.sendall(_chunked(_SUCCESS_HELLO))
                elif signature == LOGON:
                    client.sendall(_chunked(_SUCCESS_EMPTY))
                elif signature == GOODBYE:
                    break
                # Anything else (RUN, BEGIN, ROUTE, RESET...) is read and never answered.

    def _forward(self, client: socket.socket) -> None:
        try:
            server = self._track(
                socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            )
        except OSError:
            self._close(client)
            return
        server.settimeout(None)
        upstream = threading.Thread(target=self._pump, args=(client, server, False), daemon=True)
        upstream.start()
        self._pump(server, client, True)
        upstream.join()
        self._close(server)
        self._close(client)

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        """Copy ``source`` to ``sink``; the server's replies are dropped while frozen."""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if replies and self.frozen:
                    with self._lock:
                        if sink not in self._crossed:
                            self._crossed.append(sink)
                    continue
                sink.sendall(data)
        for conn in (source, sink):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
