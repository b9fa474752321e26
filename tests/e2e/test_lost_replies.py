"""Exactly once when Redis replies are lost: Toxiproxy between the service and Redis.

Redis runs every command it receives; a ``timeout`` toxic (``timeout=0``) on the downstream
stream drops the replies and keeps the connection open until the toxic is removed, when
Toxiproxy closes it; a ``latency`` toxic holds every reply. Either way redis-py times out or
sees the connection close, reconnects and sends the same command again: the command has run
once already. The invariants, checked from outside the service:
- every accepted job ends ``complete``, and ``job complete`` is logged once per job;
- a complete job is never seen in another state afterwards;
- no job is charged a lost attempt, since no worker died;
- the queue and the running set end empty.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis

from app.jobs.keys import (
    SHARD_COUNT,
    idempotency_digest,
    job_key,
    shard_of_idempotency,
    shard_of_job,
)
from app.jobs.store import JobStore
from tests.support.gunicorn import Gunicorn
from tests.support.http import Response
from tests.support.invariants import (
    COMPLETE,
    StateWatch,
    all_job_ids,
    count_by_job,
    log_lines,
    messages_of,
)
from tests.support.load import Submitters
from tests.support.redis_server import RedisServer
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SLATE = "nba-2026-11-28-showdown-bos-nyk"
QUICK_JOB = {"slate_id": SLATE, "scenario_count": 500}
# About a second of simulation on the full basketball slate: long enough to act mid-run.
SECOND_LONG_JOB = {"slate_id": "nba-2026-11-28-main", "scenario_count": 60_000}
# The clients' and the fault's clock: the timeout every Redis call of the service has.
TIMEOUT_SECONDS = 1
# The production defaults (timeout 3 s, lease 15 s, heartbeat and sweep 5 s) scaled by a third:
# a lease outlasts a few seconds of held replies, as it does in production.
FAULT_ENV = {
    "DEPENDENCY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    "JOB_LEASE_SECONDS": "5",
    "JOB_HEARTBEAT_SECONDS": "1.5",
    "JOB_SWEEP_SECONDS": "1.5",
}


def complete_lines(server: Gunicorn, job_id: str) -> int:
    """How many `job complete` lines the instance logged for the job."""
    return count_by_job(log_lines([server.log_file]), COMPLETE)[job_id]


def state_in_redis(redis_client: redis.Redis, job_id: str) -> str | None:
    """The job's state as Redis holds it right now."""
    return cast("str | None", redis_client.hget(job_key(job_id), "state"))


def submit_in_background(server: Gunicorn, body: dict[str, Any]) -> Callable[[], Response]:
    """POST /jobs from another thread; the returned call waits for and gives its response."""
    outcome: list[Response] = []
    thread = threading.Thread(target=lambda: outcome.append(server.request("POST", "/jobs", body)))
    thread.start()

    def response() -> Response:
        thread.join(30)
        assert outcome, "POST /jobs did not answer within 30 s"
        return outcome[0]

    return response


def newest_job_id(redis_client: redis.Redis, other_than: str) -> str | None:
    """The ID of the newest job Redis holds, unless it is ``other_than``."""
    newest = max(all_job_ids(redis_client), default=None)
    return newest if newest != other_than else None


def warm_up(server: Gunicorn) -> str:
    """One job submitted and run before the fault, so Redis has loaded every script and the
    instance holds pooled connections, as in steady state (a script Redis does not know yet
    answers NOSCRIPT, and that answer would be the lost reply). Its ID."""
    response = server.request("POST", "/jobs", QUICK_JOB)
    assert response.status == 202, response.body
    server.wait_for_job(response.body["id"], {"complete"}, timeout=30)
    return str(response.body["id"])


def test_a_lost_submit_reply_creates_one_job_that_runs_once(
    redis_proxy, gunicorn, redis_client, service_env
):
    worker = gunicorn(**FAULT_ENV)
    intake = gunicorn(
        REDIS_URL=redis_proxy.url_for(service_env["REDIS_URL"]), JOB_CONCURRENCY="0", **FAULT_ENV
    )
    warm_id = warm_up(intake)
    with redis_proxy.toxic("timeout", timeout=0):
        response = submit_in_background(intake, QUICK_JOB)
        job_id = wait_until(
            lambda: newest_job_id(redis_client, other_than=warm_id), 10, what="the submit to run"
        )
        # The job threads go on while the submit's reply is held: it runs to the end.
        wait_until(lambda: state_in_redis(redis_client, job_id) == "complete", 20, what="a run")
    # The toxic's removal closes the connection: redis-py sends the same submit again.
    submitted = response()
    assert submitted.status == 202, submitted.body
    assert submitted.body["id"] == job_id
    # A shard's queue is in submission order: had the re-sent submit queued the job again, it
    # would run again before a job submitted now to the same shard completes.
    same_shard = idempotency_keys_by_shard("lost-submit")[shard_of_job(job_id)]
    later = worker.request(
        "POST", "/jobs", QUICK_JOB, headers={"Idempotency-Key": same_shard}
    ).body["id"]
    worker.wait_for_job(later, {"complete"}, timeout=30)
    record = worker.request("GET", f"/jobs/{job_id}").body
    assert record["state"] == "complete" and record["attempts"] == 1
    assert complete_lines(worker, job_id) == 1
    assert len(all_job_ids(redis_client)) == 3  # the warm-up's, this one, the later


