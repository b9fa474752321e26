"""Slow clients: connections that send a request's header bytes a few at a time, forever.

What a slowloris does, and what a client on a bad link does by accident: each connection sends
the next few bytes of an endless header block every ``interval`` seconds, and opens a new one
whenever the server closes it. One thread drives them all with a selector. It records, for
every connection the server closed, how long it had lived and the status line it was sent.
"""

from __future__ import annotations

import contextlib
import itertools
import selectors
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

# The request line, then headers that never end.
_REQUEST_START = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
_HEADER_LINE = b"X-Slow: waiting\r\n"
# How often the driving thread wakes to send (each connection sends every ``interval``).
_TICK_SECONDS = 0.05


@dataclass
class _Connection:
    sock: socket.socket
    opened_at: float
    next_send_at: float
    sent: int = 0
    received: bytes = b""


def _header_bytes(offset: int, size: int) -> bytes:
    """The bytes of the endless request from ``offset``: the request line, then header lines."""
    stream = _REQUEST_START + _HEADER_LINE * ((offset + size) // len(_HEADER_LINE) + 1)
    return stream[offset : offset + size]


@dataclass
class SlowClients:
    """``count`` slow connections to 127.0.0.1:``port``, each sending ``chunk`` bytes of its
    header block every ``interval`` seconds; reconnected when the server closes one."""

    port: int
    count: int
    interval: float = 0.5
    chunk: int = 2
    # For every connection the server closed: seconds it lived, and the status line it got.
    opened: int = 0
    lifetimes: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> SlowClients:
        """Open the connections and keep them slow in a background thread."""
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _open(self, selector: selectors.BaseSelector, stagger: float = 0.0) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        now = time.monotonic()
        connection = _Connection(sock, now, now + stagger)
        self.opened += 1
        selector.register(sock, selectors.EVENT_READ, connection)

    def _closed(self, selector: selectors.BaseSelector, connection: _Connection) -> None:
        selector.unregister(connection.sock)
        connection.sock.close()
        self.lifetimes.append(time.monotonic() - connection.opened_at)
        status = connection.received.split(b"\r\n", 1)[0].decode(errors="replace")
        self.statuses[status or "closed without a response"] += 1
        if not self._stop.is_set():
            self._open(selector)

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        staggered = (self.interval * n / self.count for n in itertools.count())
        for _ in range(self.count):
            self._open(selector, next(staggered))
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(_TICK_SECONDS):
                    connection: _Connection = key.data
                    try:
                        data = connection.sock.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    connection.received += data
                    if not data:
                        self._closed(selector, connection)
                now = time.monotonic()
                for key in list(selector.get_map().values()):
                    connection = key.data
                    if connection.next_send_at <= now:
                        self._send(selector, connection, now)
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            selector.close()

    def _send(self, selector: selectors.BaseSelector, connection: _Connection, now: float) -> None:
        try:
            connection.sent += connection.sock.send(_header_bytes(connection.sent, self.chunk))
        except BlockingIOError:
            pass
        except OSError:  # the server answered and closed: keep what it sent, if it is here
            with contextlib.suppress(OSError):
                connection.received += connection.sock.recv(4096)
            self._closed(selector, connection)
            return
        connection.next_send_at = now + self.interval
