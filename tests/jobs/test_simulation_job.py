"""The job body: a result names its players and teams as the slate did when the job ran."""

from __future__ import annotations

from app.jobs.simulation_job import with_names
from app.slates.demo_data import demo_slates
from app.slates.simulation import simulate


def test_a_result_names_every_player_and_team_of_its_slate():
    slate = demo_slates()[0]
    result = with_names(simulate(slate, 1000, seed=5), slate)
    by_id = {player["id"]: player for player in slate["players"]}
    assert [summary["id"] for summary in result["players"]] == list(by_id)
    for summary in result["players"]:
        player = by_id[summary["id"]]
        assert (summary["name"], summary["team_id"]) == (player["name"], player["team_id"])
        assert summary["projection"] == player["projection"]
    names = {team["id"]: team["name"] for team in slate["teams"]}
    assert {team["id"]: team["name"] for team in result["teams"]} == names
