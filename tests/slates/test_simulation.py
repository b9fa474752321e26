"""The simulation engine: model statistics, determinism, chunking, bounds and errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from app.config import Settings
from app.slates import simulation
from app.slates.simulation import (
    BLOCK_SCENARIOS,
    GAME_WEIGHT,
    HISTOGRAM_BINS,
    HISTOGRAM_SPAN,
    PERCENTILES,
    TEAM_WEIGHT,
    SimulationError,
    sample_points,
    simulate,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Enough decimals to show every bit of a float64: determinism is checked before rounding.
ALL_DIGITS = 17
# One unit of the last decimal kept in results: the tolerance of comparisons with exact values.
LAST_DIGIT = 10.0**-simulation.DECIMALS


def make_slate(
    games: int = 3, players_per_team: int = 6, projection: float = 40.0, stddev: float = 8.0
) -> dict:
    """``games`` games of two teams; projection >> stddev by default, so floors are rare."""
    slate: dict = {"id": "synthetic", "games": [], "teams": [], "players": []}
    for g in range(games):
        home, away = f"t{2 * g}", f"t{2 * g + 1}"
        slate["games"].append(
            {"id": f"g{g}", "home": home, "away": away, "total": 45.0, "spread": -2.5}
        )
        for team in (home, away):
            slate["teams"].append({"id": team, "name": team.upper()})
            slate["players"].extend(
                {
                    "id": f"{team}-p{k}",
                    "name": f"Player {k}",
                    "team_id": team,
                    "game_id": f"g{g}",
                    "salary": 5000 + 500 * k,
                    "positions": ["X"],
                    "projection": projection + k,
                    "stddev": stddev,
                }
                for k in range(players_per_team)
            )
    return slate


def canonical(result: dict) -> str:
    """The result as compared for determinism: JSON without the wall time."""
    return json.dumps({k: v for k, v in result.items() if k != "duration_ms"}, sort_keys=True)


def column(slate: dict, player_id: str) -> int:
    """Where a player's points are in ``sample_points``: the slate's order."""
    return next(i for i, player in enumerate(slate["players"]) if player["id"] == player_id)


@pytest.fixture
def all_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results keep every bit, so a difference in the last one fails the comparison."""
    monkeypatch.setattr(simulation, "DECIMALS", ALL_DIGITS)


def test_means_and_spreads_follow_projections_and_stddevs():
    slate = make_slate()
    result = simulate(slate, 40_000, seed=1)
    for player, summary in zip(slate["players"], result["players"], strict=True):
        assert summary["id"] == player["id"]
        assert summary["mean"] == pytest.approx(player["projection"], abs=0.25)
        assert summary["std"] == pytest.approx(player["stddev"], rel=0.03)
        assert 0 < summary["p10"] < summary["p25"] < summary["p50"] < summary["p75"]
        assert summary["p75"] < summary["p90"] < summary["p99"] <= summary["max"]
    assert result["scenario_count"] == 40_000
    assert result["seed"] == 1
    assert result["duration_ms"] > 0


def test_low_projections_are_floored_at_zero():
    mu, sigma = 2.0, 6.0
    slate = make_slate(games=1, players_per_team=1, projection=mu, stddev=sigma)
    result = simulate(slate, 40_000, seed=2)
    z = mu / sigma
    cdf, pdf = 0.5 * (1 + math.erf(z / math.sqrt(2))), math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    floored_mean = mu * cdf + sigma * pdf  # E[max(0, X)], X ~ N(mu, sigma): above mu
    for summary in result["players"]:
        assert summary["p10"] == summary["p25"] == 0.0  # P(points = 0) = 1 - cdf = 0.37
        assert summary["p50"] == pytest.approx(mu, abs=0.15)
        assert summary["mean"] == pytest.approx(floored_mean, abs=0.1)


def test_correlation_is_strong_within_a_team_weak_across_a_game_and_absent_across_games():
    slate = make_slate(games=2, players_per_team=2)
    corr = np.corrcoef(sample_points(slate, 60_000, seed=3), rowvar=False)

    def between(a: str, b: str) -> float:
        return corr[column(slate, a), column(slate, b)]

    assert between("t0-p0", "t0-p1") == pytest.approx(GAME_WEIGHT + TEAM_WEIGHT, abs=0.02)
    assert between("t0-p0", "t1-p0") == pytest.approx(GAME_WEIGHT, abs=0.02)
    assert between("t0-p1", "t1-p1") == pytest.approx(GAME_WEIGHT, abs=0.02)
    assert between("t0-p0", "t2-p0") == pytest.approx(0.0, abs=0.02)
    assert between("t1-p1", "t3-p1") == pytest.approx(0.0, abs=0.02)


