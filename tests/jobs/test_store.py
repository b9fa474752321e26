"""The job store against the real Redis: atomic transitions, fencing, recovery, retention."""

from __future__ import annotations

import threading
import time
from collections import Counter

import redis

from app.jobs.ids import new_job_id
from app.jobs.store import KEY_PREFIX, JobState, JobStore

LEASE = 30.0
# Retention in the expiry tests: short enough to wait for, longer than the writes take.
SHORT_TTL_SECONDS = 2


def _claim(store: JobStore, worker: str = "host:1", lease: float = LEASE):
    return store.claim_next(worker=worker, instance="host:0", lease_seconds=lease)


def test_submitted_job_is_pending_with_its_params_and_ids(store, submit):
    job_id = submit(scenario_count=250, seed=11)
    job = store.get(job_id)
    record = job.to_dict()
    assert record["state"] == "pending"
    assert record["params"] == {"slate_id": "test-slate", "scenario_count": 250, "seed": 11}
    assert record["metadata"]["scenario_count"] == 250
    assert record["metadata"]["slate_id"] == "test-slate"
    assert (record["request_id"], record["user_id"]) == ("req-1", "alice")
    assert record["created_at"].endswith("Z") and record["expires_at"] > record["created_at"]
    assert record["started_at"] is None and "result" not in record
    assert store.queue_depth() == {"pending": 1, "running": 0}


def test_claims_are_first_in_first_out(store, submit):
    ids = [submit() for _ in range(5)]
    claimed = [_claim(store).id for _ in range(5)]
    assert claimed == ids
    assert _claim(store) is None


def test_claim_starts_an_attempt_and_takes_a_lease(store, submit):
    job_id = submit()
    job = _claim(store, worker="host:42")
    assert job.id == job_id and job.state is JobState.RUNNING and job.attempts == 1
    record = store.get(job_id).to_dict()
    assert record["state"] == "running" and record["started_at"] is not None
    assert record["metadata"]["worker"] == "host:42"
    assert store.queue_depth() == {"pending": 0, "running": 1}


def test_many_threads_claiming_at_once_run_every_job_exactly_once(store, submit):
    ids = {submit() for _ in range(300)}
    claims: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer(worker: int) -> None:
        start.wait()
        while (job := _claim(store, worker=f"host:{worker}")) is not None:
            with lock:
                claims[job.id] += 1

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(claims) == ids
    assert max(claims.values()) == 1


def test_completion_stores_the_result_atomically(store, submit):
    job_id = submit()
    job = _claim(store)
    assert store.mark_complete(job_id, job.attempts, '{"players": []}', duration_ms=12.5)
    record = store.get(job_id).to_dict()
    assert record["state"] == "complete"
    assert record["result"] == {"players": []}
    assert record["metadata"]["duration_ms"] == 12.5
    assert record["finished_at"] >= record["started_at"]
    assert store.queue_depth() == {"pending": 0, "running": 0}


def test_failure_records_a_stable_code(store, submit):
    job_id = submit()
    job = _claim(store)
    assert store.mark_failed(job_id, job.attempts, "slate_not_found", "no slate x", duration_ms=1)
    record = store.get(job_id).to_dict()
    assert record["state"] == "failed"
    assert record["error"] == {"code": "slate_not_found", "message": "no slate x"}


def test_a_stale_holder_cannot_overwrite_the_newer_attempt(store, submit):
    job_id = submit()
    stale = _claim(store, worker="host:1", lease=0.2)
    time.sleep(0.3)
    assert store.sweep(max_lost_attempts=3)[0].outcome == "requeued"
    fresh = _claim(store, worker="host:2")
    assert fresh.attempts == stale.attempts + 1
    assert store.mark_complete(job_id, fresh.attempts, '{"v": "new"}', duration_ms=1)
    assert not store.mark_complete(job_id, stale.attempts, '{"v": "stale"}', duration_ms=1)
    assert not store.mark_failed(job_id, stale.attempts, "boom", "stale", duration_ms=1)
    assert store.get(job_id).to_dict()["result"] == {"v": "new"}


def test_a_released_attempt_cannot_complete(store, submit):
    job_id = submit()
    job = _claim(store)
    assert store.release(job_id, job.attempts)
    assert not store.mark_complete(job_id, job.attempts, "{}", duration_ms=1)
    assert store.get(job_id).state is JobState.PENDING


def test_a_lapsed_lease_puts_the_job_back_first_in_line(store, submit):
    lost = submit()
    later = submit()
    _claim(store, lease=0.2)
    time.sleep(0.3)
    outcomes = store.sweep(max_lost_attempts=3)
    assert [(o.job_id, o.outcome) for o in outcomes] == [(lost, "requeued")]
    record = store.get(lost).to_dict()
    assert record["state"] == "pending" and record["lost_attempts"] == 1
    assert _claim(store).id == lost
    assert _claim(store).id == later


def test_a_live_lease_is_not_recovered(store, submit):
    submit()
    _claim(store, lease=30)
    assert store.sweep(max_lost_attempts=3) == []


