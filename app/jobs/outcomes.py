"""What the store's calls return: each transition's outcome, named, and the queue's overview."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from app.jobs.job import Job


class SubmitStatus(str, Enum):
    """What a submission did."""

    CREATED = "created"
    RESENT = "resent"  # this very submission had run: its first reply was lost
    EXISTING = "existing"  # an earlier request with the same Idempotency-Key and body
    CONFLICT = "conflict"  # the same Idempotency-Key with another body

    @property
    def created_now(self) -> bool:
        """Whether this request created the job (a re-sent submit did too)."""
        return self in (SubmitStatus.CREATED, SubmitStatus.RESENT)


class ClaimStatus(str, Enum):
    """What a claim found."""

    CLAIMED = "claimed"
    EMPTY = "empty"
    BUSY = "busy"  # dropped entries of expired jobs and stopped: claim again at once
    LOST = "lost"  # this token's attempt ended before its re-sent claim arrived


class CancelStatus(str, Enum):
    """What a cancel did."""

    CANCELLED = "cancelled"  # it was pending: failed/cancelled now
    REQUESTED = "requested"  # it is running: its attempt stops at its next chunk boundary
    ALREADY = "already"  # cancelled before
    FINISHED = "finished"  # complete, or failed for another reason
    MISSING = "missing"  # no record (never issued, or expired)


class Transition(str, Enum):
    """What a finish or hand-back of one attempt did."""

    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"  # a re-sent call: this attempt's outcome is stored
    SUPERSEDED = "superseded"  # the job moved on without this attempt

    @property
    def stored(self) -> bool:
        """Whether the store holds this attempt's outcome."""
        return self is not Transition.SUPERSEDED


@dataclass(frozen=True)
class Overview:
    """The queue at a glance: counts across the cluster and where jobs run."""

    pending: int
    running: int
    complete_last_hour: int
    failed_last_hour: int
    # worker (host:pid) -> its running jobs, for the first OVERVIEW_WORKER_LIMIT running jobs
    running_per_worker: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The overview as the dashboard's JSON shows it."""
        return {
            "pending": self.pending,
            "running": self.running,
            "complete_last_hour": self.complete_last_hour,
            "failed_last_hour": self.failed_last_hour,
            "workers": [
                {"worker": worker, "running": count}
                for worker, count in sorted(self.running_per_worker.items())
            ],
        }


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did, and the job as the cancel left it (None when there is no record)."""

    status: CancelStatus
    job: Job | None


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submission did, and the created (or earlier) job as stored."""

    status: SubmitStatus
    job: Job


@dataclass(frozen=True)
class ClaimOutcome:
    """What a claim found; ``job`` is the claimed job when ``status`` is CLAIMED.

    ``cancelled`` names the jobs the claim failed as cancelled instead of running them.
    """

    status: ClaimStatus
    job: Job | None = None
    cancelled: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecoveryOutcome:
    """A job the sweep found with a lapsed lease, and what became of it."""

    job_id: str
    outcome: str  # "requeued" or "failed"


@dataclass(frozen=True)
class RenewOutcome:
    """What a heartbeat learned: attempts that lost their job, attempts asked to stop."""

    lost: list[str]  # claim tokens
    cancel_requested: list[str]  # claim tokens


@dataclass(frozen=True)
class SweepOutcome:
    """One sweep of some shards: the jobs it recovered, and the shards whose batch was full
    (sweep them again at once)."""

    recovered: list[RecoveryOutcome]
    more: tuple[int, ...]


@dataclass(frozen=True)
class NewJob:
    """A job to submit: its ID (minted by the caller), params and correlation IDs."""

    job_id: str
    params: Mapping[str, Any]
    request_id: str | None = None
    user_id: str | None = None
    idempotency: tuple[str, str] | None = None  # (Idempotency-Key, body fingerprint)
