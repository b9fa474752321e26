"""A backlog of pending jobs loaded straight through the store, in pipelined batches."""

from __future__ import annotations

from app.jobs.ids import new_job_id
from app.jobs.outcomes import NewJob
from app.jobs.store import JobStore

# Submissions per pipeline: one round trip each, a few hundred KB of commands.
BATCH = 1000
PARAMS = {"slate_id": "nba-2026-11-28-main", "scenario_count": 1000, "seed": 7}


def load_backlog(store: JobStore, count: int, batch: int = BATCH) -> None:
    """Submit ``count`` pending jobs through ``store`` (its retention applies to them)."""
    for first in range(0, count, batch):
        size = min(batch, count - first)
        store.submit_many(NewJob(new_job_id(), PARAMS) for _ in range(size))
