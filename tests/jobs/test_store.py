"""The job store against the real Redis: atomic transitions, fencing, recovery, retention."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import redis

from app.correlation import new_id
from app.jobs.ids import new_job_id
from app.jobs.job import Job, JobState
from app.jobs.keys import (
    SHARDS,
    index_name,
    job_key,
    result_key,
    shard_key,
    submission_shard,
)
from app.jobs.outcomes import (
    CancelStatus,
    ClaimStatus,
    NewJob,
    SubmitStatus,
    Transition,
)
from app.jobs.shards import ReplicationUnconfirmed
from app.jobs.store import CLAIM_SKIP_LIMIT, FINISHED_COUNTS_KEEP_MS, SWEEP_BATCH, JobStore
from tests.support.results import claim_any

LEASE = 30.0
SUPERSEDED = Transition.SUPERSEDED
# Retention in the expiry tests: short enough to wait for, longer than the writes take.
SHORT_TTL_SECONDS = 2


# The jobs of these tests are minted for shard 0 (the submit_to_store fixture): FIFO holds
# within a shard, and these are the tests of one shard's scripts.
SHARD = 0


def _claim_any(store: JobStore, worker: str = "host:1", lease: float = LEASE) -> Job | None:
    """The job a claim under a new token took, or None when there was none to take."""
    return claim_any(store, worker=worker, instance="host:0", lease_seconds=lease).job


def _id_for_key(user_id: str, key: str) -> str:
    """A job ID of the shard of a user's Idempotency-Key, as the service mints it."""
    return new_job_id(shard=submission_shard(user_id, key))


def _sweep(store: JobStore, max_lost_attempts: int = 3):
    return store.sweep(SHARDS, max_lost_attempts=max_lost_attempts)


def _claim(store: JobStore, worker: str = "host:1", lease: float = LEASE) -> Job:
    """The job a claim under a new token took; the test expects one to be pending."""
    job = _claim_any(store, worker, lease)
    assert job is not None, "no job to claim"
    return job


def test_submitted_job_is_pending_with_its_params_and_ids(store, submit_to_store):
    job_id = submit_to_store(scenario_count=250, seed=11)
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


def test_claims_are_first_in_first_out(store, submit_to_store):
    ids = [submit_to_store() for _ in range(5)]
    claimed = [_claim(store).id for _ in range(5)]
    assert claimed == ids
    assert _claim_any(store) is None


def test_claim_starts_an_attempt_and_takes_a_lease(store, submit_to_store):
    job_id = submit_to_store()
    job = _claim(store, worker="host:42")
    assert job.id == job_id and job.state is JobState.RUNNING and job.attempts == 1
    record = store.get(job_id).to_dict()
    assert record["state"] == "running" and record["started_at"] is not None
    assert record["metadata"]["worker"] == "host:42"
    assert store.queue_depth() == {"pending": 0, "running": 1}


def test_many_threads_claiming_at_once_run_every_job_exactly_once(store, submit_to_store):
    ids = {submit_to_store() for _ in range(300)}
    claims: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claimer(worker: int) -> None:
        start.wait()
        while (job := _claim_any(store, worker=f"host:{worker}")) is not None:
            with lock:
                claims[job.id] += 1

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(claims) == ids
    assert max(claims.values()) == 1


def test_completion_stores_the_result_atomically(store, submit_to_store):
    job_id = submit_to_store()
    job = _claim(store)
    applied = store.mark_complete(job_id, job.claim_token, '{"players": []}', duration_ms=12.5)
    assert applied is Transition.APPLIED
    record = store.get(job_id).to_dict()
    assert record["state"] == "complete"
    assert record["result"] == {"players": []}
    assert record["metadata"]["duration_ms"] == 12.5
    assert record["finished_at"] >= record["started_at"]
    assert store.queue_depth() == {"pending": 0, "running": 0}


def test_failure_records_a_stable_code(store, submit_to_store):
    job_id = submit_to_store()
    job = _claim(store)
    failed = store.mark_failed(job_id, job.claim_token, "slate_not_found", "no x", duration_ms=1)
    assert failed is Transition.APPLIED
    record = store.get(job_id).to_dict()
    assert record["state"] == "failed"
    assert record["error"] == {"code": "slate_not_found", "message": "no x"}


