"""Slow clients straight to a real gunicorn at the production defaults, no proxy in front (as
in-cluster clients and the kubelet's probes reach a pod).

Invariants: while 200 connections send their request headers a few bytes at a time, every
liveness and readiness probe and a normal client's read of a job is answered within 1 s, for
30 s; every slow connection is answered 408 and closed at REQUEST_HEADER_TIMEOUT_SECONDS; and
above the connection cap, slow connections give way and probes are still served.
"""

from __future__ import annotations

import time

import pytest

from app.config import Settings
from app.sizing import default_workers, usable_cpus
from tests.support.gunicorn import Gunicorn
from tests.support.slow_clients import SlowClients
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLOW_CONNECTIONS = 200
PROBE_TIMEOUT_SECONDS = 1.0
PROBING_SECONDS = 30.0
HEADER_TIMEOUT_SECONDS = Settings.request_header_timeout_seconds  # the default
# The worker's loop looks at deadlines at least once a second.
DEADLINE_SLACK_SECONDS = 1.5
TIMED_OUT = "HTTP/1.1 408 Request Timeout"


def _probe_until(server: Gunicorn, paths: list[str], seconds: float) -> list[tuple[str, object]]:
    """Ask each path in turn for ``seconds``; every answer that was not a 200 within 1 s."""
    failures: list[tuple[str, object]] = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        for path in paths:
            started = time.monotonic()
            try:
                response = server.request("GET", path, timeout=PROBE_TIMEOUT_SECONDS)
                status: object = response.status if response.status == 200 else response.body
            except OSError as error:
                status = type(error).__name__
            elapsed = time.monotonic() - started
            if status != 200 or elapsed > PROBE_TIMEOUT_SECONDS:
                failures.append((path, status))
        time.sleep(0.2)
    return failures


def test_200_slow_header_connections_starve_no_probe_and_are_closed_at_the_deadline(gunicorn):
    server = gunicorn(WEB_CONCURRENCY=str(default_workers(usable_cpus())))
    submitted = server.request(
        "POST", "/jobs", {"slate_id": "nba-2026-11-28-main", "scenario_count": 1000}
    )
    assert submitted.status == 202, submitted.body
    job_path = f"/jobs/{submitted.body['id']}"
    slow = SlowClients(server.port, SLOW_CONNECTIONS).start()
    try:
        wait_until(lambda: slow.opened >= SLOW_CONNECTIONS, 10, what="the slow connections open")
        failures = _probe_until(server, ["/health", "/ready", job_path], PROBING_SECONDS)
    finally:
        slow.stop()
    assert failures == [], failures[:10]
    assert slow.statuses[TIMED_OUT] >= SLOW_CONNECTIONS, slow.statuses
    assert set(slow.statuses) == {TIMED_OUT}, slow.statuses
    assert min(slow.lifetimes) >= HEADER_TIMEOUT_SECONDS - 0.1, min(slow.lifetimes)
    assert max(slow.lifetimes) <= HEADER_TIMEOUT_SECONDS + DEADLINE_SLACK_SECONDS, max(
        slow.lifetimes
    )


def test_above_the_connection_cap_slow_connections_give_way_and_probes_are_served(gunicorn):
    cap = 32
    slow_connections = cap + cap // 2  # above the cap, below the hard limit of twice the cap
    server = gunicorn(WORKER_CONNECTIONS=str(cap), REQUEST_HEADER_TIMEOUT_SECONDS="60")
    slow = SlowClients(server.port, slow_connections).start()
    try:
        wait_until(lambda: slow.opened >= slow_connections, 10, what="the slow connections open")
        failures = _probe_until(server, ["/health", "/ready"], 5)
    finally:
        slow.stop()
    assert failures == [], failures[:10]
    # Those above the cap were closed once they had had half a second, and opened again.
    assert slow.statuses["HTTP/1.1 503 Service Unavailable"] >= slow_connections - cap
    assert set(slow.statuses) == {"HTTP/1.1 503 Service Unavailable"}, slow.statuses
