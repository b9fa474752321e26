"""gunicorn's gthread worker, stopping its listeners without dropping a queued connection.

When a gthread worker stops, it stops polling its listening sockets and closes them only
after its in-flight requests are done. Connections that reach the listen queue meanwhile (a
balancer that has not noticed yet) completed their TCP handshake and sent their request, and
are reset when the socket closes: the balancer answers 502 and cannot retry a POST. This
worker, as it stops accepting, first takes every connection already queued (they are served
like any other) and then closes its listeners at once, so a later connection attempt is
refused, which every balancer retries on another server.
"""

from __future__ import annotations

import errno
import socket
from types import FrameType

from gunicorn.workers.gthread import ThreadWorker


class DrainingThreadWorker(ThreadWorker):
    """ThreadWorker whose shutdown accepts the listen queue, then closes the listeners."""

    def handle_quit(self, sig: int, frame: FrameType | None) -> None:
        """SIGINT/SIGQUIT while the worker boots, before app.lifecycle's handlers are in place.

        gthread's own handler shuts the thread pool down and raises SystemExit wherever the
        worker is; inside a thread start that surfaces as an exception, the boot fails (exit
        code 3) and the master halts. A Ctrl-C then should stop gracefully, as SIGTERM does.
        """
        self.handle_exit(sig, frame)

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
                before = self.nr_conns
                self.accept(listener)
            except OSError as error:
                if error.errno in (errno.EBADF, errno.ENOTSOCK, errno.EINVAL):
                    return
                raise
            if self.nr_conns == before:  # EAGAIN inside accept: the queue is empty
                return