def test_a_stale_holder_cannot_overwrite_the_newer_attempt(store, submit_to_store, redis_client):
    job_id = submit_to_store()
    stale = _claim(store, worker="host:1", lease=0.2)
    time.sleep(0.3)
    assert _sweep(store, 3).recovered[0].outcome == "requeued"
    fresh = _claim(store, worker="host:2")
    assert fresh.attempts == stale.attempts + 1 and fresh.claim_token != stale.claim_token
    new, old = fresh.claim_token, stale.claim_token
    assert store.mark_complete(job_id, new, '{"v": "new"}', duration_ms=1) is Transition.APPLIED
    assert store.mark_complete(job_id, old, '{"v": "stale"}', duration_ms=1) is SUPERSEDED
    assert store.mark_failed(job_id, old, "boom", "stale", duration_ms=1) is SUPERSEDED
    assert store.get(job_id).to_dict()["result"] == {"v": "new"}
    assert redis_client.keys("slatesim:*result:*:*") == []  # no staged result left behind


def test_a_released_attempt_cannot_complete(store, submit_to_store):
    job_id = submit_to_store()
    job = _claim(store)
    assert store.release(job_id, job.claim_token) is Transition.APPLIED
    assert store.mark_complete(job_id, job.claim_token, "{}", duration_ms=1) is SUPERSEDED
    assert store.get(job_id).state is JobState.PENDING


def test_a_lapsed_lease_puts_the_job_back_first_in_line(store, submit_to_store):
    lost = submit_to_store()
    later = submit_to_store()
    _claim(store, lease=0.2)
    time.sleep(0.3)
    outcomes = _sweep(store, 3).recovered
    assert [(o.job_id, o.outcome) for o in outcomes] == [(lost, "requeued")]
    record = store.get(lost).to_dict()
    assert record["state"] == "pending" and record["lost_attempts"] == 1
    assert _claim(store).id == lost
    assert _claim(store).id == later


def test_a_live_lease_is_not_recovered(store, submit_to_store):
    submit_to_store()
    _claim(store, lease=30)
    assert _sweep(store, 3).recovered == []


def test_a_job_that_keeps_losing_its_worker_fails_with_worker_lost(store, submit_to_store):
    job_id = submit_to_store()
    for attempt in range(1, 4):
        assert _claim(store, lease=0.1).attempts == attempt
        time.sleep(0.2)
        _sweep(store, 3)
    record = store.get(job_id).to_dict()
    assert record["state"] == "failed"
    assert record["error"]["code"] == "worker_lost"
    assert record["lost_attempts"] == 3
    assert _claim_any(store) is None


def test_renewing_keeps_the_lease_and_reports_lost_ones(store, submit_to_store):
    kept_id, lost_id = submit_to_store(), submit_to_store()
    kept, lost = _claim(store, lease=0.5), _claim(store, lease=0.5)
    assert store.release(lost_id, lost.claim_token) is Transition.APPLIED
    for _ in range(3):
        time.sleep(0.25)
        renewed = store.renew_leases(
            [(kept_id, kept.claim_token, None), (lost_id, lost.claim_token, None)],
            lease_seconds=0.5,
        )
        assert (renewed.lost, renewed.cancel_requested) == ([lost.claim_token], [])
    assert _sweep(store, 3).recovered == []
    assert store.get(kept_id).state is JobState.RUNNING


def test_release_instance_hands_back_only_that_instance(store, submit_to_store):
    mine, theirs = submit_to_store(), submit_to_store()
    store.claim_next(new_id(), shard=SHARD, worker="a:1", instance="a:0", lease_seconds=LEASE)
    store.claim_next(new_id(), shard=SHARD, worker="b:1", instance="b:0", lease_seconds=LEASE)
    assert store.release_instance("a:0") == [mine]
    assert store.get(mine).state is JobState.PENDING
    assert store.get(theirs).state is JobState.RUNNING


