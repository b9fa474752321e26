"""A dependency that accepts connections and then stops answering must not freeze the service.

A proxy sits between a real gunicorn and the dependency. Neo4j's (``tests/support/frozen_bolt``)
drops every reply on open connections and answers new ones' handshake and login, then
nothing: a Neo4j in a long pause, a half-open connection behind a NAT. Redis's is Toxiproxy with
a ``timeout`` toxic (``timeout=0``) on the replies, connections kept open.
Invariants, checked from outside: every request ends within its deadline; the liveness probe
always answers; readiness blames the dependency that is frozen and no other; a job is handed
back within the deadline instead of staying running; the drain deadline holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.frozen_bolt import FrozenBolt
from tests.support.gunicorn import Gunicorn
from tests.support.http import Response
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 2
FROZEN_ENV = {"DEPENDENCY_TIMEOUT_SECONDS": str(DEADLINE_SECONDS), "WEB_CONCURRENCY": "1"}
SLATE = "nba-2026-11-28-main"
JOB = {"slate_id": SLATE, "scenario_count": 2000}


def timed(call: Callable[[], Response]) -> tuple[Response, float]:
    """A request and how long it took, in seconds."""
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def warm(server: Gunicorn) -> None:
    """Requests that leave logged-in connections in the pools, as in steady state.

    A Neo4j that has only just started can take longer than the dependency timeout over its
    first queries; the steady state starts with three answers in a row.
    """

    def three_in_a_row() -> bool:
        return all(
            server.request("GET", path).status == 200
            for _ in range(3)
            for path in (f"/slates/{SLATE}", "/ready")
        )

    wait_until(three_in_a_row, 60, what="the instance's pools warm")


@pytest.fixture
def frozen_neo4j(freezable_neo4j, gunicorn) -> Callable[..., tuple[Gunicorn, FrozenBolt]]:
    """Start an instance whose Neo4j goes through the proxy, warm it, then freeze Neo4j."""

    def start(**env: str) -> tuple[Gunicorn, FrozenBolt]:
        server = gunicorn(NEO4J_URI=freezable_neo4j.url(), **FROZEN_ENV, **env)
        warm(server)
        freezable_neo4j.freeze()
        return server, freezable_neo4j

    return start


def test_readiness_probes_under_a_frozen_neo4j_stay_bounded_and_blame_neo4j(frozen_neo4j):
    server, _ = frozen_neo4j(JOB_CONCURRENCY="0")
    for _ in range(20):
        response, elapsed = timed(lambda: server.request("GET", "/ready", timeout=10))
        assert elapsed < DEADLINE_SECONDS + 0.5, elapsed
        assert response.status == 503
        checks = response.body["checks"]
        assert checks["redis"]["status"] == "up", checks
        assert checks["neo4j"]["status"] == "down", checks


def test_slate_reads_under_a_frozen_neo4j_fail_fast_and_liveness_answers(frozen_neo4j):
    server, _ = frozen_neo4j(JOB_CONCURRENCY="0")
    with ThreadPoolExecutor(12) as pool:
        reads = [
            pool.submit(timed, lambda: server.request("GET", f"/slates/{SLATE}", timeout=30))
            for _ in range(12)
        ]
        time.sleep(0.3)  # the reads are in flight
        health, elapsed = timed(lambda: server.request("GET", "/health", timeout=10))
        assert health.status == 200 and elapsed < 1.0, elapsed
        outcomes = [read.result() for read in reads]
    for response, elapsed in outcomes:
        assert response.status == 503, response.body
        assert "retry-after" in response.headers
        assert elapsed < 5.0, elapsed


def test_a_job_on_a_frozen_neo4j_is_handed_back_within_the_deadline(frozen_neo4j):
    server, proxy = frozen_neo4j(JOB_LEASE_SECONDS="6", JOB_HEARTBEAT_SECONDS="0.5")
    job_id = server.request("POST", "/jobs", JOB).body["id"]
    longest, since, deadline = 0.0, None, time.monotonic() + 10
    while time.monotonic() < deadline:
        record = server.request("GET", f"/jobs/{job_id}").body
        now = time.monotonic()
        if record["state"] == "running":
            since = since or now
            longest = max(longest, now - since)
        else:
            since = None
        time.sleep(0.1)
    assert longest <= DEADLINE_SECONDS + 0.5 + 1.0, longest  # deadline, a heartbeat, a margin
    record = server.request("GET", f"/jobs/{job_id}").body
    assert record["state"] in ("pending", "running") and record["lost_attempts"] == 0
    proxy.thaw()  # Neo4j answers again: the job runs
    record = server.wait_for_job(job_id, {"complete", "failed"}, timeout=60)
    assert record["state"] == "complete" and record["lost_attempts"] == 0


def test_sigterm_with_a_job_on_a_frozen_neo4j_exits_within_the_drain_deadline(frozen_neo4j):
    server, _ = frozen_neo4j(SHUTDOWN_TIMEOUT_SECONDS="4")
    server.request("POST", "/jobs", JOB)
    server.request("GET", "/ready", timeout=10)  # a readiness check left waiting on Neo4j
    time.sleep(1)  # the job thread is waiting on Neo4j
    started = time.monotonic()
    server.terminate()
    assert server.wait_exit(30) == 0
    assert time.monotonic() - started < 4 + 2


def test_a_frozen_redis_gets_submissions_a_prompt_503_and_liveness_answers(
    redis_proxy, gunicorn, service_env
):
    server = gunicorn(
        REDIS_URL=redis_proxy.url_for(service_env["REDIS_URL"]), JOB_CONCURRENCY="0", **FROZEN_ENV
    )
    warm(server)
    redis_proxy.add_toxic("timeout", timeout=0)
    with ThreadPoolExecutor(12) as pool:
        posts = [
            pool.submit(timed, lambda: server.request("POST", "/jobs", JOB, timeout=30))
            for _ in range(12)
        ]
        time.sleep(0.3)
        health, elapsed = timed(lambda: server.request("GET", "/health", timeout=10))
        assert health.status == 200 and elapsed < 1.0, elapsed
        outcomes = [post.result() for post in posts]
    for response, elapsed in outcomes:
        assert response.status == 503, response.body
        assert response.body["error"]["code"] in ("store_unavailable", "dependency_unavailable")
        assert elapsed < DEADLINE_SECONDS + 0.5, elapsed
    ready = server.request("GET", "/ready", timeout=10).body
    assert ready["checks"]["redis"]["status"] == "down"
    assert ready["checks"]["neo4j"]["status"] == "up"


def test_liveness_is_never_held_by_a_frozen_dependency(frozen_neo4j):
    server, _ = frozen_neo4j(JOB_CONCURRENCY="0")
    stop = threading.Event()

    def keep_reading() -> None:
        while not stop.is_set():
            try:
                server.request("GET", f"/slates/{SLATE}", timeout=30)
            except OSError:  # the old behaviour: stuck past the client's timeout
                return

    readers = [threading.Thread(target=keep_reading) for _ in range(10)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(10):
            health, elapsed = timed(lambda: server.request("GET", "/health", timeout=10))
            assert health.status == 200 and elapsed < 1.0, elapsed
            time.sleep(0.2)
    finally:
        stop.set()
        for reader in readers:
            reader.join(30)
