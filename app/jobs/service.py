"""Job use cases behind the HTTP routes, the CLI and the dashboard: submit, fetch, cancel, list.

They speak in jobs (``app/jobs/errors.py``); app.errors answers for them over HTTP."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from ulid import ULID

from app.jobs.errors import (
    IdempotencyConflictError,
    JobExpiredError,
    JobFinishedError,
    JobNotFoundError,
    JobStoreUnavailableError,
    ShuttingDownError,
)
from app.jobs.ids import new_job_id, was_issued_here
from app.jobs.job import Job, JobState
from app.jobs.keys import submission_shard
from app.jobs.outcomes import CancelStatus, Overview, SubmitStatus
from app.jobs.store import JobStore
from app.jobs.validation import MAX_SEED, encode_cursor, fingerprint
from app.resilience import Dependency
from app.shutdown import Shutdown

logger = logging.getLogger(__name__)
T = TypeVar("T")


# A submission whose reply never came may have been stored: only a retry under the same
# Idempotency-Key is sure not to create a second job.
SUBMIT_UNAVAILABLE_MESSAGE = (
    "the job store did not answer; the job may have been stored: retry with the same "
    "Idempotency-Key to get it rather than a second one"
)


STORE_UNAVAILABLE_MESSAGE = "the job store is unavailable; retry later"
PENDING_CANCELLED_MESSAGE = "cancelled by request before it started"


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing, newest first; ``last_id`` is where the next page starts."""

    jobs: list[Job]
    last_id: str | None  # None on the last page

    def to_dict(self) -> dict[str, Any]:
        """The page as GET /jobs and ``flask jobs list`` show it: records without results."""
        return {
            "jobs": [job.to_dict(include_result=False) for job in self.jobs],
            "next_cursor": encode_cursor(self.last_id) if self.last_id else None,
        }


@dataclass
class JobService:
    """Submits, fetches and lists jobs; refuses submissions once shutdown has begun."""

    store: JobStore
    shutdown: Shutdown
    # The Redis bulkhead and breaker of request threads; none in tools and tests that want none.
    dependency: Dependency | None = None

    def _store_call(self, call: Callable[[], T], message: str = STORE_UNAVAILABLE_MESSAGE) -> T:
        """Call the store through the bulkhead and breaker (whose refusal,
        DependencyUnavailableError, goes up as it is); Redis's failure is the store's."""
        try:
            if self.dependency is None:
                return call()
            return self.dependency.call(call, failures=(redis.RedisError,))
        except redis.RedisError as error:
            logger.warning("job store unavailable: %s", type(error).__name__)
            raise JobStoreUnavailableError(message) from None

    def submit(
        self,
        submission: dict[str, Any],
        *,
        idempotency_key: str | None,
        request_id: str | None,
        user_id: str | None,
    ) -> tuple[Job, bool]:
        """Accept a validated submission; return the job and whether it was created now."""
        if self.shutdown.underway:
            raise ShuttingDownError("this instance is shutting down; retry on another")
        # A seed needs to be unpredictable to nobody: the stdlib generator, reseeded per fork.
        params = {"seed": random.randint(0, MAX_SEED), **submission}
        idempotency = (idempotency_key, fingerprint(submission)) if idempotency_key else None
        job_id = new_job_id(shard=submission_shard(user_id, idempotency_key))
        outcome = self._store_call(
            lambda: self.store.submit(
                job_id, params, request_id=request_id, user_id=user_id, idempotency=idempotency
            ),
            SUBMIT_UNAVAILABLE_MESSAGE,
        )
        if outcome.status is SubmitStatus.CONFLICT:
            raise IdempotencyConflictError(
                f"Idempotency-Key was already used for job {outcome.job.id} with another body"
            )
        job = outcome.job
        if outcome.status is SubmitStatus.CREATED:
            logger.info(
                "job submitted",
                extra={
                    "job_id": job.id,
                    "slate_id": params["slate_id"],
                    "scenario_count": params["scenario_count"],
                },
            )
        return job, outcome.status.created_now

    def get(self, job_id: ULID) -> Job:
        """The job with this ID, or the error saying why there is none."""
        job = self._store_call(lambda: self.store.get(str(job_id)))
        if job is None:
            raise self._no_record(job_id)
        return job

    def _no_record(self, job_id: ULID) -> JobExpiredError | JobNotFoundError:
        """Why Redis holds no record of ``job_id``: its retention ended, or never issued."""
        retention_ms = self.store.ttl_seconds * 1000
        if was_issued_here(job_id) and job_id.milliseconds <= time.time() * 1000 - retention_ms:
            return JobExpiredError(str(job_id))
        return JobNotFoundError(f"no job {job_id}")

    def cancel(self, job_id: ULID, *, user_id: str | None) -> tuple[Job, bool]:
        """Cancel a job: the record, and whether it is still running (asked to stop) or not."""
        outcome = self._store_call(
            lambda: self.store.cancel(
                str(job_id), user_id=user_id, message=PENDING_CANCELLED_MESSAGE
            )
        )
        status, job = outcome.status, outcome.job
        if job is None:
            raise self._no_record(job_id)
        if status is CancelStatus.FINISHED:
            raise JobFinishedError(f"job {job_id} is already {job.state.value}; nothing to cancel")
        if status is not CancelStatus.ALREADY:
            logger.info(
                "job cancel requested", extra={"job_id": str(job_id), "outcome": status.value}
            )
        return job, status is CancelStatus.REQUESTED

    def list(self, state: JobState | None, *, limit: int, after: str | None) -> JobPage:
        """A page of jobs, newest first, older than job ``after``."""
        jobs, last_id = self._store_call(
            lambda: self.store.list_jobs(state, limit=limit, after=after)
        )
        return JobPage(jobs, last_id)

    def overview(self) -> Overview:
        """Cluster-wide counts (queue, running, finished in the last hour) and busy workers."""
        return self._store_call(self.store.overview)

    def queue_depth(self) -> dict[str, int]:
        """Cluster-wide pending and running counts."""
        return self._store_call(self.store.queue_depth)