def test_idempotency_returns_the_original_or_a_conflict(store, make_params):
    first = store.submit(
        _id_for_key("u", "key-1"),
        make_params(),
        request_id="r1",
        user_id="u",
        idempotency=("key-1", "fp-a"),
    )
    again = store.submit(
        _id_for_key("u", "key-1"),
        make_params(),
        request_id="r2",
        user_id="u",
        idempotency=("key-1", "fp-a"),
    )
    other = store.submit(
        _id_for_key("u", "key-1"),
        make_params(seed=9),
        request_id="r3",
        user_id="u",
        idempotency=("key-1", "fp-b"),
    )
    other_user = store.submit(
        _id_for_key("v", "key-1"),
        make_params(),
        request_id="r4",
        user_id="v",
        idempotency=("key-1", "fp-a"),
    )
    assert (again.status, again.job.id) == ("existing", first.job.id)
    assert (other.status, other.job.id) == ("conflict", first.job.id)
    assert other_user.status == "created" and other_user.job.id != first.job.id
    assert store.queue_depth()["pending"] == 2


def test_racing_identical_submissions_create_one_job(store, make_params):
    outcomes = []
    start = threading.Barrier(10)

    def submit_once() -> None:
        start.wait()
        outcomes.append(
            store.submit(
                _id_for_key("u", "race"),
                make_params(),
                request_id=None,
                user_id="u",
                idempotency=("race", "fp"),
            )
        )

    threads = [threading.Thread(target=submit_once) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({o.job.id for o in outcomes}) == 1
    assert sorted(o.status for o in outcomes) == ["created"] + ["existing"] * 9


def test_listing_is_newest_first_and_paginated(store, submit_to_store):
    ids = [submit_to_store() for _ in range(5)]
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


def test_expired_jobs_leave_no_key_behind(redis_client: redis.Redis, submit_to_store, make_params):
    store = JobStore(redis_client, ttl_seconds=SHORT_TTL_SECONDS)
    done, failed, queued = (submit_to_store(store=store) for _ in range(3))
    job = _claim(store)
    assert store.mark_complete(done, job.claim_token, "{}", duration_ms=1) is Transition.APPLIED
    job = _claim(store)
    assert store.mark_failed(failed, job.claim_token, "x", "y", duration_ms=1) is Transition.APPLIED
    store.submit(
        _id_for_key("u", "k"), make_params(), request_id=None, user_id="u", idempotency=("k", "fp")
    )
    assert redis_client.exists(*(job_key(i) for i in (done, failed, queued))) == 3
    time.sleep(SHORT_TTL_SECONDS + 0.2)
    _sweep(store, 3)
    assert store.get(done) is None and store.get(queued) is None
    # Only the per-minute counts of finished jobs remain, and they expire by themselves.
    left = redis_client.keys("slatesim:*")
    assert sorted(left) == [
        shard_key(SHARD, "finished:complete"),
        shard_key(SHARD, "finished:failed"),
    ]
    assert all(0 < redis_client.pttl(key) <= FINISHED_COUNTS_KEEP_MS for key in left)


# --- every transition sent twice: what a lost reply and redis-py's re-send do -----------------
def test_a_resent_submit_returns_the_stored_job_and_rewrites_nothing(store, make_params):
    job_id = new_job_id(shard=SHARD)
    assert store.submit(job_id, make_params(), request_id="r", user_id="u").status == "created"
    job = _claim(store)
    store.mark_complete(job_id, job.claim_token, '{"v": 1}', duration_ms=1)
    again = store.submit(job_id, make_params(), request_id="r", user_id="u")
    assert again.status is SubmitStatus.RESENT and again.status.created_now
    assert again.job.state is JobState.COMPLETE and again.job.attempts == 1
    assert store.get(job_id).to_dict()["result"] == {"v": 1}
    assert store.queue_depth() == {"pending": 0, "running": 0}


def test_a_resent_submit_with_an_idempotency_key_is_its_own_creation(store, make_params):
    job_id = _id_for_key("u", "order-9")
    key = ("order-9", "fp")
    store.submit(job_id, make_params(), request_id="r", user_id="u", idempotency=key)
    again = store.submit(job_id, make_params(), request_id="r", user_id="u", idempotency=key)
    assert (again.status, again.job.id) == (SubmitStatus.RESENT, job_id)
    assert store.queue_depth()["pending"] == 1


def test_a_resent_claim_returns_the_job_its_token_took_and_takes_no_second(store, submit_to_store):
    first, second = submit_to_store(), submit_to_store()
    token = new_id()
    claimed = store.claim_next(token, shard=SHARD, worker="w:1", instance="i", lease_seconds=LEASE)
    again = store.claim_next(token, shard=SHARD, worker="w:1", instance="i", lease_seconds=LEASE)
    assert claimed.job.id == again.job.id == first
    assert again.status is ClaimStatus.CLAIMED and again.job.attempts == 1
    assert store.get(second).state is JobState.PENDING
    assert store.queue_depth() == {"pending": 1, "running": 1}


def test_a_resent_claim_after_its_attempt_was_recovered_takes_nothing(store, submit_to_store):
    job_id = submit_to_store()
    token = new_id()
    store.claim_next(token, shard=SHARD, worker="w:1", instance="i", lease_seconds=0.1)
    time.sleep(0.2)
    _sweep(store, 3)
    again = store.claim_next(token, shard=SHARD, worker="w:1", instance="i", lease_seconds=LEASE)
    assert again.status is ClaimStatus.LOST and again.job is None
    assert store.get(job_id).state is JobState.PENDING


def test_a_resent_finish_is_recognised_as_already_applied(store, submit_to_store, redis_client):
    job_id = submit_to_store()
    job = _claim(store)
    assert store.mark_complete(job_id, job.claim_token, "{}", duration_ms=1) is Transition.APPLIED
    again = store.mark_complete(job_id, job.claim_token, "{}", duration_ms=1)
    assert again is Transition.ALREADY_APPLIED and again.stored
    assert redis_client.keys("slatesim:*result:*:*") == []
    failed_id = submit_to_store()
    job = _claim(store)
    store.mark_failed(failed_id, job.claim_token, "x", "y", duration_ms=1)
    assert store.mark_failed(failed_id, job.claim_token, "x", "y", duration_ms=1).stored


def test_a_finish_after_the_sweep_failed_the_job_is_not_taken_for_its_own(store, submit_to_store):
    job_id = submit_to_store()
    job = _claim(store, lease=0.1)
    time.sleep(0.2)
    _sweep(store, 1)  # worker_lost at once
    assert store.get(job_id).to_dict()["error"]["code"] == "worker_lost"
    assert store.mark_failed(job_id, job.claim_token, "x", "late", duration_ms=1) is SUPERSEDED


def test_a_resent_release_is_recognised_as_already_applied(store, submit_to_store):
    job_id = submit_to_store()
    job = _claim(store)
    assert store.release(job_id, job.claim_token) is Transition.APPLIED
    assert store.release(job_id, job.claim_token) is Transition.ALREADY_APPLIED
    assert store.queue_depth() == {"pending": 1, "running": 0}


def test_a_resent_hand_back_of_an_instance_returns_the_same_jobs(store, submit_to_store):
    mine = submit_to_store()
    store.claim_next(new_id(), shard=SHARD, worker="a:1", instance="a", lease_seconds=LEASE)
    assert store.release_instance("a") == [mine]
    assert store.release_instance("a") == [mine]
    assert store.queue_depth() == {"pending": 1, "running": 0}


def test_a_handed_back_job_keeps_its_place_in_the_queue(store, submit_to_store):
    older, newer = submit_to_store(), submit_to_store()
    job = _claim(store)
    store.release(older, job.claim_token)
    assert _claim(store).id == older
    assert _claim(store).id == newer


# --- the queue at any length: claims and sweeps stay bounded -----------------------------------
def test_a_claim_behind_many_expired_entries_drops_a_batch_and_says_busy(
    redis_client, submit_to_store, make_params
):
    short = JobStore(redis_client, ttl_seconds=1)
    short.submit_many(
        NewJob(new_job_id(shard=SHARD), make_params()) for _ in range(CLAIM_SKIP_LIMIT * 2 + 1)
    )
    time.sleep(1.2)
    live = submit_to_store()  # the test's store: an hour of retention
    statuses = [
        short.claim_next(
            new_id(), shard=SHARD, worker="w", instance="i", lease_seconds=LEASE
        ).status
        for _ in range(3)
    ]
    assert statuses == [ClaimStatus.BUSY, ClaimStatus.BUSY, ClaimStatus.CLAIMED]
    assert redis_client.zcard(shard_key(SHARD, index_name(JobState.PENDING))) == 0
    assert redis_client.zcard(shard_key(SHARD, index_name(None))) == 1 and live


def test_a_sweep_says_when_a_batch_was_full_and_catches_up_in_calls(redis_client, make_params):
    short = JobStore(redis_client, ttl_seconds=1)
    short.submit_many(
        NewJob(new_job_id(shard=SHARD), make_params()) for _ in range(SWEEP_BATCH + 10)
    )
    time.sleep(1.2)
    assert _sweep(short, 3).more
    assert not _sweep(short, 3).more
    assert short.queue_depth() == {"pending": 0, "running": 0}
    assert redis_client.keys("slatesim:*") == []


# --- results of earlier versions ------------------------------------------------------------
def test_a_result_written_by_the_previous_version_inside_the_record_is_still_served(
    store, redis_client, submit_to_store
):
    job_id = submit_to_store()
    job = _claim(store)
    store.mark_complete(job_id, job.claim_token, "{}", duration_ms=1)
    redis_client.delete(result_key(job_id))
    redis_client.hset(job_key(job_id), "result", '{"old": true}')
    assert store.get(job_id).to_dict()["result"] == {"old": True}


def test_a_pipelined_transition_after_redis_forgot_its_scripts_loads_them_and_applies_once(
    store, redis_client, submit_to_store
):
    job_id = submit_to_store()
    job = _claim(store)
    redis_client.script_flush()  # what a Redis restart does to the script cache
    assert store.mark_complete(job_id, job.claim_token, '{"v": 1}', duration_ms=1).stored
    assert store.get(job_id).to_dict()["result"] == {"v": 1}
    assert redis_client.keys("slatesim:*result:*:*") == []


def test_an_acknowledged_transition_unconfirmed_by_replicas_raises_and_may_exist(
    redis_client, store
):
    # The test Redis has no replica: WAIT 1 answers 0 after its timeout. The write itself is
    # on the primary, which is why a refused submission "may exist".
    acknowledged = JobStore(redis_client, ttl_seconds=3600, min_replicas=1, wait_timeout_ms=50)
    job_id = new_job_id()
    params = {"slate_id": "s", "scenario_count": 1, "seed": 1}
    started = time.monotonic()
    with pytest.raises(ReplicationUnconfirmed, match="0 of 1 replicas"):
        acknowledged.submit(job_id, params, request_id=None, user_id=None)
    assert time.monotonic() - started < 1.0
    assert store.get(job_id) is not None
    job = _claim(store)
    for finish in (
        lambda: acknowledged.mark_complete(job.id, job.claim_token, "{}", duration_ms=1),
        lambda: acknowledged.release(job.id, job.claim_token),
        lambda: acknowledged.release_instance("i"),
    ):
        with pytest.raises(ReplicationUnconfirmed):
            finish()
    # Without replica acknowledgement the same store answers as before.
    assert store.mark_complete(job.id, job.claim_token, "{}", duration_ms=1).stored


def test_progress_rides_on_the_renewal_and_only_moves_forward_within_an_attempt(
    store, submit_to_store
):
    job_id = submit_to_store(scenario_count=1000)
    assert store.get(job_id).to_dict()["progress"] is None  # pending
    job = _claim(store)
    assert store.get(job_id).to_dict()["progress"]["scenarios_done"] == 0
    for done, shown in ((200, 200), (100, 200), (600, 600)):  # a late, lower report is ignored
        store.renew_leases([(job_id, job.claim_token, done)], lease_seconds=LEASE)
        progress = store.get(job_id).to_dict()["progress"]
        assert (progress["scenarios_done"], progress["fraction"]) == (shown, shown / 1000)
    assert store.release(job_id, job.claim_token) is Transition.APPLIED
    again = _claim(store)  # a new attempt starts from zero, whatever the old one reported
    assert store.get(job_id).to_dict()["progress"]["scenarios_done"] == 0
    assert store.mark_complete(job_id, again.claim_token, "{}", duration_ms=1).stored
    assert "progress" not in store.get(job_id).to_dict()


def test_cancel_fails_a_pending_job_at_once_and_marks_a_running_one(store, submit_to_store):
    pending = submit_to_store()
    assert store.cancel(pending, user_id="bob", message="m").status is CancelStatus.CANCELLED
    record = store.get(pending).to_dict()
    assert record["state"] == "failed" and record["error"]["code"] == "cancelled"
    assert record["cancelled_by"] == "bob" and store.queue_depth()["pending"] == 0
    assert store.cancel(pending, user_id="bob", message="m").status is CancelStatus.ALREADY
    running_id = submit_to_store()
    job = _claim(store)
    assert store.cancel(running_id, user_id=None, message="m").status is CancelStatus.REQUESTED
    renewed = store.renew_leases([(running_id, job.claim_token, 10)], lease_seconds=LEASE)
    assert renewed.cancel_requested == [job.claim_token]
    assert store.mark_complete(running_id, job.claim_token, "{}", duration_ms=1).stored
    assert store.cancel(running_id, user_id=None, message="m").status is CancelStatus.FINISHED
    assert store.cancel(new_job_id(), user_id=None, message="m").status is CancelStatus.MISSING


@pytest.mark.parametrize("way_back", ["hand-back", "lease recovery", "instance hand-back"])
def test_a_job_cancelled_while_running_that_comes_back_is_failed_by_the_claim_never_run(
    store, submit_to_store, way_back
):
    """Invariant: a 202 to a cancel is kept, whatever brings the job back to the queue."""
    cancelled_id, following = submit_to_store(), submit_to_store()
    job = store.claim_next(
        new_id(), shard=SHARD, worker="a:1", instance="a:0", lease_seconds=0.2
    ).job
    assert job is not None and job.id == cancelled_id
    outcome = store.cancel(cancelled_id, user_id="bob", message="m")
    assert outcome.status is CancelStatus.REQUESTED
    if way_back == "hand-back":
        assert store.release(cancelled_id, job.claim_token) is Transition.APPLIED
    elif way_back == "instance hand-back":
        assert store.release_instance("a:0") == [cancelled_id]
    else:
        time.sleep(0.3)
        assert _sweep(store, 3).recovered[0].outcome == "requeued"
    waiting = store.get(cancelled_id).to_dict()
    assert waiting["state"] == "pending" and waiting["cancel_requested_at"]
    claimed = store.claim_next(
        new_id(), shard=SHARD, worker="b:1", instance="b:0", lease_seconds=LEASE
    )
    assert claimed.cancelled == (cancelled_id,)
    assert claimed.job is not None and claimed.job.id == following  # the claim went on
    record = store.get(cancelled_id).to_dict()
    assert record["state"] == "failed" and record["error"]["code"] == "cancelled"
    assert record["cancelled_by"] == "bob" and "result" not in record
    assert record["attempts"] == 1  # the claim did not start a second attempt
    assert store.overview().failed_last_hour == 1
    assert store.list_jobs(JobState.FAILED, limit=10)[0][0].id == cancelled_id
    assert store.list_jobs(JobState.PENDING, limit=10)[0] == []
    assert store.cancel(cancelled_id, user_id=None, message="m").status is CancelStatus.ALREADY


def test_a_cancel_of_a_pending_job_already_asked_to_stop_fails_it_and_keeps_the_first_request(
    store, submit_to_store
):
    job_id = submit_to_store()
    job = _claim(store)
    first = store.cancel(job_id, user_id="bob", message="m").job
    assert store.release(job_id, job.claim_token) is Transition.APPLIED
    outcome = store.cancel(job_id, user_id="carol", message="m")
    assert outcome.status is CancelStatus.CANCELLED
    assert outcome.job is not None and first is not None
    record = outcome.job.to_dict()
    assert record["state"] == "failed" and record["cancelled_by"] == "bob"
    assert record["cancel_requested_at"] == first.to_dict()["cancel_requested_at"]
    assert store.queue_depth() == {"pending": 0, "running": 0}


def test_a_cancel_answers_with_the_record_its_own_script_left(store, submit_to_store):
    """Invariant: the record a cancel returns is the one it wrote, never a later state."""
    pending = submit_to_store()
    outcome = store.cancel(pending, user_id="bob", message="m")
    assert outcome.job is not None and outcome.job.to_dict()["state"] == "failed"
    running_id = submit_to_store()
    job = _claim(store)
    outcome = store.cancel(running_id, user_id=None, message="m")
    assert outcome.job is not None
    assert outcome.job.state is JobState.RUNNING and outcome.job.to_dict()["cancel_requested_at"]
    store.mark_complete(running_id, job.claim_token, "{}", duration_ms=1)
    finished = store.cancel(running_id, user_id=None, message="m")
    assert finished.status is CancelStatus.FINISHED and finished.job is not None
    assert finished.job.state is JobState.COMPLETE
    assert store.cancel(new_job_id(), user_id=None, message="m").job is None


# --- the overview ------------------------------------------------------------------------------
def test_the_overview_counts_each_finished_job_once_and_names_the_workers(store, submit_to_store):
    """Invariant: every way a job finishes counts it once, a re-sent finish not again."""
    done, failed, cancelled, *_lost_running_queued = (submit_to_store() for _ in range(6))
    job = _claim(store, worker="a:1")
    assert store.mark_complete(done, job.claim_token, "{}", duration_ms=1) is Transition.APPLIED
    assert (
        store.mark_complete(done, job.claim_token, "{}", duration_ms=1)
        is Transition.ALREADY_APPLIED
    )
    job = _claim(store, worker="a:1")
    assert store.mark_failed(failed, job.claim_token, "x", "y", duration_ms=1) is Transition.APPLIED
    assert (
        store.mark_failed(failed, job.claim_token, "x", "y", duration_ms=1)
        is Transition.ALREADY_APPLIED
    )
    assert store.cancel(cancelled, user_id=None, message="m").status is CancelStatus.CANCELLED
    assert store.cancel(cancelled, user_id=None, message="m").status is CancelStatus.ALREADY
    _claim(store, worker="b:1", lease=0.2)  # the fourth: its worker vanishes
    time.sleep(0.3)
    assert _sweep(store, 1).recovered[0].outcome == "failed"
    _claim(store, worker="a:1")
    _claim(store, worker="a:1")  # the last two both run on a:1 now
    overview = store.overview()
    assert (overview.pending, overview.running) == (0, 2)
    assert (overview.complete_last_hour, overview.failed_last_hour) == (1, 3)
    assert overview.running_per_worker == {"a:1": 2}


def test_the_overview_sums_the_last_sixty_minutes_only(store, redis_client):
    minute = int(redis_client.time()[0]) // 60
    counts = {minute: 2, minute - 59: 3, minute - 60: 100}
    redis_client.hset(shard_key(5, "finished:complete"), mapping=counts)  # any shard counts
    assert store.overview().complete_last_hour == 5


def test_a_new_minute_drops_the_counts_past_the_hour(store, submit_to_store, redis_client):
    key = shard_key(SHARD, "finished:failed")
    for _ in range(2):  # again when the minute turned while it ran
        minute = int(redis_client.time()[0]) // 60
        redis_client.delete(key)
        redis_client.hset(key, mapping={minute - 59: 1, minute - 60: 1, minute - 600: 1})
        store.cancel(
            submit_to_store(), user_id=None, message="m"
        )  # the first finish of this minute
        if int(redis_client.time()[0]) // 60 == minute:
            break
    assert redis_client.hgetall(key) == {str(minute - 59): "1", str(minute): "1"}
