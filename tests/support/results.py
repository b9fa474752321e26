"""Jobs and results as the service stores them, for benchmarks and tests: a result document,
and a pending job run to its end in the calling thread."""

from __future__ import annotations

import json

from app.correlation import new_id
from app.jobs.keys import SHARDS
from app.jobs.outcomes import ClaimOutcome, ClaimStatus
from app.jobs.runner import JobBody, JobFailure
from app.jobs.simulation_job import with_names
from app.jobs.store import JobStore
from app.slates.demo_data import demo_slates
from app.slates.simulation import simulate


def stored_result(slate_id: str, scenario_count: int, seed: int) -> str:
    """The result of a demo slate's job, named as the job body names it, compact JSON."""
    slate = next(s for s in demo_slates() if s["id"] == slate_id)
    result = with_names(simulate(slate, scenario_count, seed), slate)
    return json.dumps(result, separators=(",", ":"))


def claim_any(
    store: JobStore,
    *,
    worker: str = "test-host:1",
    instance: str = "test-host:0",
    lease_seconds: float = 600,
) -> ClaimOutcome:
    """Claim a pending job from the first shard that has one, in shard order (the oldest of
    that shard), under a new token; the last outcome (EMPTY when no shard had one)."""
    outcome = ClaimOutcome(ClaimStatus.EMPTY)
    for shard in SHARDS:
        while True:
            outcome = store.claim_next(
                new_id(),
                shard=shard,
                worker=worker,
                instance=instance,
                lease_seconds=lease_seconds,
            )
            if outcome.status is not ClaimStatus.BUSY:
                break
        if outcome.job is not None:
            return outcome
    return outcome


def run_next_job(store: JobStore, body: JobBody, *, worker: str = "test-host:1") -> str:
    """Claim a pending job (``claim_any``) and run ``body`` on it to complete (or failed, when
    it raises JobFailure), storing the outcome as a job thread would; the job's id."""
    job = claim_any(store, worker=worker).job
    assert job is not None, "no pending job"
    try:
        result = body(job.params)
    except JobFailure as failure:
        store.mark_failed(job.id, job.claim_token, failure.code, failure.message, duration_ms=1)
    else:
        store.mark_complete(job.id, job.claim_token, json.dumps(result), duration_ms=1)
    return job.id
