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
            result = simulate(
                slate, params["scenario_count"], params["seed"], progress=progress_reporter()
            )
        except SimulationError as error:
            raise JobFailure("invalid_slate", str(error)) from None
        return with_names(result, slate)

    return run


def with_names(result: dict[str, Any], slate: Mapping[str, Any]) -> dict[str, Any]:
    """The result with each player's name, team and projection, and each team's name.

    A result outlives the graph's version of its slate: it says who it is about itself, so the
    dashboard (and any client) can show it without asking Neo4j, as the slate was when it ran.
    """
    players = {player["id"]: player for player in slate.get("players") or []}
    teams = {team["id"]: team for team in slate.get("teams") or []}
    for summary in result["players"]:
        player = players[summary["id"]]
        summary.update(
            name=player.get("name"), team_id=player["team_id"], projection=player["projection"]
        )
    for summary in result["teams"]:
        summary["name"] = teams[summary["id"]].get("name")
    return result
