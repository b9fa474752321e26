"""Helpers for job tests."""

from __future__ import annotations

SHORT_TTL_SECONDS = 2


def make_params(scenario_count: int = 100, seed: int = 7, slate_id: str = "test-slate") -> dict:
    """Job parameters as the HTTP layer stores them."""
    return {"slate_id": slate_id, "scenario_count": scenario_count, "seed": seed}
