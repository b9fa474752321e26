"""deploy/nginx.conf in front of a real gunicorn: request IDs, the client's address, bodies.

The test runs the shipped file itself, with only its listen port and upstream port moved to
free loopback ports, so a change to the example is a change to what is tested.
"""

from __future__ import annotations

import json
import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.balancers import Nginx
from tests.support.gunicorn import REPO_ROOT, Gunicorn
from tests.support.http import request
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NGINX_CONF = REPO_ROOT / "deploy" / "nginx.conf"
# The example's listen and upstream lines, each replaced by a free loopback port.
EXAMPLE_LISTEN = "listen 8080;"
EXAMPLE_UPSTREAM = "server 127.0.0.1:8000;"
# A loopback source other than nginx's own 127.0.0.1: the app can only learn it from nginx.
CLIENT_ADDRESS = "127.0.0.3"
# nginx's $request_id: 16 random bytes in hex.
NGINX_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
SMALL_JOB = {"slate_id": "nba-2026-11-28-main", "scenario_count": 500}
# The app's and the example's body limit (64 KiB).
BODY_LIMIT = 64 * 1024
# /proc/net/tcp state of an established connection.
TCP_ESTABLISHED = "01"


def render_config(upstream_port: int, listen_port: int) -> str:
    """deploy/nginx.conf with its listen and upstream moved to the given loopback ports."""
    text = NGINX_CONF.read_text()
    assert text.count(EXAMPLE_LISTEN) == 1, f"{NGINX_CONF} no longer has `{EXAMPLE_LISTEN}`"
    assert text.count(EXAMPLE_UPSTREAM) == 1, f"{NGINX_CONF} no longer has `{EXAMPLE_UPSTREAM}`"
    return text.replace(EXAMPLE_LISTEN, f"listen 127.0.0.1:{listen_port};").replace(
        EXAMPLE_UPSTREAM, f"server 127.0.0.1:{upstream_port};"
    )


def access_line(server: Gunicorn, request_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """The app's access log line of the request with this ID (gunicorn logs it just after)."""

    def find() -> dict[str, Any] | None:
        if not server.log_file.exists():
            return None
        for raw in server.log_file.read_text().splitlines():
            line = json.loads(raw)
            if line["logger"] == "gunicorn.access" and line.get("request_id") == request_id:
                return line
        return None

    return wait_until(find, timeout, what=f"the access line of request {request_id}")


def peers_of(port: int) -> set[str]:
    """Addresses of the established connections a local listener on ``port`` accepted."""
    peers = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == TCP_ESTABLISHED and int(local.split(":")[1], 16) == port:
            peers.add(socket.inet_ntoa(struct.pack("=I", int(remote.split(":")[0], 16))))
    return peers


@pytest.fixture
def proxied(gunicorn, tmp_path) -> Iterator[tuple[Gunicorn, Nginx]]:
    """gunicorn trusting one proxy, behind nginx run from the example configuration."""
    server = gunicorn(TRUSTED_PROXY_COUNT="1")
    port = free_port()
    nginx = Nginx(tmp_path / "nginx", render_config(server.port, port), port)
    try:
        yield server, nginx.start()
    finally:
        nginx.stop()


def test_without_a_request_id_nginx_makes_one_and_the_app_logs_it(proxied):
    server, nginx = proxied
    response = request(nginx.port, "GET", "/jobs?limit=1")
    assert response.status == 200
    request_id = response.headers["x-request-id"]
    assert NGINX_REQUEST_ID.match(request_id), request_id
    line = access_line(server, request_id)
    assert line["context"]["path"] == "/jobs" and line["context"]["status"] == 200
    wait_until(  # nginx writes its access line after the response
        lambda: any(
            json.loads(raw)["request_id"] == request_id
            for raw in nginx.access_log.read_text().splitlines()
        ),
        5,
        what="nginx's access line",
    )


def test_a_client_request_id_passes_through_nginx(proxied):
    server, nginx = proxied
    response = request(nginx.port, "GET", "/jobs?limit=1", headers={"X-Request-ID": "trace-42.a_b"})
    assert response.status == 200
    assert response.headers["x-request-id"] == "trace-42.a_b"
    assert access_line(server, "trace-42.a_b")["context"]["status"] == 200


def test_the_app_logs_the_client_address_not_nginxs(proxied):
    server, nginx = proxied
    plain = request(nginx.port, "GET", "/jobs?limit=1", source=CLIENT_ADDRESS)
    assert peers_of(server.port) == {"127.0.0.1"}  # gunicorn's peer is nginx, kept alive
    spoofed = request(
        nginx.port,
        "GET",
        "/jobs?limit=1",
        headers={"X-Forwarded-For": "203.0.113.9"},
        source=CLIENT_ADDRESS,
    )
    for response in (plain, spoofed):
        assert response.status == 200
        line = access_line(server, response.headers["x-request-id"])
        assert line["context"]["client"] == CLIENT_ADDRESS


def test_a_job_submitted_through_nginx_is_accepted_and_carries_the_request_id(proxied):
    server, nginx = proxied
    response = request(nginx.port, "POST", "/jobs", SMALL_JOB)
    assert response.status == 202, response.body
    record = server.wait_for_job(response.body["id"], {"complete", "failed"})
    assert record["state"] == "complete"
    assert record["request_id"] == response.headers["x-request-id"]


def test_bodies_up_to_the_limit_reach_the_app_and_larger_ones_get_413(proxied):
    _server, nginx = proxied
    padded = json.dumps({**SMALL_JOB, "padding": ""}).encode()
    filler = b"x" * (BODY_LIMIT - len(padded))
    at_limit = padded.replace(b'"padding": ""', b'"padding": "' + filler + b'"')
    assert len(at_limit) == BODY_LIMIT
    reached = request(nginx.port, "POST", "/jobs", raw_body=at_limit)
    assert reached.status == 400 and reached.body["error"]["field"] == "padding"
    too_large = request(nginx.port, "POST", "/jobs", raw_body=at_limit + b" ")
    assert too_large.status == 413


def test_probes_and_the_dashboard_are_served_to_the_internal_networks_only(proxied):
    # 127.0.0.1 stands for the balancer; 127.0.0.3 is outside the example's internal networks.
    _, nginx = proxied
    for path in ("/health", "/ready", "/dashboard", "/dashboard/jobs", "/dashboard/overview.json"):
        assert request(nginx.port, "GET", path).status == 200
        assert request(nginx.port, "GET", path, source=CLIENT_ADDRESS).status == 403
    cancel = "/dashboard/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/cancel"
    assert request(nginx.port, "POST", cancel, source=CLIENT_ADDRESS).status == 403
    assert request(nginx.port, "GET", "/jobs?limit=1", source=CLIENT_ADDRESS).status == 200
