"""The container's health check (app/healthcheck.py), against real HTTP servers on loopback.

Invariants: 0 only when GET /health answers 200 at the address BIND names (a wildcard host
asked on loopback, IPv6 and unix sockets included); 1 for any other status, a refused
connection, a server that never answers (within its timeout) or an invalid BIND.
"""

from __future__ import annotations

import http.server
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app import healthcheck


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(status: int, family: int = socket.AF_INET) -> Iterator[str]:
    """A server answering /health with ``status``; yields the BIND that reaches it."""
    handler = type("Handler", (_Health,), {"status": status})

    class Server(http.server.ThreadingHTTPServer):
        address_family = family

    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with Server((host, 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        try:
            yield f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        finally:
            server.shutdown()


def run(bind: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.healthcheck"],
        env={**os.environ, "BIND": bind},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_200_on_the_bound_port_is_healthy_as_the_image_runs_it():
    with serving(200) as bind:
        wildcard = "0.0.0.0:" + bind.rpartition(":")[2]  # the image's BIND
        result = run(wildcard)
    assert result.returncode == 0, result.stderr
    assert "200" in result.stdout


@pytest.mark.parametrize("status", [500, 503, 404])
def test_any_other_status_is_unhealthy(status):
    with serving(status) as bind:
        assert healthcheck.check(bind) == (False, f"GET /health on {bind}: {status}")
        assert run(bind).returncode == 1


def test_ipv6_and_a_wildcard_ipv6_host_are_asked_on_loopback():
    with serving(200, socket.AF_INET6) as bind:
        port = bind.rpartition(":")[2]
        assert healthcheck.check(bind)[0]
        assert healthcheck.check(f"[::]:{port}")[0]


def test_a_unix_socket_bind_is_asked_on_its_socket(tmp_path: Path):
    path = tmp_path / "gunicorn.sock"

    class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    class Handler(_Health):
        def address_string(self) -> str:
            return "unix"

    with Server(str(path), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            assert healthcheck.check(f"unix:{path}") == (True, f"GET /health on unix:{path}: 200")
        finally:
            server.shutdown()


def test_a_refused_connection_is_unhealthy():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        healthy, seen = healthcheck.check(f"127.0.0.1:{port}")
    assert not healthy and "refused" in seen.lower()


def test_a_server_that_never_answers_is_unhealthy_within_the_timeout():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts into the backlog, never reads or answers
        port = silent.getsockname()[1]
        result = run(f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert "timed out" in result.stderr


def test_an_invalid_bind_is_unhealthy_and_says_why():
    result = run("nonsense")
    assert result.returncode == 1
    assert "BIND='nonsense' is not valid" in result.stderr
