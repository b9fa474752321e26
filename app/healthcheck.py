"""The container's HEALTHCHECK: ``python -m app.healthcheck`` exits 0 when /health answers 200.

The image has no curl, and a check written into the Dockerfile would hard-code the port; this
one asks the address the server listens on (BIND, read as the server reads it), with the
standard library only, so a check costs an interpreter start and one request. A wildcard
host is asked on loopback. Liveness only: /health never touches Redis or Neo4j.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys

from app.config import DEFAULT_BIND, ConfigError, read_bind

# The HEALTHCHECK's own timeout is 3 s: answer before it.
TIMEOUT_SECONDS = 2.0
_WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "[::]": "::1", "::": "::1"}


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the server's unix socket (BIND=unix:PATH)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def connection_for(bind: str, timeout: float = TIMEOUT_SECONDS) -> http.client.HTTPConnection:
    """A connection to the address ``bind`` (a valid BIND value) names."""
    if bind.startswith("unix:"):
        return _UnixConnection(bind.removeprefix("unix:"), timeout)
    host, _, port = bind.rpartition(":")
    host = _WILDCARDS.get(host, host)
    return http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout)


def check(bind: str) -> tuple[bool, str]:
    """(healthy, what was seen): healthy when GET /health answers 200."""
    connection = connection_for(bind)
    try:
        connection.request("GET", "/health", headers={"User-Agent": "slatesim-healthcheck"})
        status = connection.getresponse().status
    except OSError as error:
        return False, f"GET /health on {bind}: {error}"
    finally:
        connection.close()
    return status == 200, f"GET /health on {bind}: {status}"


def main() -> int:
    """Exit status for the container runtime: 0 healthy, 1 not."""
    try:
        bind = read_bind(os.environ.get("BIND", DEFAULT_BIND))
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    healthy, seen = check(bind)
    (sys.stdout if healthy else sys.stderr).write(f"{seen}\n")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
