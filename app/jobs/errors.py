"""What the job use cases refuse, in their own terms; app.errors turns each into an answer.

Messages say what happened and what to do; none names an address or a secret.
"""

from __future__ import annotations


class JobError(Exception):
    """A job use case that cannot be done now or at all."""


class JobNotFoundError(JobError):
    """No job with this ID was ever issued (or its trace is gone)."""


class JobExpiredError(JobError):
    """The job existed and its retention ended."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} has expired: its retention period ended")
        self.job_id = job_id


class IdempotencyConflictError(JobError):
    """The Idempotency-Key was used before with another body."""


class JobFinishedError(JobError):
    """The job has finished: there is nothing left to cancel."""


class ShuttingDownError(JobError):
    """This instance refuses new jobs: it is shutting down."""


class JobStoreUnavailableError(JobError):
    """Redis did not answer in time; whether the call took effect is unknown."""
