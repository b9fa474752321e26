"""Losing the Redis primary loses no acknowledged job: real Redis servers and sentinels.

Each test has its own topology (scripts/redis-ha.sh: a primary, two replicas, three
sentinels on loopback) and a real gunicorn with REDIS_URL=redis+sentinel://... and
REDIS_MIN_REPLICAS=1. The invariants: every job a client got a 202 or 200 for ends
``complete``, exactly once (one job per Idempotency-Key, one "job complete" line per job);
nothing acknowledged is lost when the primary's host dies (SIGKILL: nothing flushed) or when
the replicas are gone; the service finds each new primary without a restart.
"""

from __future__ import annotations

import http.client
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.gunicorn import Gunicorn
from tests.support.http import request
from tests.support.load import ClientThreads
from tests.support.redis_ha import RedisHA, free_port_block
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
    topology = RedisHA(tmp_path / "redis-ha", free_port_block()).start()
    yield topology
    topology.stop()


@pytest.fixture
def instance(gunicorn, ha) -> Callable[..., Gunicorn]:
    """A gunicorn on the topology, with replica acknowledgement on."""

    def start(**env: str) -> Gunicorn:
        return gunicorn(REDIS_URL=ha.url, WEB_CONCURRENCY="2", **{**HA_ENV, **env})

    return start


@dataclass
class Submitters(ClientThreads):
    """Clients submitting steadily, each logical submission retried with its own
    Idempotency-Key until it is acknowledged (202, or 200 for a replay)."""

    port: int
    acknowledged: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> job id
    refusals: list[tuple[float, int]] = field(default_factory=list)  # (when, status)
    accepted_at: list[float] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)

    def targets(self) -> list[Callable[[], None]]:
        return [self._run] * CLIENTS

    def _run(self) -> None:
        while not self.stop.is_set():
            key = f"failover-{uuid.uuid4().hex}"
            while True:  # one logical submission, finished even after stop is set
                try:
                    response = request(
                        self.port,
                        "POST",
                        "/jobs",
                        JOB,
                        headers={"Idempotency-Key": key},
                        timeout=10,
                    )
                except (OSError, http.client.HTTPException) as error:
                    self.errors.append(repr(error))
                    return
                if response.status in (200, 202):
                    self.acknowledged[key] = response.body["id"]
                    self.accepted_at.append(time.monotonic())
                    break
                if response.status != 503 or "retry-after" not in response.headers:
                    self.errors.append((response.status, response.body))
                    return
                self.refusals.append((time.monotonic(), response.status))
                time.sleep(0.2)
            time.sleep(0.05)

    def unavailable_after(self, moment: float) -> float:
        """Seconds from ``moment`` to the first acknowledgement after the first refusal."""
        refused = [when for when, _ in self.refusals if when >= moment]
        if not refused:
            return 0.0
        return min(when for when in self.accepted_at if when > refused[0]) - moment


def complete_lines(server: Gunicorn) -> dict[str, int]:
    """How many "job complete" lines each job has in the instance's output."""
    counts: dict[str, int] = {}
    for line in server.json_lines():
        if line.get("message") == "job complete":
            counts[line["job_id"]] = counts.get(line["job_id"], 0) + 1
    return counts


def assert_every_acknowledged_job_completes_once(server: Gunicorn, load: Submitters) -> None:
    assert not load.errors, load.errors[:5]
    ids = list(load.acknowledged.values())
    assert len(ids) > 20, len(ids)
    assert len(set(ids)) == len(ids)  # one job per logical submission
    for job_id in ids:
        record = server.wait_for_job(job_id, {"complete", "failed"}, timeout=120)
        assert record["state"] == "complete", record
    counts = complete_lines(server)
    assert all(counts.get(job_id) == 1 for job_id in ids), {
        job_id: counts.get(job_id) for job_id in ids if counts.get(job_id) != 1
    }


@dataclass(frozen=True)
class Failover:
    """One kill under load: what the clients got, and how long things took."""

    load: Submitters
    failover_seconds: float  # the kill to a new primary that takes writes
    unavailable_seconds: float  # the kill to the first acknowledgement after a refusal


def kill_primary_under_load(ha: RedisHA, server: Gunicorn) -> Failover:
    """Submissions for 2 s, SIGKILL of the primary, 5 s more after the new one takes writes."""
    with Submitters(server.port) as load:
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
    assert_every_acknowledged_job_completes_once(server, failover.load)
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
    assert_every_acknowledged_job_completes_once(server, failover.load)
