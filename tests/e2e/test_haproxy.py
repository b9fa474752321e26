"""deploy/haproxy.cfg in front of two real gunicorn instances: readiness routing and drains.

The instances share a Redis of this test's own, so stopping it takes both out of rotation
without touching the shared one. The test runs the shipped file with only its ports moved and
the admin socket it describes added, through which the test reads and sets server states.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.support.balancers import (
    EXAMPLE_HAPROXY_BACKEND,
    EXAMPLE_HAPROXY_CFG,
    EXAMPLE_HAPROXY_SERVERS,
    HAProxy,
    check_haproxy_config,
    render_example_haproxy,
)
from tests.support.gunicorn import Gunicorn
from tests.support.http import request
from tests.support.load import Submitters
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

EXAMPLE_SERVERS = EXAMPLE_HAPROXY_SERVERS
BACKEND = EXAMPLE_HAPROXY_BACKEND
SMALL_JOB = {"slate_id": "nba-2026-11-28-main", "scenario_count": 2000}
# A UUID: HAProxy's X-Request-ID when the client sent none.
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# The load client's pace and its bound on attempts of one logical submission.
SUBMIT_INTERVAL = 0.05
MAX_ATTEMPTS = 50


@dataclass
class Stack:
    """Two instances on a private Redis behind HAProxy; ``restart`` keeps an instance's port."""

    redis: RedisServer
    instances: dict[str, Gunicorn]
    haproxy: HAProxy
    start_instance: Callable[[int | None], Gunicorn]

    def restart(self, name: str, *, drain_first: bool) -> None:
        """One rolling-restart step: SIGTERM, a new instance on the same port, back in rotation.

        ``drain_first`` takes the instance out of HAProxy's rotation through the runtime API
        before the signal and puts the new one back after its checks pass, as
        deploy/haproxy.cfg describes; without it HAProxy learns of the restart by itself.
        """
        server = f"{BACKEND}/{name}"
        old = self.instances[name]
        if drain_first:
            self.haproxy.command(f"set server {server} state drain")
            self.haproxy.wait_for_servers(lambda rows: rows[name]["scur"] == "0", f"idle {name}")
        old.signal(signal.SIGTERM)
        assert old.wait_exit(60) == 0
        self.haproxy.wait_for_status({name: "DOWN"})
        self.instances[name] = self.start_instance(old.port)
        if drain_first:
            self.haproxy.wait_for_status({name: "DRAIN"})  # checks pass, still out of rotation
            self.haproxy.command(f"set server {server} state ready")
        self.haproxy.wait_for_status({name: "UP"})


@pytest.fixture
def stack(gunicorn, tmp_path) -> Iterator[Stack]:
    """The example HAProxy in front of two gunicorn instances sharing a private Redis."""
    redis_server = RedisServer(tmp_path / "redis")
    redis_server.directory.mkdir()
    redis_server.start()

    def start_instance(port: int | None = None) -> Gunicorn:
        return gunicorn(port=port, REDIS_URL=redis_server.url, TRUSTED_PROXY_COUNT="1")

    built: Stack | None = None
    try:
        instances = {name: start_instance() for name in EXAMPLE_SERVERS}
        ports = {name: instance.port for name, instance in instances.items()}
        port = free_port()
        haproxy = HAProxy(tmp_path / "haproxy", render_example_haproxy(port, ports), BACKEND, port)
        built = Stack(redis_server, instances, haproxy, start_instance)
        haproxy.start().wait_for_status(dict.fromkeys(EXAMPLE_SERVERS, "UP"))
        yield built
    finally:
        if built is not None:
            built.haproxy.stop()
            for instance in built.instances.values():
                instance.stop()  # before Redis goes, so their drain can still reach it
        redis_server.stop()


def test_the_example_configuration_is_valid_as_shipped():
    checked = check_haproxy_config(EXAMPLE_HAPROXY_CFG)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "WARNING" not in checked.stdout + checked.stderr


def test_requests_through_haproxy_reach_both_ready_instances(stack):
    assert request(stack.haproxy.port, "GET", "/ready").status == 200
    health = request(stack.haproxy.port, "GET", "/health")
    assert health.status == 200 and UUID.match(health.headers["x-request-id"])
    ids = [f"lb-spread-{n}" for n in range(4)]
    for request_id in ids:
        listed = request(
            stack.haproxy.port, "GET", "/jobs?limit=1", headers={"X-Request-ID": request_id}
        )
        assert listed.status == 200 and listed.headers["x-request-id"] == request_id
    marks = [f'"request_id": "{request_id}"' for request_id in ids]
    for instance in stack.instances.values():
        log_file = instance.log_file
        wait_until(  # gunicorn writes the access line just after the response
            partial(_logged_any, log_file, marks), 5, what=f"a request logged in {log_file.name}"
        )


def _logged_any(log_file: Path, marks: list[str]) -> bool:
    text = log_file.read_text()
    return any(mark in text for mark in marks)


def test_without_redis_both_instances_leave_rotation_and_return_with_it(stack):
    stack.redis.stop()
    stack.haproxy.wait_for_status(dict.fromkeys(EXAMPLE_SERVERS, "DOWN"))
    refused = request(stack.haproxy.port, "GET", "/health")
    assert refused.status == 503
    assert "retry-after" not in refused.headers and "x-request-id" not in refused.headers
    assert b"No server is available" in refused.body  # HAProxy's own page, not the app's
    stack.redis.start()
    stack.haproxy.wait_for_status(dict.fromkeys(EXAMPLE_SERVERS, "UP"))
    assert request(stack.haproxy.port, "GET", "/ready").status == 200


def rolling_restart_under_load(stack: Stack, *, drain_first: bool) -> Submitters:
    """Restart app1, then app2, while a client submits through HAProxy; the client."""
    load = Submitters(
        port=stack.haproxy.port,
        body=SMALL_JOB,
        clients=1,
        pause=SUBMIT_INTERVAL,
        retry_pause=0.1,
        max_attempts=MAX_ATTEMPTS,
        timeout=10,
        retry_connection_errors=False,
        key_prefix="rolling",
    )
    with load:
        time.sleep(0.5)
        for name in EXAMPLE_SERVERS:
            stack.restart(name, drain_first=drain_first)
            time.sleep(0.5)
    return load


def assert_every_accepted_job_completes_once(stack: Stack, load: Submitters) -> None:
    """Each logical submission made exactly one job, and every job completed."""
    assert len(load.acknowledged) > 20
    assert len(set(load.acknowledged.values())) == len(load.acknowledged)
    survivor = stack.instances["app2"]
    for job_id in load.acknowledged.values():
        assert survivor.wait_for_job(job_id, {"complete", "failed"})["state"] == "complete"
    stored, path = 0, "/jobs?limit=100"
    while path:
        page = request(stack.haproxy.port, "GET", path).body
        stored += len(page["jobs"])
        path = page["next_cursor"] and f"/jobs?limit=100&cursor={page['next_cursor']}"
    assert stored == len(load.acknowledged)


def test_a_drained_rolling_restart_shows_clients_only_retry_later_answers(stack):
    load = rolling_restart_under_load(stack, drain_first=True)
    assert not load.errors, load.errors
    assert_every_accepted_job_completes_once(stack, load)


def test_a_plain_sigterm_rolling_restart_loses_and_duplicates_no_submission(stack):
    # Without the drain step HAProxy learns of the restart from /ready; the lame duck serves
    # meanwhile, so the client sees nothing but 503 with Retry-After.
    load = rolling_restart_under_load(stack, drain_first=False)
    assert not load.errors, load.errors
    assert_every_accepted_job_completes_once(stack, load)
