"""The simulation engine: model statistics, determinism, chunking, bounds and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from app.slates.simulation import (
    BLOCK_SCENARIOS,
    GAME_WEIGHT,
    HISTOGRAM_BINS,
    HISTOGRAM_SPAN,
    TEAM_WEIGHT,
    SimulationError,
    sample_points,
    simulate,
)
from tests.e2e.harness import REPO_ROOT


def make_slate(
    games: int = 3, players_per_team: int = 6, projection: float = 40.0, stddev: float = 8.0
) -> dict:
    """A synthetic slate: ``games`` games of two teams; projection >> stddev, so floors are rare."""
    slate = {"id": "synthetic", "games": [], "teams": [], "players": []}
    for g in range(games):
        home, away = f"t{2 * g}", f"t{2 * g + 1}"
        slate["games"].append(
            {"id": f"g{g}", "home": home, "away": away, "total": 45.0, "spread": -2.5}
        )
        for team in (home, away):
            slate["teams"].append({"id": team, "name": team.upper()})
            for k in range(players_per_team):
                slate["players"].append(
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
                )
    return slate


def _canonical(result: dict) -> str:
    return json.dumps({k: v for k, v in result.items() if k != "duration_ms"}, sort_keys=True)


def _index(slate: dict) -> dict[str, int]:
    return {player["id"]: i for i, player in enumerate(slate["players"])}


def test_means_follow_projections_and_stds_follow_stddevs():
    slate = make_slate()
    result = simulate(slate, 40_000, seed=1)
    for player, summary in zip(slate["players"], result["players"], strict=True):
        assert summary["id"] == player["id"]
        assert summary["mean"] == pytest.approx(player["projection"], abs=0.25)
        assert summary["std"] == pytest.approx(player["stddev"], rel=0.03)
        assert summary["p10"] < summary["p25"] < summary["p50"] < summary["p75"] < summary["p90"]
        assert summary["p90"] < summary["p99"] <= summary["max"]


def test_low_projections_are_floored_at_zero():
    slate = make_slate(games=1, players_per_team=1, projection=2.0, stddev=6.0)
    result = simulate(slate, 20_000, seed=2)
    for summary in result["players"]:
        assert summary["p10"] == 0.0
        assert summary["mean"] > 2.0  # the floor lifts the mean above the projection


def test_teammates_opponents_and_other_games_are_correlated_as_configured():
    slate = make_slate(games=2, players_per_team=2)
    points = sample_points(slate, 60_000, seed=3)
    corr = np.corrcoef(points, rowvar=False)
    at = _index(slate)
    assert corr[at["t0-p0"], at["t0-p1"]] == pytest.approx(GAME_WEIGHT + TEAM_WEIGHT, abs=0.02)
    assert corr[at["t0-p0"], at["t1-p0"]] == pytest.approx(GAME_WEIGHT, abs=0.02)
    assert corr[at["t0-p0"], at["t2-p0"]] == pytest.approx(0.0, abs=0.02)
    assert corr[at["t1-p1"], at["t3-p1"]] == pytest.approx(0.0, abs=0.02)


def test_team_correlation_in_the_result_matches_the_model():
    result = simulate(make_slate(), 40_000, seed=4)
    for team in result["teams"]:
        assert team["mean_pairwise_correlation"] == pytest.approx(
            GAME_WEIGHT + TEAM_WEIGHT, abs=0.02
        )
        assert team["mean_total"] == pytest.approx(6 * 40 + 15, abs=1.5)


def test_weights_are_parameters():
    slate = make_slate(games=1, players_per_team=2)
    points = sample_points(slate, 40_000, seed=5, game_weight=0.0, team_weight=0.6)
    corr = np.corrcoef(points, rowvar=False)
    at = _index(slate)
    assert corr[at["t0-p0"], at["t0-p1"]] == pytest.approx(0.6, abs=0.02)
    assert corr[at["t0-p0"], at["t1-p0"]] == pytest.approx(0.0, abs=0.02)


def test_same_inputs_give_byte_identical_results_and_another_seed_differs():
    slate = make_slate()
    first, second = simulate(slate, 10_000, seed=6), simulate(slate, 10_000, seed=6)
    assert _canonical(first) == _canonical(second)
    assert _canonical(simulate(slate, 10_000, seed=7)) != _canonical(first)


@pytest.mark.parametrize("chunk_size", [1, BLOCK_SCENARIOS, 2 * BLOCK_SCENARIOS, 5000, 10**6])
def test_chunking_does_not_change_a_single_byte(chunk_size):
    slate = make_slate()
    count = 3 * BLOCK_SCENARIOS + 123
    reference = _canonical(simulate(slate, count, seed=8, chunk_size=10**7))
    assert _canonical(simulate(slate, count, seed=8, chunk_size=chunk_size)) == reference


def test_numpy_thread_count_does_not_change_a_single_byte():
    script = (
        "import json, sys; from tests.slates.test_simulation import make_slate, _canonical; "
        "from app.slates.simulation import simulate; "
        "sys.stdout.write(_canonical(simulate(make_slate(), 20000, seed=9)))"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert single == _canonical(simulate(make_slate(), 20_000, seed=9))


def test_percentiles_are_within_one_histogram_bin_of_the_exact_ones():
    slate = make_slate(games=1, players_per_team=3)
    count = 30_000
    result = simulate(slate, count, seed=10)
    points = sample_points(slate, count, seed=10)
    for p, (player, summary) in enumerate(zip(slate["players"], result["players"], strict=True)):
        width = (player["projection"] + HISTOGRAM_SPAN * player["stddev"]) / HISTOGRAM_BINS
        for q in (10, 25, 50, 75, 90, 99):
            exact = float(np.percentile(points[:, p], q))
            assert abs(summary[f"p{q}"] - exact) <= width + 0.005, (q, exact, summary)
        assert summary["max"] == pytest.approx(points[:, p].max(), abs=1e-4)
        assert summary["mean"] == pytest.approx(points[:, p].mean(), abs=1e-4)


def test_value_target_probability_is_the_share_of_scenarios_reaching_it():
    slate = make_slate(games=1, players_per_team=2)
    result = simulate(slate, 20_000, seed=11)
    points = sample_points(slate, 20_000, seed=11)
    for p, summary in enumerate(result["players"]):
        target = slate["players"][p]["salary"] / 1000 * 5
        assert summary["value_target"] == pytest.approx(target)
        assert summary["p_value_target"] == pytest.approx((points[:, p] >= target).mean(), abs=1e-4)


def test_result_size_does_not_grow_with_the_scenario_count():
    slate = make_slate()
    small = len(json.dumps(simulate(slate, 1_000, seed=12)))
    large = len(json.dumps(simulate(slate, 100_000, seed=12)))
    assert abs(large - small) < 0.05 * small


def test_scenario_count_bounds():
    slate = make_slate(games=1, players_per_team=2)
    one = simulate(slate, 1, seed=13)
    assert one["scenario_count"] == 1
    assert all(s["p10"] == s["p99"] or s["p10"] <= s["p99"] for s in one["players"])
    for bad in (0, -1, True, 2.5):
        with pytest.raises(SimulationError, match="scenario_count"):
            simulate(slate, bad, seed=1)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(players=[]), "no players"),
        (lambda s: s["players"][0].update(team_id="nope"), "unknown team"),
        (lambda s: s["players"][0].update(game_id="nope"), "unknown game"),
        (lambda s: s["players"][0].update(stddev=-1.0), "stddev"),
        (lambda s: s["players"][0].update(projection=float("nan")), "projection"),
    ],
)
def test_invalid_slates_raise_a_clear_error(change, message):
    slate = make_slate(games=1, players_per_team=2)
    change(slate)
    with pytest.raises(SimulationError, match=message):
        simulate(slate, 100, seed=1)


def test_the_football_demo_slate_runs_at_the_upper_bound_in_bounded_memory():
    from app.slates.demo_data import demo_slates

    football = next(s for s in demo_slates() if s["id"].startswith("nfl"))
    script = (
        "import resource, sys; from app.slates.demo_data import demo_slates; "
        "from app.slates.simulation import simulate; "
        "s = next(x for x in demo_slates() if x['id'].startswith('nfl')); "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "r = simulate(s, 1_000_000, seed=1); "
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "sys.stdout.write(f'{(after - before) // 1024} {len(r[\"players\"])}')"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    grown_mb, players = (int(x) for x in out.split())
    assert players == len(football["players"])
    assert grown_mb < 400
