"""Job threads against the real Redis: run, fail, defer, recover lost jobs, drain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from app.config import Settings
from app.jobs.job import Job, JobState
from app.jobs.keys import SHARDS, shard_key, shard_of_job
from app.jobs.runner import JobDeferred, JobFailure, JobRunner, progress_reporter
from app.jobs.store import JobStore
from tests.support.redis_server import RedisServer
from tests.support.results import claim_any
from tests.support.waiting import wait_until

# The shortest lease the settings allow, renewed five times a lease; Redis calls bounded so that
# a renewal and its retry fit in it.
LEASE_SECONDS = 2


def _fast_settings(settings: Settings, **overrides) -> Settings:
    timing = {
        "job_lease_seconds": LEASE_SECONDS,
        "job_heartbeat_seconds": 0.2,
        "job_sweep_seconds": 0.2,
        "dependency_timeout_seconds": 0.5,
        "job_concurrency": 1,
    }
    return Settings(**{**vars(settings), **timing, **overrides})


def _leases_of(job_id: str) -> str:
    return shard_key(shard_of_job(job_id), "leases")


def _wait_renewed_past_a_lease(redis_client, job_id: str) -> None:
    """Wait until heartbeats have pushed the job's lease deadline a lease and a half past where
    it stood: without them it would have lapsed by then."""
    first = redis_client.zscore(_leases_of(job_id), job_id)
    wait_until(
        lambda: (
            (redis_client.zscore(_leases_of(job_id), job_id) or 0) >= first + 1500 * LEASE_SECONDS
        ),
        4 * LEASE_SECONDS,
        what="the lease renewed past a lease and a half",
    )


@pytest.fixture
def run_with(store: JobStore, settings: Settings) -> Iterator[Callable[..., JobRunner]]:
    """Start a runner with a given job body; drained at the end of the test."""
    runners: list[JobRunner] = []

    def start(body, **overrides) -> JobRunner:
        runner = JobRunner(
            store,
            body,
            _fast_settings(settings, **overrides),
            worker_id=f"test:{len(runners)}",
            instance_id="test:0",
        )
        runner.start()
        runners.append(runner)
        return runner

    yield start
    for runner in runners:
        runner.drain(0)
        runner.close()


def _record(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    assert job is not None, f"no record of job {job_id}"
    return job


def _state(store: JobStore, job_id: str) -> JobState:
    return _record(store, job_id).state


def test_a_job_runs_to_complete_with_its_result(store, run_with, submit_to_store):
    job_id = submit_to_store(scenario_count=3, seed=5)
    run_with(lambda params: {"echo": params["scenario_count"] * params["seed"]})
    wait_until(lambda: _state(store, job_id) is JobState.COMPLETE)
    record = _record(store, job_id).to_dict()
    assert record["result"] == {"echo": 15}
    assert record["attempts"] == 1 and record["metadata"]["duration_ms"] >= 0


def test_a_job_failure_is_recorded_with_its_code(store, run_with, submit_to_store):
    job_id = submit_to_store()

    def body(params):
        raise JobFailure("slate_not_found", "no slate 'test-slate'")

    run_with(body)
    wait_until(lambda: _state(store, job_id) is JobState.FAILED)
    assert _record(store, job_id).to_dict()["error"] == {
        "code": "slate_not_found",
        "message": "no slate 'test-slate'",
    }


def test_an_unexpected_exception_fails_the_job_without_a_traceback(
    store, run_with, submit_to_store
):
    job_id = submit_to_store()

    def body(params):
        raise ZeroDivisionError("secret internals")

    run_with(body)
    wait_until(lambda: _state(store, job_id) is JobState.FAILED)
    error = _record(store, job_id).to_dict()["error"]
    assert error["code"] == "simulation_error"
    assert "Traceback" not in error["message"] and "secret internals" not in error["message"]


def test_a_deferred_job_goes_back_to_pending(store, run_with, submit_to_store):
    job_id = submit_to_store()
    calls = []

    def body(params):
        calls.append(1)
        raise JobDeferred("slate store down")

    run_with(body)
    wait_until(lambda: len(calls) >= 1)
    wait_until(lambda: _state(store, job_id) is JobState.PENDING)
    assert _record(store, job_id).to_dict()["lost_attempts"] == 0


def test_a_job_whose_holder_vanished_is_recovered_and_completed(store, run_with, submit_to_store):
    job_id = submit_to_store()
    ghost = claim_any(store, worker="ghost:1", instance="ghost:0", lease_seconds=0.3).job
    assert ghost is not None and ghost.id == job_id
    run_with(lambda params: {"ok": True})
    wait_until(lambda: _state(store, job_id) is JobState.COMPLETE)
    record = _record(store, job_id).to_dict()
    assert record["attempts"] == 2 and record["lost_attempts"] == 1


def test_a_long_job_keeps_its_lease_through_heartbeats(
    store, redis_client, run_with, submit_to_store, gated_body
):
    job_id = submit_to_store()
    body = gated_body({"done": True})
    run_with(body)
    wait_until(lambda: _state(store, job_id) is JobState.RUNNING)
    _wait_renewed_past_a_lease(redis_client, job_id)
    store.sweep(SHARDS, max_lost_attempts=3)
    assert _record(store, job_id).to_dict()["lost_attempts"] == 0
    body.release.set()
    wait_until(lambda: _state(store, job_id) is JobState.COMPLETE)
    assert _record(store, job_id).to_dict()["attempts"] == 1


def test_close_ends_every_runner_thread_before_the_pool_closes(store, run_with):
    """Invariant: after close no runner thread is alive, so none can be taking a connection
    from the pool while it closes (redis-py's pool is not safe against that)."""
    before = set(threading.enumerate())
    runner = run_with(lambda params: {"done": True})
    started = set(threading.enumerate()) - before
    assert {"job-sweeper", "job-heartbeat", "job-runner-0"} <= {t.name for t in started}
    runner.drain(0)
    assert runner.close(timeout=5) == []
    assert not [thread.name for thread in started if thread.is_alive()]


def test_drain_waits_for_a_running_job(store, run_with, submit_to_store):
    job_id = submit_to_store()
    started = threading.Event()

    def body(params):
        started.set()
        time.sleep(0.5)
        return {"done": True}

    runner = run_with(body)
    assert started.wait(5)
    assert runner.drain(5) == []
    assert _state(store, job_id) is JobState.COMPLETE


def test_drain_hands_back_stragglers_whose_late_result_is_discarded(
    store, run_with, submit_to_store, gated_body
):
    job_id = submit_to_store()
    body = gated_body({"late": True})
    runner = run_with(body)
    assert body.started.wait(5)
    assert runner.drain(0.2) == [job_id]
    assert _state(store, job_id) is JobState.PENDING
    assert runner.running_job_ids() == [job_id]
    body.release.set()
    wait_until(lambda: runner.running_job_ids() == [])
    assert _state(store, job_id) is JobState.PENDING
    assert "result" not in _record(store, job_id).to_dict()


def test_after_stop_claiming_no_new_job_starts(store, run_with, submit_to_store):
    runner = run_with(lambda params: {"ok": True}, job_concurrency=2)
    runner.stop_claiming()
    time.sleep(0.3)
    job_id = submit_to_store()
    time.sleep(0.5)
    assert _state(store, job_id) is JobState.PENDING


def test_a_result_finished_during_a_redis_outage_lands_when_redis_is_back(
    settings, tmp_path, submit_to_store, gated_body
):
    server = RedisServer(tmp_path).start()
    client = redis.Redis.from_url(
        server.url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
    )
    store = JobStore(client, ttl_seconds=3600)
    job_id = submit_to_store(store=store)
    body = gated_body({"survived": True})

    runner = JobRunner(
        store,
        body,
        _fast_settings(settings, job_lease_seconds=30),
        worker_id="test:outage",
        instance_id="test:0",
    )
    runner.start()
    try:
        assert body.started.wait(10)
        server.stop()  # Redis goes away while the job runs...
        body.release.set()  # ...and the job finishes: its write must be retried, not dropped
        time.sleep(1.5)
        assert runner.running_job_ids() == [job_id]
        server.start()  # same port and data directory: the AOF brings the job back
        wait_until(lambda: _state(store, job_id) is JobState.COMPLETE, timeout=20)
        assert _record(store, job_id).to_dict()["result"] == {"survived": True}
    finally:
        runner.drain(0)
        runner.close()
        client.close()
        server.stop()


def test_a_stale_attempt_ending_leaves_the_newer_attempt_leased_drained_and_listed(
    store, redis_client, run_with, submit_to_store
):
    job_id = submit_to_store()
    gates = [threading.Event(), threading.Event()]
    started: list[int] = []

    def body(params):
        number = len(started)
        started.append(number)
        assert gates[number].wait(30)
        return {"attempt": number + 1}

    runner = run_with(body, job_concurrency=2)
    wait_until(lambda: started == [0])

    def lapse_and_recover() -> bool:
        # The lease of attempt 1 lapses (as if its renewals had stopped) and the sweep takes it.
        redis_client.zadd(_leases_of(job_id), {job_id: 0})
        store.sweep(SHARDS, max_lost_attempts=3)
        return _record(store, job_id).to_dict()["lost_attempts"] == 1

    wait_until(lapse_and_recover)
    wait_until(lambda: started == [0, 1])  # the other thread of this runner took attempt 2
    gates[0].set()  # the stale attempt 1 ends now; its outcome is refused
    wait_until(lambda: runner.running_job_ids() == [job_id])
    _wait_renewed_past_a_lease(redis_client, job_id)  # attempt 2's lease is renewed
    record = _record(store, job_id).to_dict()
    assert (record["state"], record["attempts"], record["lost_attempts"]) == ("running", 2, 1)
    assert redis_client.zscore(_leases_of(job_id), job_id) > time.time() * 1000
    drained: list[list[str]] = []
    drain = threading.Thread(target=lambda: drained.append(runner.drain(10)))
    drain.start()
    time.sleep(0.5)
    assert drain.is_alive(), "the drain did not wait for attempt 2"
    gates[1].set()
    drain.join(10)
    assert drained == [[]]
    record = _record(store, job_id).to_dict()
    assert record["state"] == "complete" and record["result"] == {"attempt": 2}


def _chunked_body(chunks: int, seconds_each: float) -> Callable[..., dict]:
    """A body that reports progress after each of ``chunks`` steps, like the simulation."""

    def body(params):
        report = progress_reporter()
        assert report is not None
        for chunk in range(1, chunks + 1):
            time.sleep(seconds_each)
            report(params["scenario_count"] * chunk // chunks)
        return {"ok": True}

    return body


def test_a_running_job_reports_progress_through_its_heartbeat(store, run_with, submit_to_store):
    run_with(_chunked_body(chunks=10, seconds_each=0.15))
    job_id = submit_to_store(scenario_count=1000)
    seen: list[int] = []

    def finished() -> bool:
        record = _record(store, job_id).to_dict()
        if record["state"] == "running" and record["progress"]["scenarios_done"]:
            seen.append(record["progress"]["scenarios_done"])
        return record["state"] == "complete"

    wait_until(finished, 10, what="the job complete", interval=0.05)
    assert len(set(seen)) >= 3 and seen == sorted(seen), seen  # observed, never backwards


def test_a_cancelled_running_job_stops_at_a_chunk_and_frees_its_thread(
    store, run_with, submit_to_store
):
    run_with(_chunked_body(chunks=100, seconds_each=0.1))  # 10 s if left alone
    cancelled, following = submit_to_store(), submit_to_store()
    wait_until(lambda: _state(store, cancelled) is JobState.RUNNING, 5, what="running")
    requested = time.monotonic()
    assert store.cancel(cancelled, user_id="alice", message="m").status.value == "requested"
    wait_until(lambda: _state(store, cancelled) is JobState.FAILED, 5, what="the job stopped")
    stopped = time.monotonic() - requested
    record = _record(store, cancelled).to_dict()
    assert record["error"]["code"] == "cancelled" and "result" not in record
    assert stopped < 0.2 + 0.1 + 0.3  # one heartbeat, one chunk, a margin
    wait_until(lambda: _state(store, following) is JobState.RUNNING, 1.5, what="the next job")
