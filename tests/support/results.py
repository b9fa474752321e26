"""A complete job's result document as the service stores it, for benchmarks and tests."""

from __future__ import annotations

import json

from app.jobs.simulation_job import with_names
from app.slates.demo_data import demo_slates
from app.slates.simulation import simulate


def stored_result(slate_id: str, scenario_count: int, seed: int) -> str:
    """The result of a demo slate's job, named as the job body names it, compact JSON."""
    slate = next(s for s in demo_slates() if s["id"] == slate_id)
    result = with_names(simulate(slate, scenario_count, seed), slate)
    return json.dumps(result, separators=(",", ":"))
