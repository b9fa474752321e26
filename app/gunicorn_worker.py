"""gunicorn's gthread worker, made to hold up under slow clients and to stop without drops.

Two changes to gthread, each for a failure seen with the stock worker:

**A thread only for a request that has arrived.** gthread hands a connection to a thread as
soon as its first byte arrives; the thread then blocks until the request line and headers have
come. A client that sends them slowly holds a thread for as long as it likes, and 16 such
clients hold every thread of two workers of eight: the liveness probe fails and the
orchestrator restarts the pod, again and again. This worker reads each request in its event
loop instead, without blocking: the bytes are buffered until the headers are complete (and a
body of known length up to MAX_BODY_PREFETCH_BYTES, which covers every request of this API),
then the connection goes to a thread with the request already in hand. A connection that has
not sent a whole request REQUEST_HEADER_TIMEOUT_SECONDS after it was accepted (or, kept alive,
after its next request began) is answered ``408`` and closed; a silent one is closed. A worker
keeps ``worker_connections`` connections: above it, the oldest connection that has been
sending its request for half a second gives way (answered ``503``), else the oldest idle
kept-alive one. A new connection is always accepted and read first (a probe's request arrives
in milliseconds), up to twice ``worker_connections``; past that it is refused with ``503`` at
once, rather than left in the listen queue. Bodies sent with chunked encoding or
after ``Expect: 100-continue`` are still read by the thread (the body limit bounds their size,
the proxy their time: docs/operations.md).

**Stopping without dropping a queued connection.** When a gthread worker stops, it stops
polling its listening sockets and closes them only after its in-flight requests are done.
Connections that reach the listen queue meanwhile (a balancer that has not noticed yet)
completed their TCP handshake and sent their request, and are reset when the socket closes: the
balancer answers 502 and cannot retry a POST. This worker, as it stops accepting, first takes
every connection already queued (they are served like any other) and then closes its
listeners at once, so a later connection attempt is refused, which every balancer retries on
another server.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import re
import resource
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from types import FrameType
from typing import Any

from gunicorn.http.parser import RequestParser
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

# How long a connection may take to send a whole request (the default of
# REQUEST_HEADER_TIMEOUT_SECONDS): a client on any real network sends a request of this API in
# milliseconds; a balancer's health check likewise.
DEFAULT_REQUEST_HEADER_TIMEOUT_SECONDS = 5.0
# A request body of known length up to this is read in the loop too: it covers the largest
# body the app accepts (64 KiB, app.MAX_CONTENT_LENGTH); a larger one is refused by the app
# without being read.
MAX_BODY_PREFETCH_BYTES = 64 * 1024
# A request line and headers longer than this are refused (431) without a thread; gunicorn's
# own limits (4094-byte request line, 8190-byte fields) refuse anything close to it anyway.
MAX_HEADER_BYTES = 64 * 1024
# File descriptors kept for what is not a client connection: Redis and Neo4j pools, log
# files, the worker's pipes and its heartbeat file.
RESERVED_FILE_DESCRIPTORS = 128
# How much one read in the loop takes from a socket.
RECV_BYTES = 65536
# Reads of what a client sent that are drained before its connection is closed with an answer.
UNREAD_DRAIN_READS = 4
# At the connection cap, a connection still sending its request gives way to a new one only
# once it has had this long (a client sends a request within milliseconds of connecting): a
# new connection whose request has not been read yet is never the one evicted.
EVICTABLE_AFTER_SECONDS = 0.5
# The loop's summary of connections it timed out, evicted or refused: at most this often.
INTAKE_LOG_SECONDS = 60.0

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"^content-length:[ \t]*([0-9]{1,12})[ \t]*$", re.I | re.M)
_CHUNKED = re.compile(rb"^transfer-encoding:.*chunked", re.I | re.M)
_EXPECT = re.compile(rb"^expect:", re.I | re.M)


def _error_response(status: str, code: str, message: str, retry_after: int | None) -> bytes:
    """A complete HTTP/1.1 error response in the API's error envelope, closing the connection."""
    body = b'{"error":{"code":"%s","message":"%s"}}\n' % (code.encode(), message.encode())
    headers = [
        f"HTTP/1.1 {status}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after is not None:
        headers.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


REQUEST_TIMEOUT_RESPONSE = _error_response(
    "408 Request Timeout",
    "request_timeout",
    "the request did not arrive in time; send it whole and at once",
    None,
)
HEADERS_TOO_LARGE_RESPONSE = _error_response(
    "431 Request Header Fields Too Large",
    "headers_too_large",
    "the request line and headers exceed 64 KiB",
    None,
)
OVERLOADED_RESPONSE = _error_response(
    "503 Service Unavailable",
    "too_many_connections",
    "this worker has as many connections as it takes; retry",
    1,
)


@dataclass
class _Intake:
    """A connection whose request is being read in the loop, with the bytes read so far."""

    conn: TConn
    deadline: float  # time.monotonic()
    data: bytearray = field(default_factory=bytearray)
    # Headers and body end here once the headers are in (None before).
    request_end: int | None = None
    # Closed by the loop: a readiness event of its socket already selected is stale.
    ended: bool = False

    def add(self, chunk: bytes) -> None:
        """Take bytes read from the socket; find where the request ends once its headers are in."""
        self.data += chunk
        if self.request_end is None:
            header_end = self.data.find(_HEADER_END)
            if header_end >= 0:
                self.request_end = (
                    header_end
                    + len(_HEADER_END)
                    + self._prefetched_body(bytes(self.data[:header_end]))
                )

    @staticmethod
    def _prefetched_body(headers: bytes) -> int:
        """How much of the body to read in the loop: a body of known length, if small."""
        if _CHUNKED.search(headers) or _EXPECT.search(headers):
            return 0  # read by the thread: its end is not known, or the client awaits a 100
        length = _CONTENT_LENGTH.search(headers)
        size = int(length.group(1)) if length else 0
        return size if size <= MAX_BODY_PREFETCH_BYTES else 0

    @property
    def complete(self) -> bool:
        """The request (headers, and a small body) is all here."""
        return self.request_end is not None and len(self.data) >= self.request_end

    @property
    def headers_too_large(self) -> bool:
        """More than MAX_HEADER_BYTES arrived without the end of the headers."""
        return self.request_end is None and len(self.data) > MAX_HEADER_BYTES


def _file_descriptor_cap() -> int:
    """Connections this process can hold open: its soft file limit minus what it needs else."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return sys.maxsize
    return max(soft - RESERVED_FILE_DESCRIPTORS, 1)


class DrainingThreadWorker(ThreadWorker):
    """ThreadWorker that reads requests in its loop and drains its listen queue when it stops."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_header_timeout = DEFAULT_REQUEST_HEADER_TIMEOUT_SECONDS
        # Connections kept once their requests have had EVICTABLE_AFTER_SECONDS to arrive; new
        # ones are always read for that long first, up to twice as many in all.
        self.connection_cap = min(self.cfg.worker_connections, _file_descriptor_cap())
        self.connection_limit = min(2 * self.cfg.worker_connections, _file_descriptor_cap())
        # gthread's loop stops polling the listeners at worker_connections, which leaves a
        # flood in the listen queue; this worker keeps accepting and decides itself.
        self.worker_connections = sys.maxsize
        self._intakes: collections.deque[_Intake] = collections.deque()  # by deadline
        self._intake_counts = {"timed_out": 0, "evicted": 0, "refused": 0}
        self._intake_logged_at = time.monotonic()

    def configure_intake(self, *, header_timeout_seconds: float) -> None:
        """Set REQUEST_HEADER_TIMEOUT_SECONDS (from the service's settings, before ``run``)."""
        self.request_header_timeout = header_timeout_seconds

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        """SIGINT/SIGQUIT while the worker boots, before app.lifecycle's handlers are in place.

        gthread's own handler shuts the thread pool down and raises SystemExit wherever the
        worker is; inside a thread start that surfaces as an exception, the boot fails (exit
        code 3) and the master halts. A Ctrl-C then should stop gracefully, as SIGTERM does.
        """
        self.handle_exit(sig, frame)

    # --- accepting ---------------------------------------------------------------------------
    def accept(self, listener: socket.socket) -> bool:  # type: ignore[override]
        """Accept one connection and start reading its request; False when none was queued."""
        try:
            client, address = listener.accept()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self._make_room()  # out of descriptors: free one for the next try
                return False
            if error.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return False
            raise
        if self.nr_conns >= self.connection_limit and not self._make_room(young_too=True):
            self._send_and_close(client, OVERLOADED_RESPONSE)
            self._intake_counts["refused"] += 1
            return True
        self.nr_conns += 1
        self.enqueue_req(TConn(self.cfg, client, address, listener.getsockname()))
        self._keep_to_the_cap()
        return True

    def _keep_to_the_cap(self) -> None:
        """Above WORKER_CONNECTIONS, close connections that can give way (see _make_room)."""
        while self.nr_conns > self.connection_cap and self._make_room():
            pass

    def _make_room(self, *, young_too: bool = False) -> bool:
        """Close the oldest connection that has been sending its request for more than
        EVICTABLE_AFTER_SECONDS (any, when ``young_too``), else the oldest idle kept-alive one;
        False when there is none to close."""
        oldest_evictable = time.monotonic() + self.request_header_timeout - EVICTABLE_AFTER_SECONDS
        if self._intakes and (young_too or self._intakes[0].deadline <= oldest_evictable):
            intake = self._intakes.popleft()
            self._end_intake(intake, OVERLOADED_RESPONSE)
            self._intake_counts["evicted"] += 1
            return True
        if self.keepalived_conns:
            conn = self.keepalived_conns.popleft()
            self._forget(conn)
            self.nr_conns -= 1
            conn.close()
            return True
        return False

    # --- reading requests in the loop --------------------------------------------------------
    def enqueue_req(self, conn: TConn) -> None:
        """Read the connection's next request in the loop; a thread takes it once it is whole.

        Every path to a thread comes here: a new connection, a kept-alive one that became
        readable, one whose previous request left bytes of the next in the parser's buffer.
        """
        if not self._reads_in_loop(conn):
            super().enqueue_req(conn)
            return
        intake = _Intake(conn, time.monotonic() + self.request_header_timeout)
        if isinstance(conn.parser, RequestParser):  # kept alive: may hold the next bytes
            intake.add(conn.parser.unreader.take_buffered())
        if intake.complete:
            self._dispatch(intake)
            return
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, intake))
        self._intakes.append(intake)

    def _reads_in_loop(self, conn: TConn) -> bool:
        """Plain HTTP/1 only: TLS and HTTP/2 prior knowledge keep gthread's own path."""
        return not (
            self.cfg.is_ssl
            or getattr(self.cfg, "protocol", "http") != "http"
            or conn.is_http2
            or negotiation.prior_knowledge_allowed(self.cfg, conn.client)
        )

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection's next request has begun: read it in the loop."""
        if conn not in self.keepalived_conns:  # closed by an earlier callback of this loop turn
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.enqueue_req(conn)

    def _on_readable(self, intake: _Intake, sock: socket.socket) -> None:
        if intake.ended:  # closed by an earlier callback of the same loop turn
            return
        try:
            chunk = sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client closed, or reset the connection
            self._intakes.remove(intake)
            self._end_intake(intake, None)
            return
        intake.add(chunk)
        if intake.headers_too_large:
            self._intakes.remove(intake)
            self._end_intake(intake, HEADERS_TOO_LARGE_RESPONSE)
        elif intake.complete:
            self._intakes.remove(intake)
            self.poller.unregister(sock)
            self._dispatch(intake)

    def _dispatch(self, intake: _Intake) -> None:
        """Hand a connection whose request is here to a thread, the bytes already read first."""
        conn = intake.conn
        data = bytes(intake.data)
        conn.data_ready = True  # gthread's handle() must not wait for data again
        future = self.tpool.submit(self._handle_read_request, conn, data)
        future.add_done_callback(
            lambda done: self.method_queue.defer(self.finish_request, conn, done)
        )

    def _handle_read_request(self, conn: TConn, data: bytes) -> Any:
        """In a thread: give the parser the bytes read in the loop, then serve as gthread does."""
        conn.sock.setblocking(True)
        conn.init()
        assert isinstance(conn.parser, RequestParser)  # plain HTTP/1 (see _reads_in_loop)
        conn.parser.unreader.unread(data)
        return self.handle(conn)

    def murder_pending(self) -> None:
        """gthread's expiry of deferred connections, and of requests past their deadline."""
        super().murder_pending()
        now = time.monotonic()
        while self._intakes and self._intakes[0].deadline <= now:
            intake = self._intakes.popleft()
            self._end_intake(intake, REQUEST_TIMEOUT_RESPONSE if intake.data else None)
            self._intake_counts["timed_out"] += 1
        self._keep_to_the_cap()
        self._log_intake_counts(now)

    def _end_intake(self, intake: _Intake, response: bytes | None) -> None:
        """Close a connection whose request never came whole, with ``response`` if any."""
        intake.ended = True
        self._forget(intake.conn)
        self.nr_conns -= 1
        if response is None:
            intake.conn.close()
        else:
            self._send_and_close(intake.conn.sock, response)

    def _forget(self, conn: TConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    @staticmethod
    def _send_and_close(sock: socket.socket, response: bytes) -> None:
        """Send a short response without blocking (it fits the socket's buffer) and close.

        What the client sent and nobody read is read first: closing a socket with unread bytes
        makes the kernel reset the connection, and a client's stack may then drop the answer.
        """
        try:
            sock.setblocking(False)
            sock.send(response)
            sock.shutdown(socket.SHUT_WR)
            for _ in range(UNREAD_DRAIN_READS):
                if not sock.recv(RECV_BYTES):
                    break
        except OSError:
            pass
        finally:
            sock.close()

    def _log_intake_counts(self, now: float) -> None:
        if now - self._intake_logged_at < INTAKE_LOG_SECONDS:
            return
        self._intake_logged_at = now
        if any(self._intake_counts.values()):
            self.log.warning(
                "connections closed before their request arrived whole: %d timed out after "
                "%gs, %d evicted and %d refused at the cap of %d (the last %ds)",
                self._intake_counts["timed_out"],
                self.request_header_timeout,
                self._intake_counts["evicted"],
                self._intake_counts["refused"],
                self.connection_cap,
                INTAKE_LOG_SECONDS,
            )
            self._intake_counts = dict.fromkeys(self._intake_counts, 0)

    # --- stopping ----------------------------------------------------------------------------
    def set_accept_enabled(self, enabled: bool | None) -> None:
        """As gthread's; when the worker is stopping, drain and close the listeners too."""
        stopping = not enabled and not self.alive
        if stopping:
            for listener in self.sockets:
                self._accept_queued(listener)
        super().set_accept_enabled(enabled)
        if stopping:
            for listener in self.sockets:
                listener.close()

    def _accept_queued(self, listener: socket.socket) -> None:
        """Accept until the listen queue is empty (the listener is non-blocking)."""
        while True:
            try:
                listener.getsockname()  # closed sockets raise: nothing left to take
                if not self.accept(listener):
                    return
            except OSError as error:
                if error.errno in (errno.EBADF, errno.ENOTSOCK, errno.EINVAL):
                    return
                raise