def test_team_summaries_give_the_configured_teammate_correlation_and_the_total():
    slate = make_slate()
    result = simulate(slate, 40_000, seed=4)
    assert [team["id"] for team in result["teams"]] == [team["id"] for team in slate["teams"]]
    for team in result["teams"]:
        correlation = team["mean_pairwise_correlation"]
        assert correlation == pytest.approx(GAME_WEIGHT + TEAM_WEIGHT, abs=0.02)
        assert team["mean_total"] == pytest.approx(6 * 40 + 15, abs=1.5)


def test_team_correlation_is_the_mean_over_teammate_pairs_and_none_for_one_player():
    slate = make_slate(games=1, players_per_team=3)
    slate["players"] = [p for p in slate["players"] if p["id"] not in ("t1-p1", "t1-p2")]
    result = simulate(slate, 20_000, seed=5)
    corr = np.corrcoef(sample_points(slate, 20_000, seed=5)[:, :3], rowvar=False)  # t0
    t0, t1 = result["teams"]
    assert t0["mean_pairwise_correlation"] == pytest.approx(
        corr[np.triu_indices(3, k=1)].mean(), abs=LAST_DIGIT
    )
    assert t1["mean_pairwise_correlation"] is None


def test_weights_are_parameters():
    slate = make_slate(games=1, players_per_team=2)
    points = sample_points(slate, 40_000, seed=6, game_weight=0.0, team_weight=0.6)
    corr = np.corrcoef(points, rowvar=False)
    assert corr[column(slate, "t0-p0"), column(slate, "t0-p1")] == pytest.approx(0.6, abs=0.02)
    assert corr[column(slate, "t0-p0"), column(slate, "t1-p0")] == pytest.approx(0.0, abs=0.02)


@pytest.mark.usefixtures("all_digits")
def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    slate = make_slate()
    first = canonical(simulate(slate, 10_000, seed=7))
    assert canonical(simulate(slate, 10_000, seed=7)) == first
    assert canonical(simulate(slate, 10_000, seed=8)) != first


@pytest.mark.usefixtures("all_digits")
@pytest.mark.parametrize(
    "chunk_size", [1, BLOCK_SCENARIOS, 2 * BLOCK_SCENARIOS, 5000, 3 * BLOCK_SCENARIOS + 123, 10**7]
)
def test_chunk_size_does_not_change_a_single_bit(chunk_size):
    slate = make_slate(games=2, players_per_team=3)  # the default chunk holds all 7 full blocks
    count = 7 * BLOCK_SCENARIOS + 123
    reference = canonical(simulate(slate, count, seed=9))
    assert canonical(simulate(slate, count, seed=9, chunk_size=chunk_size)) == reference


def test_numpy_thread_count_does_not_change_a_single_bit():
    slate = make_slate(games=2, players_per_team=8)
    script = (
        "import json, sys; from app.slates import simulation; "
        f"simulation.DECIMALS = {ALL_DIGITS}; "
        "r = simulation.simulate(json.load(sys.stdin), 20000, seed=10); r.pop('duration_ms'); "
        "sys.stdout.write(json.dumps(r, sort_keys=True))"
    )
    outputs = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        run = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(slate),
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        outputs.add(run.stdout)
    assert len(outputs) == 1


def test_percentiles_are_within_one_bin_of_the_exact_order_statistic():
    slate = make_slate(games=1, players_per_team=3, projection=6.0, stddev=5.0)  # some floors
    count = 30_000
    result = simulate(slate, count, seed=11)
    points = sample_points(slate, count, seed=11)
    for p, (player, summary) in enumerate(zip(slate["players"], result["players"], strict=True)):
        width = (player["projection"] + HISTOGRAM_SPAN * player["stddev"]) / HISTOGRAM_BINS
        for q in PERCENTILES:
            exact = np.percentile(points[:, p], q, method="inverted_cdf")
            assert abs(summary[f"p{q}"] - exact) < width + LAST_DIGIT, (player["id"], q)
        assert summary["max"] == pytest.approx(points[:, p].max(), abs=LAST_DIGIT)
        assert summary["mean"] == pytest.approx(points[:, p].mean(), abs=LAST_DIGIT)
        assert summary["std"] == pytest.approx(points[:, p].std(), abs=LAST_DIGIT)
    assert result["players"][0]["p10"] == 0.0


