"""Job threads: claim pending jobs, run them, keep their leases alive, recover lost ones.

One ``JobRunner`` per worker process, started after the fork. It runs:
- ``JOB_CONCURRENCY`` job threads that claim jobs from the shards in turn (FIFO within each);
- a heartbeat thread that renews the leases of this process's running attempts;
- the sweeper's thread (also on intake-only instances, app/jobs/sweeper.py).
Shutdown is two calls: ``stop_claiming`` at the signal, ``drain`` until the deadline.

Everything is kept by attempt, named by the claim token its thread drew: a stale attempt of a
job (its lease lapsed, the sweep requeued the job and another thread here took it again) is a
separate entry, and its end never touches the newer attempt's lease, drain entry or listing.

The job threads, the heartbeat, the drain and the close share that state under one lock, which
is why it is one class and runs past 400 lines.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

from app.config import Settings
from app.correlation import bound_ids, new_id
from app.jobs.job import CANCELLED_ERROR_CODE, Job
from app.jobs.keys import SHARD_COUNT
from app.jobs.outcomes import ClaimOutcome, ClaimStatus, Transition
from app.jobs.store import JobStore
from app.jobs.sweeper import Sweeper

logger = logging.getLogger(__name__)

# Idle job threads poll the queue with a delay that doubles up to this cap (seconds).
IDLE_POLL_MIN_SECONDS = 0.05
IDLE_POLL_MAX_SECONDS = 0.5
# Back-off while Redis is unreachable: long enough not to spin, short enough to resume quickly.
STORE_RETRY_MIN_SECONDS = 0.2
STORE_RETRY_MAX_SECONDS = 5.0
# After a job was deferred (a dependency is down), its thread waits this long before claiming.
DEFERRED_BACKOFF_SECONDS = 2.0
# How long closing the process waits for the runner's threads before its clients close.
CLOSE_JOIN_SECONDS = 2.0


# How much nicer than the request threads a job thread runs (Linux thread niceness): on a busy
# host a probe or a submission gets a CPU ahead of the simulation.
# Measured (bench-instance): /health's p99 under full load 3.9-4.7 ms against 5.8-7.1 ms at 0.
JOB_THREAD_NICENESS = 10


def _lower_this_threads_priority() -> None:
    """Give the calling thread JOB_THREAD_NICENESS more niceness (Linux; elsewhere a no-op)."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + JOB_THREAD_NICENESS
        )


class JobDeferred(Exception):
    """The job cannot run now for a reason outside it (a dependency is down): hand it back."""


class JobCancelled(Exception):
    """The job was asked to stop (POST /jobs/<id>/cancel); raised at a chunk boundary."""


class JobFailure(Exception):
    """A job cannot succeed; ``code`` is the stable code stored on the failed job."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# A job body: takes the job's params, returns the result document or raises JobFailure. It
# reports progress through the callable `progress_reporter()` gives it in its job thread.
JobBody = Callable[[Mapping[str, Any]], dict[str, Any]]
# Set in each job thread for the attempt it runs: record scenarios done, and stop when asked.
_progress: ContextVar[Callable[[int], None] | None] = ContextVar("job_progress", default=None)
# What a cancelled job records.
CANCELLED_MESSAGE = "cancelled by request; no result was stored"


def progress_reporter() -> Callable[[int], None] | None:
    """The running attempt's progress callback: records scenarios done, and raises
    JobCancelled once the job was asked to stop. None outside a job thread."""
    return _progress.get()


T = TypeVar("T")
# What a job that raised something unexpected records; the traceback goes to the log only.
UNEXPECTED_ERROR_MESSAGE = "the simulation failed unexpectedly; see the service log for this job_id"


@dataclass
class _Attempt:
    """One attempt running in this process; ``token`` (its claim token) fences its writes."""

    job_id: str
    number: int
    token: str
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    lease_lost: bool = False
    scenarios_done: int | None = None  # reported by the body after each chunk
    cancel: threading.Event = field(default_factory=threading.Event)

    def report(self, scenarios_done: int) -> None:
        """The body's progress callback: keep the count for the next heartbeat; stop if asked."""
        self.scenarios_done = scenarios_done
        if self.cancel.is_set():
            raise JobCancelled(self.job_id)


