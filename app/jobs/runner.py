"""Job threads: claim pending jobs, run them, keep their leases alive, recover lost ones.

One ``JobRunner`` per worker process, started after the fork. It runs:
- ``JOB_CONCURRENCY`` job threads that claim jobs FIFO from the shared Redis queue;
- a heartbeat thread that renews the leases of this process's running jobs;
- a sweeper thread (also on intake-only instances) that recovers jobs whose lease lapsed and
  trims the indexes of expired jobs, at start-up and then every JOB_SWEEP_SECONDS.
Shutdown is two calls: ``stop_claiming`` at the signal, ``drain`` until the deadline.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from app.config import Settings
from app.correlation import bound_ids
from app.jobs.store import Job, JobStore

logger = logging.getLogger(__name__)

# Idle job threads poll the queue with a delay that doubles up to this cap (seconds).
IDLE_POLL_MIN_SECONDS = 0.05
IDLE_POLL_MAX_SECONDS = 0.5
# Back-off while Redis is unreachable: long enough not to spin, short enough to resume quickly.
STORE_RETRY_MIN_SECONDS = 0.2
STORE_RETRY_MAX_SECONDS = 5.0
# After a job was deferred (a dependency is down), its thread waits this long before claiming.
DEFERRED_BACKOFF_SECONDS = 2.0


class JobDeferred(Exception):
    """The job cannot run now for a reason outside it (a dependency is down): hand it back."""


class JobFailure(Exception):
    """A job cannot succeed; ``code`` is the stable code stored on the failed job."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# A job body: takes the job's params, returns the result document or raises JobFailure.