def idempotency_keys_by_shard(prefix: str) -> dict[int, str]:
    """An Idempotency-Key for each shard: the jobs they make land one in each shard."""
    keys: dict[int, str] = {}
    n = 0
    while len(keys) < SHARD_COUNT:
        key = f"{prefix}-{n}"
        keys.setdefault(shard_of_idempotency(idempotency_digest(None, key)), key)
        n += 1
    return keys


def test_a_lost_claim_reply_runs_the_claimed_job_without_a_lost_attempt(
    toxiproxy, gunicorn, tmp_path
):
    # A Redis of the test's own, database 0: a new connection sends its first command at once
    # (no SELECT), so the claim sent again while replies are dropped reaches Redis.
    server = RedisServer(tmp_path / "redis", persistent=False).start()
    redis_client = redis.Redis.from_url(server.url, decode_responses=True)
    redis_proxy = toxiproxy.proxy(f"redis-claim-{server.port}", server.port)
    try:
        worker = gunicorn(REDIS_URL=redis_proxy.url_for(server.url), **FAULT_ENV)
        intake = gunicorn(REDIS_URL=server.url, JOB_CONCURRENCY="0", **FAULT_ENV)
        warm_up(intake)
        with redis_proxy.toxic("timeout", timeout=0):
            # A job in every shard: whichever shard the worker's claim goes to takes one, and
            # the claim's reply is lost; it is sent again, with its token, until Redis answers.
            job_ids = [
                intake.request("POST", "/jobs", QUICK_JOB, headers={"Idempotency-Key": key}).body[
                    "id"
                ]
                for key in idempotency_keys_by_shard("lost-claim").values()
            ]
            wait_until(
                lambda: any(state_in_redis(redis_client, i) == "running" for i in job_ids),
                10,
                what="a claim",
            )
        for job_id in job_ids:
            record = intake.wait_for_job(job_id, {"complete", "failed"}, timeout=30)
            assert record["state"] == "complete"
            assert (record["attempts"], record["lost_attempts"]) == (1, 0)
        # A record turns complete before the worker writes its log line.
        wait_until(
            lambda: all(complete_lines(worker, i) for i in job_ids) or None,
            10,
            what="every job's complete line",
        )
        assert all(complete_lines(worker, i) == 1 for i in job_ids)
        worker.stop()
        intake.stop()
    finally:
        toxiproxy.call("DELETE", f"/proxies/{redis_proxy.name}")
        redis_client.close()
        server.stop()


def test_a_lost_finish_reply_is_recognised_as_the_attempts_own_result(
    redis_proxy, gunicorn, redis_client, service_env
):
    worker = gunicorn(REDIS_URL=redis_proxy.url_for(service_env["REDIS_URL"]), **FAULT_ENV)
    warm_up(worker)
    job_id = worker.request("POST", "/jobs", SECOND_LONG_JOB).body["id"]
    wait_until(lambda: state_in_redis(redis_client, job_id) == "running", 10, what="a claim")
    with redis_proxy.toxic("timeout", timeout=0):
        wait_until(lambda: state_in_redis(redis_client, job_id) == "complete", 30, what="a finish")
    wait_until(lambda: complete_lines(worker, job_id) or None, 10, what="the job complete line")
    record = worker.request("GET", f"/jobs/{job_id}").body
    assert record["state"] == "complete" and record["attempts"] == 1
    assert complete_lines(worker, job_id) == 1
    logged = messages_of(log_lines([worker.log_file]), job_id)
    assert not any("superseded" in message for message in logged)


@pytest.fixture
def state_watch(redis_client) -> Iterator[StateWatch]:
    """A StateWatch running in the background for the whole test."""
    with StateWatch(redis_client).running() as watch:
        yield watch


def test_replies_held_past_the_timeout_again_and_again_lose_and_duplicate_nothing(
    redis_proxy, gunicorn, redis_client, service_env, state_watch
):
    through_proxy = redis_proxy.url_for(service_env["REDIS_URL"])
    worker = gunicorn(REDIS_URL=through_proxy, JOB_CONCURRENCY="2", **FAULT_ENV)
    intake = gunicorn(REDIS_URL=through_proxy, JOB_CONCURRENCY="0", **FAULT_ENV)
    warm_up(intake)
    steady = Submitters(port=intake.port, body=QUICK_JOB, slow_after=TIMEOUT_SECONDS)
    with steady as clients:
        time.sleep(1)
        for _ in range(4):
            with redis_proxy.toxic("latency", latency=int(1500 * TIMEOUT_SECONDS)):
                time.sleep(3 * TIMEOUT_SECONDS)
            time.sleep(2)
    assert not clients.errors, clients.errors
    assert len(clients.acknowledged) > 10 and clients.held > 0 and clients.refusals
    job_ids = set(clients.acknowledged.values())
    assert len(job_ids) == len(clients.acknowledged), "two submissions share a job"
    for job_id in job_ids:
        record = intake.wait_for_job(job_id, {"complete", "failed"}, timeout=60)
        assert record["state"] == "complete", record
        assert record["lost_attempts"] == 0, record
    counts = collections.Counter({job_id: complete_lines(worker, job_id) for job_id in job_ids})
    assert set(counts.values()) == {1}, counts
    assert not state_watch.regressions, state_watch.regressions
    assert len(all_job_ids(redis_client)) == len(job_ids) + 1  # and the warm-up's
    depth = JobStore(redis_client, ttl_seconds=3600).queue_depth
    wait_until(lambda: depth() == {"pending": 0, "running": 0}, 10, what="an empty queue")