class JobRunner:
    """Runs jobs from the shared queue in background threads of this process."""

    def __init__(
        self,
        store: JobStore,
        body: JobBody,
        settings: Settings,
        *,
        worker_id: str,
        instance_id: str,
        ready_to_run: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._body = body
        # Asked before each claim: false while the body's dependency is known to be down
        # (its breaker is open), so no job is claimed only to be handed back.
        self._ready_to_run = ready_to_run
        self._settings = settings
        self.worker_id = worker_id
        self.instance_id = instance_id
        self._stop_claiming = threading.Event()
        self._abandon = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Attempt] = {}
        # The job threads inside a job body now (their idents): close does not wait for them.
        self._in_job_body: set[int | None] = set()
        self._threads: list[threading.Thread] = []
        self.sweeper = Sweeper(store, settings, stop=self._stop_claiming)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, instance_id: str | None = None) -> None:
        """Start the job, heartbeat and sweeper threads (once, after the fork).

        ``instance_id`` names the gunicorn master, so its ``on_exit`` can hand back our jobs.
        """
        if instance_id:
            self.instance_id = instance_id
        targets: list[tuple[str, Callable[[], None]]] = [("job-sweeper", self.sweeper.run)]
        if self._settings.job_concurrency:
            targets.append(("job-heartbeat", self._heartbeat_loop))
            targets += [
                (f"job-runner-{n}", self._claim_loop) for n in range(self._settings.job_concurrency)
            ]
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        logger.info(
            "job runner started",
            extra={"job_threads": self._settings.job_concurrency, "worker": self.worker_id},
        )

    def stop_claiming(self) -> None:
        """Stop taking new jobs at once; running jobs go on."""
        self._stop_claiming.set()

    @property
    def claiming(self) -> bool:
        """Whether job threads still take new jobs."""
        return not self._stop_claiming.is_set()

    def running_job_ids(self) -> list[str]:
        """The job of each attempt this process is running now (one entry per attempt)."""
        with self._lock:
            return [attempt.job_id for attempt in self._running.values()]

    def _held_attempts(self) -> list[_Attempt]:
        """Running attempts that still hold their job's lease: the ones worth waiting for."""
        with self._lock:
            return [a for a in self._running.values() if not a.lease_lost]

    def drain(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` s for running jobs; hand back the stragglers and return them.

        Attempts whose lease was lost are not waited for: the store refuses their outcome.
        """
        self.stop_claiming()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            waiting = self._held_attempts()
            if not waiting or time.monotonic() >= deadline:
                break
            waiting[0].done.wait(max(0.0, min(deadline - time.monotonic(), 0.5)))
        self._abandon.set()
        for attempt in waiting:
            self._hand_back_straggler(attempt)
        self._stopped.set()
        return [attempt.job_id for attempt in waiting]

    def close(self, timeout: float = CLOSE_JOIN_SECONDS) -> list[str]:
        """End every thread of this runner and wait up to ``timeout`` s for those outside a
        job body; return the names of those still alive (a straggler, handed back by the
        drain, runs on until its process exits: nothing waits for it).

        Called before the process closes its Redis pool: redis-py's pool is not safe to
        disconnect while another thread takes a connection from it, so no claim, heartbeat
        or sweep may be in flight when the clients close.
        """
        self._stop_claiming.set()
        self._abandon.set()
        self._stopped.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.ident not in self._in_job_body:  # a straggler's body is not waited for
                thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in self._threads if thread.is_alive()]
        if alive:
            logger.info("runner threads still running at close", extra={"threads": alive})
        return alive

    def _hand_back_straggler(self, attempt: _Attempt) -> None:
        ran = round(time.monotonic() - attempt.started, 3)
        try:
            released = self._store.release(attempt.job_id, attempt.token).stored
        except redis.RedisError as error:
            released = False
            logger.error(
                "could not hand back straggler: %s",
                type(error).__name__,
                extra={"job_id": attempt.job_id},
            )
        logger.warning(
            "straggler handed back at shutdown deadline",
            extra={"job_id": attempt.job_id, "ran_seconds": ran, "handed_back": released},
        )

    # --- job threads -------------------------------------------------------------------------
    def _claim_loop(self) -> None:
        """Claim from the shards in turn: every claim moves on to the next shard, so no shard
        waits more than one round of SHARD_COUNT claims for this thread (the rotation starts
        at a random shard in each thread, so threads spread over the shards). After a whole
        round of empty shards the thread waits, longer each time, before the next round."""
        _lower_this_threads_priority()
        idle = IDLE_POLL_MIN_SECONDS
        shard = random.randrange(SHARD_COUNT)
        empty_in_a_row = 0
        while not self._stop_claiming.is_set():
            if not self._ready_to_run():
                self._stop_claiming.wait(DEFERRED_BACKOFF_SECONDS)
                continue
            outcome = self._claim(shard)
            if outcome is None:  # abandoned at the drain deadline
                return
            if outcome.status is ClaimStatus.BUSY:  # stale entries dropped: this shard again
                continue
            shard = (shard + 1) % SHARD_COUNT
            if outcome.job is not None:
                idle, empty_in_a_row = IDLE_POLL_MIN_SECONDS, 0
                if not self._run(outcome.job):
                    self._stop_claiming.wait(DEFERRED_BACKOFF_SECONDS)
                continue
            empty_in_a_row += 1
            if empty_in_a_row >= SHARD_COUNT:  # a whole round found nothing
                empty_in_a_row = 0
                self._stop_claiming.wait(idle)
                idle = min(idle * 2, IDLE_POLL_MAX_SECONDS)

    def _claim(self, shard: int) -> ClaimOutcome | None:
        """One claim in ``shard`` under a new token, sent again with that token (to the same
        shard) until Redis answers.

        A claim whose reply was lost may have taken a job: only the same token finds it again.
        Shutdown does not interrupt the retries (a claimed job is run and drained like any
        other); the drain deadline does.
        """
        token = new_id()
        outcome = self._with_store_retry(
            lambda: self._store.claim_next(
                token,
                shard=shard,
                worker=self.worker_id,
                instance=self.instance_id,
                lease_seconds=self._settings.job_lease_seconds,
            ),
            "claim a job",
        )
        for job_id in outcome.cancelled if outcome else ():
            logger.info("job cancelled before it ran again", extra={"job_id": job_id})
        return outcome

    def _run(self, job: Job) -> bool:
        """Run one claimed job; return False when it was deferred (handed back)."""
        attempt = _Attempt(job.id, job.attempts, job.claim_token)
        with self._lock:
            self._running[attempt.token] = attempt
        reporting = _progress.set(attempt.report)
        self._in_job_body.add(threading.get_ident())
        try:
            with bound_ids(request_id=job.request_id, user_id=job.user_id, job_id=job.id):
                return self._execute(job, attempt)
        finally:
            self._in_job_body.discard(threading.get_ident())
            _progress.reset(reporting)
            with self._lock:
                self._running.pop(attempt.token, None)
            attempt.done.set()

    def _execute(self, job: Job, attempt: _Attempt) -> bool:
        params = job.params
        logger.info(
            "job started",
            extra={
                "attempt": attempt.number,
                "slate_id": params["slate_id"],
                "scenario_count": params["scenario_count"],
            },
        )
        started = time.perf_counter()
        try:
            result = self._body(params)
        except JobDeferred as error:
            logger.warning("job deferred, handing it back: %s", error)
            self._with_store_retry(
                lambda: self._store.release(job.id, attempt.token), "hand the job back"
            )
            return False
        except JobCancelled:
            logger.info("job cancelled", extra={"scenarios_done": attempt.scenarios_done})
            self._fail(attempt, CANCELLED_ERROR_CODE, CANCELLED_MESSAGE, started)
            return True
        except JobFailure as failure:
            code, message = failure.code, failure.message
            logger.warning("job failed", extra={"code": code, "error": message})
            self._fail(attempt, code, message, started)
            return True
        except Exception:
            logger.exception("job raised an unexpected error")
            self._fail(attempt, "simulation_error", UNEXPECTED_ERROR_MESSAGE, started)
            return True
        duration = (time.perf_counter() - started) * 1000
        payload = json.dumps(result, separators=(",", ":"))
        stored = self._finish(
            attempt,
            "complete",
            lambda: self._store.mark_complete(job.id, attempt.token, payload, duration_ms=duration),
        )
        if stored:
            logger.info(
                "job complete",
                extra={"duration_ms": round(duration, 3), "result_bytes": len(payload)},
            )
        return True

    def _fail(self, attempt: _Attempt, code: str, message: str, started: float) -> None:
        duration = (time.perf_counter() - started) * 1000
        self._finish(
            attempt,
            "failed",
            lambda: self._store.mark_failed(
                attempt.job_id, attempt.token, code, message, duration_ms=duration
            ),
        )

    def _finish(self, attempt: _Attempt, state: str, write: Callable[[], Transition]) -> bool:
        """Store the attempt's outcome (retrying while Redis is down); whether it is stored.

        A re-sent write that finds its own outcome stored (``already_applied``) counts as
        stored; one the job has moved on from is discarded.
        """
        outcome = self._with_store_retry(write, f"store the {state} outcome")
        if outcome is Transition.SUPERSEDED:
            logger.warning(
                "attempt was superseded; its %s outcome is discarded",
                state,
                extra={"attempt": attempt.number},
            )
        return outcome is not None and outcome.stored

    def _with_store_retry(self, call: Callable[[], T], what: str) -> T | None:
        """Call the store until Redis answers; ``None`` if the drain deadline abandoned it first.

        Every store call is safe to repeat (see app/jobs/store.py). An abandoned write leaves
        the job ``running`` in Redis: its lease lapses and the sweep re-runs it, with the same
        result thanks to the stored seed.
        """
        delay = STORE_RETRY_MIN_SECONDS
        while True:
            try:
                return call()
            except redis.RedisError as error:
                logger.warning(
                    "cannot %s, retrying in %.1fs: %s", what, delay, type(error).__name__
                )
            if self._abandon.wait(delay):
                return None
            delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)

    # --- heartbeat and sweep -------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        while not self._stopped.wait(self._settings.job_heartbeat_seconds):
            attempts = {a.token: a for a in self._held_attempts()}
            if not attempts:
                continue
            held = [(a.job_id, a.token, a.scenarios_done) for a in attempts.values()]
            try:
                renewed = self._store.renew_leases(
                    held, lease_seconds=self._settings.job_lease_seconds
                )
            except redis.RedisError as error:
                logger.warning("cannot renew leases: %s", type(error).__name__)
                continue
            for token in renewed.cancel_requested:
                attempts[token].cancel.set()
            for token in renewed.lost:
                attempts[token].lease_lost = True
                logger.warning(
                    "lease lost; another attempt may run this job",
                    extra={"job_id": attempts[token].job_id, "attempt": attempts[token].number},
                )
