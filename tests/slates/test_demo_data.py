"""The demo slates: deterministic, sized like real slates, and consistent with the graph model."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from app.slates.demo_data import demo_slates
from app.slates.simulation import simulate

SLATE_KEYS = {"id", "sport", "site", "name", "starts_at", "games", "teams", "players"}
GAME_KEYS = {"id", "home", "away", "total", "spread"}
TEAM_KEYS = {"id", "name"}
PLAYER_KEYS = {"id", "name", "team_id", "game_id", "salary", "positions", "projection", "stddev"}


@pytest.fixture(scope="module")
def slates() -> dict[str, dict]:
    return {slate["id"]: slate for slate in demo_slates()}


def test_every_call_returns_the_same_slates():
    assert demo_slates() == demo_slates()


def test_slate_ids_are_the_documented_readable_ones(slates):
    assert list(slates) == [
        "nba-2026-11-28-main",
        "nba-2026-11-28-showdown-bos-nyk",
        "nfl-2026-11-29-main",
    ]


@pytest.mark.parametrize(
    ("slate_id", "sport", "games", "teams", "players"),
    [
        ("nba-2026-11-28-main", "basketball", 10, 20, range(230, 271)),
        ("nfl-2026-11-29-main", "football", 13, 26, range(470, 531)),
        ("nba-2026-11-28-showdown-bos-nyk", "basketball", 1, 2, range(18, 23)),
    ],
)
def test_slates_have_realistic_sizes(slates, slate_id, sport, games, teams, players):
    slate = slates[slate_id]
    assert slate["sport"] == sport
    assert (len(slate["games"]), len(slate["teams"])) == (games, teams)
    assert len(slate["players"]) in players


def test_every_record_has_exactly_the_simulation_input_fields(slates):
    for slate in slates.values():
        assert set(slate) == SLATE_KEYS
        assert all(set(game) == GAME_KEYS for game in slate["games"])
        assert all(set(team) == TEAM_KEYS for team in slate["teams"])
        assert all(set(player) == PLAYER_KEYS for player in slate["players"])


def test_ids_are_unique_and_everything_is_ordered_by_id(slates):
    for slate in slates.values():
        for kind in ("games", "teams", "players"):
            ids = [item["id"] for item in slate[kind]]
            assert ids == sorted(set(ids)), (slate["id"], kind)


def test_a_shared_id_means_the_same_team_and_game_on_every_slate(slates):
    seen: dict[str, dict] = {}
    for slate in slates.values():
        for item in slate["teams"] + slate["games"]:
            assert seen.setdefault(item["id"], item) == item


def test_team_ids_are_unique_per_sport_and_player_ids_belong_to_their_team(slates):
    for slate in slates.values():
        prefix = slate["id"].split("-")[0]
        assert all(team["id"].startswith(f"{prefix}-") for team in slate["teams"])
        for player in slate["players"]:
            assert player["id"].startswith(f"{player['team_id']}-")


def test_every_team_plays_exactly_one_game_and_players_are_in_their_teams_game(slates):
    for slate in slates.values():
        sides = Counter(team for game in slate["games"] for team in (game["home"], game["away"]))
        assert sides == Counter({team["id"]: 1 for team in slate["teams"]})
        game_of_team = {
            team: game["id"] for game in slate["games"] for team in (game["home"], game["away"])
        }
        for player in slate["players"]:
            assert game_of_team[player["team_id"]] == player["game_id"], player["id"]


def test_football_has_one_team_defense_per_team(slates):
    players = slates["nfl-2026-11-29-main"]["players"]
    defenses = [player for player in players if player["positions"] == ["DST"]]
    assert sorted(player["team_id"] for player in defenses) == sorted(
        team["id"] for team in slates["nfl-2026-11-29-main"]["teams"]
    )
    positions = {position for player in players for position in player["positions"]}
    assert positions == {"QB", "RB", "WR", "TE", "DST"}


@pytest.mark.parametrize(
    ("slate_id", "salaries", "positions"),
    [
        ("nba-2026-11-28-main", (3000, 11000), {"PG", "SG", "SF", "PF", "C"}),
        ("nfl-2026-11-29-main", (2000, 9500), {"QB", "RB", "WR", "TE", "DST"}),
    ],
)
def test_salaries_positions_and_projections_are_plausible(slates, slate_id, salaries, positions):
    players = slates[slate_id]["players"]
    low, high = salaries
    assert all(
        low <= player["salary"] <= high and player["salary"] % 100 == 0 for player in players
    )
    assert all(set(player["positions"]) <= positions for player in players)
    assert all(0 < player["stddev"] < player["projection"] for player in players)
    correlation = statistics.correlation(
        [player["salary"] for player in players], [player["projection"] for player in players]
    )
    assert correlation > 0.8


def test_basketball_projections_and_deviations_look_like_basketball(slates):
    players = slates["nba-2026-11-28-main"]["players"]
    assert min(player["projection"] for player in players) >= 8
    assert max(player["projection"] for player in players) <= 65
    assert all(0.25 <= player["stddev"] / player["projection"] <= 0.351 for player in players)


@pytest.mark.parametrize(
    ("slate_id", "totals", "max_spread"),
    [("nba-2026-11-28-main", (200, 250), 16), ("nfl-2026-11-29-main", (35, 56), 14)],
)
def test_betting_lines_are_plausible_half_points(slates, slate_id, totals, max_spread):
    for game in slates[slate_id]["games"]:
        assert totals[0] <= game["total"] <= totals[1]
        assert abs(game["spread"]) <= max_spread
        assert (game["total"] * 2).is_integer() and (game["spread"] * 2).is_integer()


def test_showdown_is_the_main_slate_game_with_the_same_players_repriced(slates):
    main = slates["nba-2026-11-28-main"]
    showdown = slates["nba-2026-11-28-showdown-bos-nyk"]
    assert showdown["games"] == [g for g in main["games"] if g["id"] == "nba-2026-11-28-bos-nyk"]
    assert {team["id"] for team in showdown["teams"]} == {"nba-bos", "nba-nyk"}
    on_main = {player["id"]: player for player in main["players"]}
    for player in showdown["players"]:
        same = on_main[player["id"]]
        assert (player["projection"], player["stddev"]) == (same["projection"], same["stddev"])


def test_each_slate_is_accepted_by_the_simulation():
    for slate in demo_slates():
        result = simulate(slate, 200, 1)
        assert len(result["players"]) == len(slate["players"])