def test_value_target_is_5x_salary_and_its_rate_the_share_of_scenarios_reaching_it():
    slate = make_slate(games=1, players_per_team=4, projection=25.0)
    result = simulate(slate, 20_000, seed=12)
    points = sample_points(slate, 20_000, seed=12)
    for p, (player, summary) in enumerate(zip(slate["players"], result["players"], strict=True)):
        target = player["salary"] / 1000 * 5
        assert summary["value_target"] == target
        assert summary["p_value_target"] == pytest.approx(
            (points[:, p] >= target).mean(), abs=LAST_DIGIT
        )
    assert 0.05 < result["players"][0]["p_value_target"] < 0.95


def test_result_size_does_not_grow_with_the_scenario_count():
    slate = make_slate()
    small = len(json.dumps(simulate(slate, 1_000, seed=13)))
    large = len(json.dumps(simulate(slate, 100_000, seed=13)))
    assert abs(large - small) < 0.05 * small


def test_memory_does_not_grow_with_the_scenario_count():
    slate = make_slate(games=4, players_per_team=12)

    def peak(count: int) -> int:
        tracemalloc.start()
        try:
            simulate(slate, count, seed=14)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(20_000), peak(200_000)
    assert large < 1.1 * small + 2**20
    assert large < 32 * 2**20


def test_one_scenario_and_the_largest_count_the_api_accepts():
    slate = make_slate(games=1, players_per_team=3)
    one = simulate(slate, 1, seed=15)
    assert one["scenario_count"] == 1
    for player, summary in zip(slate["players"], one["players"], strict=True):
        width = (player["projection"] + HISTOGRAM_SPAN * player["stddev"]) / HISTOGRAM_BINS
        assert summary["std"] == 0.0
        assert summary["mean"] == summary["max"]
        assert summary["max"] - width < summary["p10"] <= summary["p99"] <= summary["max"]
        assert summary["p_value_target"] in (0.0, 1.0)
    assert all(team["mean_pairwise_correlation"] is None for team in one["teams"])

    largest = Settings().job_max_scenarios
    many = simulate(slate, largest, seed=15)
    assert many["scenario_count"] == largest
    for player, summary in zip(slate["players"], many["players"], strict=True):
        assert summary["mean"] == pytest.approx(player["projection"], abs=0.05)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(players=[]), "no players"),
        (lambda s: s.pop("players"), "no players"),
        (lambda s: s["players"][0].update(team_id="nope"), "unknown team 'nope'"),
        (lambda s: s["players"][0].update(game_id="nope"), "unknown game 'nope'"),
        (lambda s: s["games"][0].update(home="t9"), "does not play in game 'g0'"),
        (lambda s: s["players"][1].update(id="t0-p0"), "player id 't0-p0' appears twice"),
        (lambda s: s["teams"][1].pop("id"), "a team of the slate has no id"),
        (lambda s: s["players"][0].update(stddev=-1.0), "negative stddev"),
        (lambda s: s["players"][0].update(projection=float("nan")), "invalid projection"),
        (lambda s: s["players"][0].update(projection="12"), "invalid projection"),
        (lambda s: s["players"][0].pop("salary"), "invalid salary"),
    ],
)
def test_invalid_slates_raise_a_clear_error(change, message):
    slate = make_slate(games=1, players_per_team=2)
    change(slate)
    with pytest.raises(SimulationError, match=message):
        simulate(slate, 100, seed=1)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"scenario_count": 0}, "scenario_count"),
        ({"scenario_count": -5}, "scenario_count"),
        ({"scenario_count": 2.5}, "scenario_count"),
        ({"scenario_count": True}, "scenario_count"),
        ({"seed": -1}, "seed"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"game_weight": 0.5, "team_weight": 0.5}, "sum below 1"),
        ({"team_weight": -0.1}, "team_weight"),
    ],
)
def test_invalid_parameters_raise_a_clear_error(arguments, message):
    arguments = {"scenario_count": 9, "seed": 1, **arguments}
    with pytest.raises(SimulationError, match=message):
        simulate(make_slate(games=1, players_per_team=1), **arguments)
