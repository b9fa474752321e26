"""Fixtures for job tests: job parameters as the HTTP layer stores them, and submissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.jobs.ids import new_job_id
from app.jobs.store import JobStore


def _params(scenario_count: int = 100, seed: int = 7, slate_id: str = "test-slate") -> dict:
    return {"slate_id": slate_id, "scenario_count": scenario_count, "seed": seed}


@pytest.fixture
def make_params() -> Callable[..., dict[str, Any]]:
    """Build job parameters (``scenario_count``, ``seed``, ``slate_id``) with test defaults."""
    return _params


@pytest.fixture
def submit(store: JobStore) -> Callable[..., str]:
    """Submit a job straight to a store (the test's own by default); return its ID.

    Keyword arguments are job parameters, plus ``request_id``, ``user_id`` and ``store``.
    """

    def submit_job(
        *,
        store: JobStore = store,
        request_id: str | None = "req-1",
        user_id: str | None = "alice",
        **params: Any,
    ) -> str:
        job_id = new_job_id()
        outcome = store.submit(job_id, _params(**params), request_id=request_id, user_id=user_id)
        assert outcome.status == "created"
        return job_id

    return submit_job
