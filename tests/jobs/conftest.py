"""Fixtures for job tests: job parameters as the HTTP layer stores them, and submissions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
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
def submit_to_store(store: JobStore) -> Callable[..., str]:
    """Submit a job straight to a store (the test's own by default); return its ID.

    Keyword arguments are job parameters, plus ``request_id``, ``user_id``, ``store`` and
    ``shard``: the job is minted for shard 0 unless told otherwise, so that the jobs of a test
    are claimed in submission order (FIFO holds within a shard).
    """

    def submit_job(
        *,
        store: JobStore = store,
        request_id: str | None = "req-1",
        user_id: str | None = "alice",
        shard: int = 0,
        **params: Any,
    ) -> str:
        job_id = new_job_id(shard=shard)
        outcome = store.submit(job_id, _params(**params), request_id=request_id, user_id=user_id)
        assert outcome.status == "created"
        return job_id

    return submit_job


class GatedBody:
    """A job body that says when it started and returns ``result`` only once released."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, params: Mapping[str, Any]) -> dict[str, Any]:
        self.started.set()
        assert self.release.wait(30), "the test never released the job body"
        return self.result


@pytest.fixture
def gated_body() -> Iterator[Callable[[dict[str, Any]], GatedBody]]:
    """Make a job body that blocks until the test calls ``.release.set()``."""
    bodies: list[GatedBody] = []

    def make(result: dict[str, Any]) -> GatedBody:
        bodies.append(GatedBody(result))
        return bodies[-1]

    yield make
    for body in bodies:  # a test that failed midway must not leave job threads blocked
        body.release.set()