JobBody = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass
class _Attempt:
    """One attempt of a job running in this process; ``number`` is its fencing token."""

    job_id: str
    number: int
    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    lease_lost: bool = False


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
    ) -> None:
        self._store = store
        self._body = body
        self._settings = settings
        self.worker_id = worker_id
        self.instance_id = instance_id
        self._stop_claiming = threading.Event()
        self._abandon = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[str, _Attempt] = {}
        self._threads: list[threading.Thread] = []
        self.durability_warnings: list[str] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, instance_id: str | None = None) -> None:
        """Start the job, heartbeat and sweeper threads (once, after the fork).

        ``instance_id`` names the gunicorn master, so its ``on_exit`` can hand back our jobs.
        """
        if instance_id:
            self.instance_id = instance_id
        targets: list[tuple[str, Callable[[], None]]] = [("job-sweeper", self._sweep_loop)]
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
        """IDs of the jobs this process is running now."""
        with self._lock:
            return list(self._running)

    def drain(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` s for running jobs; hand back the stragglers and return them."""
        self.stop_claiming()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            with self._lock:
                waiting = list(self._running.values())
            if not waiting or time.monotonic() >= deadline:
                break
            waiting[0].done.wait(max(0.0, min(deadline - time.monotonic(), 0.5)))
        self._abandon.set()
        for attempt in waiting:
            self._hand_back_straggler(attempt)
        self._stopped.set()
        return [attempt.job_id for attempt in waiting]

    def _hand_back_straggler(self, attempt: _Attempt) -> None:
        ran = round(time.monotonic() - attempt.started, 3)
        try:
            released = self._store.release(attempt.job_id, attempt.number)
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
        idle = IDLE_POLL_MIN_SECONDS
        while not self._stop_claiming.is_set():
            try:
                job = self._store.claim_next(
                    worker=self.worker_id,
                    instance=self.instance_id,
                    lease_seconds=self._settings.job_lease_seconds,
                )
            except redis.RedisError as error:
                logger.warning("cannot claim jobs: %s", type(error).__name__)
                self._stop_claiming.wait(STORE_RETRY_MAX_SECONDS)
                continue
            if job is None:
                self._stop_claiming.wait(idle)
                idle = min(idle * 2, IDLE_POLL_MAX_SECONDS)
                continue
            idle = IDLE_POLL_MIN_SECONDS
            if not self._run(job):
                self._stop_claiming.wait(DEFERRED_BACKOFF_SECONDS)

    def _run(self, job: Job) -> bool:
        """Run one claimed job; return False when it was deferred (handed back)."""
        attempt = _Attempt(job.id, job.attempts)
        with self._lock:
            self._running[job.id] = attempt
        try:
            with bound_ids(request_id=job.request_id, user_id=job.user_id, job_id=job.id):
                return self._execute(job, attempt)
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            attempt.done.set()

    def _execute(self, job: Job, attempt: _Attempt) -> bool:
        params = job.params
        logger.info(
            "job started",
            extra={
                "attempt": job.attempts,
                "slate_id": params["slate_id"],
                "scenario_count": params["scenario_count"],
            },
        )
        started = time.perf_counter()
        try:
            result = self._body(params)
        except JobDeferred as error:
            logger.warning("job deferred, handing it back: %s", error)
            self._with_store_retry(lambda: self._store.release(job.id, job.attempts))
            return False
        except JobFailure as failure:
            duration = (time.perf_counter() - started) * 1000
            code, message = failure.code, failure.message
            logger.warning("job failed", extra={"code": code, "error": message})
            self._finish(
                job,
                "failed",
                lambda: self._store.mark_failed(
                    job.id, job.attempts, code, message, duration_ms=duration
                ),
            )
            return True
        except Exception:
            duration = (time.perf_counter() - started) * 1000
            logger.exception("job raised an unexpected error")
            self._finish(
                job,
                "failed",
                lambda: self._store.mark_failed(
                    job.id,
                    job.attempts,
                    "simulation_error",
                    "the simulation failed unexpectedly; see the service log for this job_id",
                    duration_ms=duration,
                ),
            )
            return True
        duration = (time.perf_counter() - started) * 1000
        payload = json.dumps(result, separators=(",", ":"))
        self._finish(
            job,
            "complete",
            lambda: self._store.mark_complete(job.id, job.attempts, payload, duration_ms=duration),
        )
        logger.info(
            "job complete", extra={"duration_ms": round(duration, 3), "result_bytes": len(payload)}
        )
        return True

    def _finish(self, job: Job, state: str, write: Callable[[], bool]) -> None:
        accepted = self._with_store_retry(write)
        if accepted is False:
            logger.warning(
                "attempt was superseded; its %s outcome is discarded",
                state,
                extra={"attempt": job.attempts},
            )

    def _with_store_retry(self, write: Callable[[], bool]) -> bool | None:
        """Retry a write while Redis is down; ``None`` if shutdown abandoned it first.

        An abandoned write leaves the job ``running`` in Redis: its lease lapses and the sweep
        re-runs it, with the same result thanks to the stored seed.
        """
        delay = STORE_RETRY_MIN_SECONDS
        while True:
            try:
                return write()
            except redis.RedisError as error:
                logger.warning(
                    "job store unavailable, retrying in %.1fs: %s", delay, type(error).__name__
                )
            if self._abandon.wait(delay):
                return None
            delay = min(delay * 2, STORE_RETRY_MAX_SECONDS)

    # --- heartbeat and sweep -------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        while not self._stopped.wait(self._settings.job_heartbeat_seconds):
            with self._lock:
                attempts = {a.job_id: a for a in self._running.values() if not a.lease_lost}
            held = [(a.job_id, a.number) for a in attempts.values()]
            if not held:
                continue
            try:
                lost = self._store.renew_leases(
                    held, lease_seconds=self._settings.job_lease_seconds
                )
            except redis.RedisError as error:
                logger.warning("cannot renew leases: %s", type(error).__name__)
                continue
            for job_id in lost:
                attempts[job_id].lease_lost = True
                logger.warning(
                    "lease lost; another attempt may run this job", extra={"job_id": job_id}
                )

    def _sweep_loop(self) -> None:
        self._check_durability()
        while True:
            try:
                for outcome in self._store.sweep(max_lost_attempts=self._settings.job_max_attempts):
                    logger.warning(
                        "recovered job with a lapsed lease",
                        extra={"job_id": outcome.job_id, "outcome": outcome.outcome},
                    )
            except redis.RedisError as error:
                logger.warning("sweep skipped: %s", type(error).__name__)
            if self._stop_claiming.wait(self._settings.job_sweep_seconds):
                return

    def _check_durability(self) -> None:
        try:
            self.durability_warnings = self._store.durability_warnings()
        except redis.RedisError as error:
            logger.warning("cannot read Redis settings: %s", type(error).__name__)
            return
        for warning in self.durability_warnings:
            logger.warning("Redis durability: %s", warning)