def test_a_job_that_keeps_losing_its_worker_fails_with_worker_lost(store, submit):
    job_id = submit()
    for attempt in range(1, 4):
        assert _claim(store, lease=0.1).attempts == attempt
        time.sleep(0.2)
        store.sweep(max_lost_attempts=3)
    record = store.get(job_id).to_dict()
    assert record["state"] == "failed"
    assert record["error"]["code"] == "worker_lost"
    assert record["lost_attempts"] == 3
    assert _claim(store) is None


def test_renewing_keeps_the_lease_and_reports_lost_ones(store, submit):
    kept_id, lost_id = submit(), submit()
    kept, lost = _claim(store, lease=0.5), _claim(store, lease=0.5)
    assert store.release(lost_id, lost.attempts)
    for _ in range(3):
        time.sleep(0.25)
        assert store.renew_leases(
            [(kept_id, kept.attempts), (lost_id, lost.attempts)], lease_seconds=0.5
        ) == [lost_id]
    assert store.sweep(max_lost_attempts=3) == []
    assert store.get(kept_id).state is JobState.RUNNING


def test_release_instance_hands_back_only_that_instance(store, submit):
    mine, theirs = submit(), submit()
    store.claim_next(worker="a:1", instance="a:0", lease_seconds=LEASE)
    store.claim_next(worker="b:1", instance="b:0", lease_seconds=LEASE)
    assert store.release_instance("a:0") == [mine]
    assert store.get(mine).state is JobState.PENDING
    assert store.get(theirs).state is JobState.RUNNING


def test_idempotency_returns_the_original_or_a_conflict(store, make_params):
    first = store.submit(
        new_job_id(), make_params(), request_id="r1", user_id="u", idempotency=("key-1", "fp-a")
    )
    again = store.submit(
        new_job_id(), make_params(), request_id="r2", user_id="u", idempotency=("key-1", "fp-a")
    )
    other = store.submit(
        new_job_id(),
        make_params(seed=9),
        request_id="r3",
        user_id="u",
        idempotency=("key-1", "fp-b"),
    )
    other_user = store.submit(
        new_job_id(), make_params(), request_id="r4", user_id="v", idempotency=("key-1", "fp-a")
    )
    assert (again.status, again.job.id) == ("existing", first.job.id)
    assert (other.status, other.job.id) == ("conflict", first.job.id)
    assert other_user.status == "created" and other_user.job.id != first.job.id
    assert store.queue_depth()["pending"] == 2


def test_racing_identical_submissions_create_one_job(store, make_params):
    outcomes = []
    start = threading.Barrier(10)

    def submit() -> None:
        start.wait()
        outcomes.append(
            store.submit(
                new_job_id(),
                make_params(),
                request_id=None,
                user_id="u",
                idempotency=("race", "fp"),
            )
        )

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({o.job.id for o in outcomes}) == 1
    assert sorted(o.status for o in outcomes) == ["created"] + ["existing"] * 9


def test_listing_is_newest_first_and_paginated(store, submit):
    ids = [submit() for _ in range(5)]
    _claim(store)
    page, cursor = store.list_jobs(None, limit=2)
    assert [j.id for j in page] == ids[::-1][:2]
    page2, cursor2 = store.list_jobs(None, limit=2, after=cursor)
    assert [j.id for j in page2] == ids[::-1][2:4]
    page3, cursor3 = store.list_jobs(None, limit=2, after=cursor2)
    assert [j.id for j in page3] == ids[:1] and cursor3 is None
    running, _ = store.list_jobs(JobState.RUNNING, limit=10)
    pending, _ = store.list_jobs(JobState.PENDING, limit=10)
    assert [j.id for j in running] == ids[:1]
    assert [j.id for j in pending] == ids[::-1][:4]


def test_expired_jobs_leave_no_key_behind(redis_client: redis.Redis, submit, make_params):
    store = JobStore(redis_client, ttl_seconds=SHORT_TTL_SECONDS)
    done, failed, queued = (submit(store=store) for _ in range(3))
    job = _claim(store)
    assert store.mark_complete(done, job.attempts, "{}", duration_ms=1)
    job = _claim(store)
    assert store.mark_failed(failed, job.attempts, "x", "y", duration_ms=1)
    store.submit(new_job_id(), make_params(), request_id=None, user_id="u", idempotency=("k", "fp"))
    assert redis_client.exists(*(f"{KEY_PREFIX}job:{i}" for i in (done, failed, queued))) == 3
    time.sleep(SHORT_TTL_SECONDS + 0.2)
    store.sweep(max_lost_attempts=3)
    assert store.get(done) is None and store.get(queued) is None
    assert redis_client.keys(f"{KEY_PREFIX}*") == []


def test_redis_settings_that_can_lose_jobs_are_reported(store, redis_client):
    original = redis_client.config_get("maxmemory-policy")["maxmemory-policy"]
    try:
        redis_client.config_set("maxmemory-policy", "allkeys-lru")
        assert any("allkeys-lru" in w for w in store.durability_warnings())
    finally:
        redis_client.config_set("maxmemory-policy", original)
    assert not any("maxmemory-policy" in w for w in store.durability_warnings())
