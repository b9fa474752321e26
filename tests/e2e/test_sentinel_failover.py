"""Losing the Redis primary loses no acknowledged job: real Redis servers and sentinels.

Each test has its own topology (scripts/redis-ha.sh: a primary, two replicas, three
sentinels on loopback) and a real gunicorn with REDIS_URL=redis+sentinel://... and
REDIS_MIN_REPLICAS=1. The invariants: every job a client got a 202 or 200 for ends
``complete``, exactly once (one job per Idempotency-Key, one "job complete" line per job);
nothing acknowledged is lost when the primary's host dies (SIGKILL: nothing flushed) or when
the replicas are gone; the service finds each new primary without a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.support.gunicorn import Gunicorn
from tests.support.invariants import (
    COMPLETE,
    assert_acknowledged_jobs_complete_once,
    count_by_job,
)
from tests.support.load import Submitters
from tests.support.ports import free_port_block
from tests.support.redis_ha import HA_PORTS, RedisHA
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

JOB = {"slate_id": "nba-2026-11-28-showdown-bos-nyk", "scenario_count": 500}
SLOW_JOB = {"slate_id": "nfl-2026-11-29-main", "scenario_count": 300_000}
CLIENTS = 3
# As docs/operations.md advises with Sentinel: a breaker that retries the primary after 1 s,
# so an open breaker does not outlast the failover.
HA_ENV = {
    "REDIS_MIN_REPLICAS": "1",
    "DEPENDENCY_TIMEOUT_SECONDS": "2",
    "BREAKER_RESET_SECONDS": "1",
}
# What a client may see beyond the failover itself (the contract: 2 s), plus its own retry
# interval and the test's polling.
UNAVAILABLE_BEYOND_FAILOVER_SECONDS = 2.0 + 0.5


@pytest.fixture
def ha(tmp_path) -> Iterator[RedisHA]:
    topology = RedisHA(tmp_path / "redis-ha", free_port_block(HA_PORTS)).start()
    yield topology
    topology.stop()


@pytest.fixture
def instance(gunicorn, ha) -> Callable[..., Gunicorn]:
    """A gunicorn on the topology, with replica acknowledgement on."""

    def start(**env: str) -> Gunicorn:
        return gunicorn(REDIS_URL=ha.url, WEB_CONCURRENCY="2", **{**HA_ENV, **env})

    return start


def complete_lines(server: Gunicorn) -> dict[str, int]:
    """How many "job complete" lines each job has in the instance's output."""
    return count_by_job(server.json_lines(), COMPLETE)


def submitters(server: Gunicorn) -> Submitters:
    """Clients submitting steadily; a connection error is a failure here, not retried."""
    return Submitters(
        port=server.port,
        body=JOB,
        clients=CLIENTS,
        pause=0.05,
        timeout=10,
        retry_connection_errors=False,
        key_prefix="failover",
    )


@dataclass(frozen=True)
class Failover:
    """One kill under load: what the clients got, and how long things took."""

    load: Submitters
    failover_seconds: float  # the kill to a new primary that takes writes
    unavailable_seconds: float  # the kill to the first acknowledgement after a refusal


def kill_primary_under_load(ha: RedisHA, server: Gunicorn) -> Failover:
    """Submissions for 2 s, SIGKILL of the primary, 5 s more after the new one takes writes."""
    with submitters(server) as load:
        time.sleep(2)
        kill = ha.kill_primary()
        time.sleep(5)
    outcome = Failover(load, kill.failover_seconds, load.unavailable_after(kill.killed_at))
    logger.warning(  # for the report: pytest -rP shows it
        "acknowledged %d jobs, %d refusals; failover %.2f s, unavailable %.2f s",
        len(load.acknowledged),
        len(load.refusals),
        outcome.failover_seconds,
        outcome.unavailable_seconds,
    )
    return outcome


@pytest.mark.parametrize(
    "run", [0, pytest.param(1, marks=pytest.mark.long), pytest.param(2, marks=pytest.mark.long)]
)
def test_a_killed_primary_loses_no_acknowledged_job(ha, instance, run):
    server = instance()
    failover = kill_primary_under_load(ha, server)
    assert_acknowledged_jobs_complete_once([server], failover.load, at_least=21)
    beyond = failover.unavailable_seconds - failover.failover_seconds
    assert beyond <= UNAVAILABLE_BEYOND_FAILOVER_SECONDS, failover


def test_a_job_running_when_the_primary_dies_completes_once(ha, instance, store):
    server = instance()
    job = server.request("POST", "/jobs", SLOW_JOB)
    assert job.status == 202, job.body
    server.wait_for_job(job.body["id"], {"running"}, timeout=30)
    ha.kill_primary()
    record = server.wait_for_job(job.body["id"], {"complete", "failed"}, timeout=120)
    assert record["state"] == "complete", record
    assert complete_lines(server).get(job.body["id"]) == 1


def test_without_replicas_submissions_are_refused_and_nothing_acknowledged_is_lost(ha, instance):
    server = instance()
    before = [server.request("POST", "/jobs", JOB).body["id"] for _ in range(5)]
    primary = ha.primary()
    replicas = [port for port in ha.servers if port != primary]
    for port in replicas:
        ha.stop_server(port)
    started = time.monotonic()
    refused = server.request("POST", "/jobs", JOB, headers={"Idempotency-Key": "no-replica"})
    assert time.monotonic() - started < 2.0 + 1.0  # within the dependency deadline
    assert refused.status == 503 and "retry-after" in refused.headers
    assert "may" in refused.body["error"]["message"]  # the job may exist: retry with the key
    ready = server.request("GET", "/ready").body
    assert ready["replication"]["met"] is False
    ha.restart_stopped()
    retried = wait_until(
        lambda: (
            response
            if (
                response := server.request(
                    "POST", "/jobs", JOB, headers={"Idempotency-Key": "no-replica"}
                )
            ).status
            in (200, 202)
            else None
        ),
        30,
        what="a submission once a replica is back",
    )
    for job_id in (*before, retried.body["id"]):
        assert server.wait_for_job(job_id, {"complete", "failed"}, timeout=60)["state"] == (
            "complete"
        )


def test_the_old_primary_rejoins_as_a_replica_and_a_second_failover_works(ha, instance):
    server = instance()
    first = ha.kill_primary()
    ha.restart_stopped()
    ha.wait_for_role(first.old, "slave")
    ready = server.request("GET", "/ready").body
    assert ready["replication"]["role"] == "primary"
    failover = kill_primary_under_load(ha, server)  # the second failover
    assert ha.primary() != first.new
    assert_acknowledged_jobs_complete_once([server], failover.load, at_least=21)
