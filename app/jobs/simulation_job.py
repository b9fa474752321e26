"""What a job does: load its slate from Neo4j and simulate it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.jobs.runner import JobBody, JobDeferred, JobFailure, progress_reporter
from app.resilience import DependencyUnavailableError
from app.slates.repository import SlateRepository, SlateStoreUnavailableError
from app.slates.simulation import SimulationError, simulate


def simulation_job(repository: SlateRepository) -> JobBody:
    """The job body for slate simulations, reading slates through ``repository``."""

    def run(params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            slate = repository.load_slate(params["slate_id"])
        except (SlateStoreUnavailableError, DependencyUnavailableError) as error:
            raise JobDeferred(f"slate store unavailable: {error}") from None
        if slate is None:
            raise JobFailure("slate_not_found", f"no slate {params['slate_id']!r}")
        try:
            return simulate(
                slate, params["scenario_count"], params["seed"], progress=progress_reporter()
            )
        except SimulationError as error:
            raise JobFailure("invalid_slate", str(error)) from None

    return run
