"""Monte Carlo simulation of a slate: correlated fantasy points for every player, summarised.

Pure: numpy and the standard library only, no I/O, so it is the easiest code to test.

Model. A player's points in one scenario are
    max(0, projection + stddev * (sqrt(GAME_WEIGHT) g + sqrt(TEAM_WEIGHT) t + sqrt(rest) e))
where ``g`` ~ N(0, 1) is shared by every player of a game (both teams: pace, overtime),
``t`` ~ N(0, 1) by teammates (a good day for the offence), ``e`` is the player's own term and
rest = 1 - GAME_WEIGHT - TEAM_WEIGHT. Before the floor at 0, teammates are correlated by
GAME_WEIGHT + TEAM_WEIGHT, opponents by GAME_WEIGHT, players of different games not at all.

Determinism. Draws come in fixed blocks of BLOCK_SCENARIOS scenarios, block ``b`` from its own
generator seeded with ``(seed, b)``. Every floating-point reduction is done per block and the
block totals are added in block order, so the result does not depend on ``chunk_size`` (how
many blocks are drawn at once) nor on numpy's threads: the same inputs give byte-identical JSON.

Memory. One block is drawn at a time by default (a chunk never holds more than CHUNK_BYTES of
draws), into buffers reused from block to block, so 1,000,000 scenarios of a 500-player slate
run in bounded memory; results are summaries whose size does not grow with ``scenario_count``.

Percentiles come from per-player histograms of HISTOGRAM_BINS equal bins over
[0, projection + HISTOGRAM_SPAN * stddev] (higher values count in the last bin; the maximum is
tracked exactly, and so is the mass at the floor: a percentile inside it is exactly 0),
interpolated linearly inside the bin. The error of any percentile below the
top bin is at most one bin width, (projection + HISTOGRAM_SPAN * stddev) / HISTOGRAM_BINS:
0.04 points for a 20-point projection with a 7-point stddev. Counts are integers, so the
histograms are exact whatever the chunking.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Correlation of players of the same game (both teams) before the floor at 0.
GAME_WEIGHT = 0.10
# Extra correlation of teammates on top of the game's.
TEAM_WEIGHT = 0.25
# Scenarios drawn from one generator; fixed, so results do not depend on chunking.
BLOCK_SCENARIOS = 4096
# Upper bound of the draws held at once (float64 scenario x player matrix of one chunk).
CHUNK_BYTES = 64 * 1024 * 1024
# Histogram resolution of each player's points; bounds the percentile error (see above).
HISTOGRAM_BINS = 2048
# The histogram covers projection + HISTOGRAM_SPAN standard deviations (P(beyond) < 1e-15).
HISTOGRAM_SPAN = 8.0
# "Value" in daily fantasy: points per 1,000 of salary; 5x is the usual bar for a good day.
VALUE_MULTIPLIER = 5.0
PERCENTILES = (10, 25, 50, 75, 90, 99)
# Decimals kept in results, so serialisation is stable and compact.
DECIMALS = 4


class SimulationError(ValueError):
    """The slate or the parameters cannot be simulated; the message says why."""


def _round(value: float) -> float:
    return round(float(value), DECIMALS)


def _validate(
    slate: Mapping[str, Any], scenario_count: int, seed: int, game_weight: float, team_weight: float
) -> None:
    if (
        isinstance(scenario_count, bool)
        or not isinstance(scenario_count, int)
        or scenario_count < 1
    ):
        raise SimulationError("scenario_count must be a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SimulationError("seed must be a non-negative integer")
    if not (game_weight >= 0 and team_weight >= 0 and game_weight + team_weight < 1):
        raise SimulationError("game_weight and team_weight must be >= 0 with a sum below 1")
    if not slate.get("players"):
        raise SimulationError(f"slate {slate.get('id')!r} has no players to simulate")


class _SlateArrays:
    """The slate as arrays: per-player projection, stddev, team index; per-team game index."""

    def __init__(self, slate: Mapping[str, Any]) -> None:
        games = {game["id"]: index for index, game in enumerate(slate.get("games", []))}
        teams = {team["id"]: index for index, team in enumerate(slate.get("teams", []))}
        team_game = [-1] * len(teams)
        players: Sequence[Mapping[str, Any]] = slate["players"]
        for player in players:
            team, game = player.get("team_id"), player.get("game_id")
            if team not in teams:
                raise SimulationError(
                    f"player {player.get('id')!r} plays for unknown team {team!r}"
                )
            if game not in games:
                raise SimulationError(f"player {player.get('id')!r} plays in unknown game {game!r}")
            if team_game[teams[team]] not in (-1, games[game]):
                raise SimulationError(f"team {team!r} plays in two games of one slate")
            team_game[teams[team]] = games[game]
            if not (player["stddev"] >= 0 and math.isfinite(player["stddev"])):
                raise SimulationError(f"player {player.get('id')!r} has an invalid stddev")
            if not math.isfinite(player["projection"]):
                raise SimulationError(f"player {player.get('id')!r} has an invalid projection")
        # Players are kept sorted by team, so a team is a contiguous column range of the
        # points matrix (no copy to correlate teammates); results go back in slate order.
        order = sorted(range(len(players)), key=lambda i: teams[players[i]["team_id"]])
        self.slate_order = np.argsort(order)  # slate index -> column
        ordered = [players[i] for i in order]
        self.ids = [player["id"] for player in players]
        self.team_ids = list(teams)
        self.projection = np.array([p["projection"] for p in ordered], dtype=np.float64)
        self.stddev = np.array([p["stddev"] for p in ordered], dtype=np.float64)
        self.target = np.array([p["salary"] / 1000 * VALUE_MULTIPLIER for p in ordered])
        self.player_team = np.array([teams[p["team_id"]] for p in ordered], dtype=np.intp)
        self.team_game = np.array([max(g, 0) for g in team_game], dtype=np.intp)
        self.game_count = len(games)
        bounds = np.searchsorted(self.player_team, np.arange(len(teams) + 1))
        self.team_columns = [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


class _Accumulator:
    """Per-player and per-team running totals, reduced block by block."""

    def __init__(self, arrays: _SlateArrays) -> None:
        count = len(arrays.ids)
        self.total = np.zeros(count)
        self.total_squares = np.zeros(count)
        self.maximum = np.zeros(count)
        self.hits = np.zeros(count, dtype=np.int64)
        self.zeros = np.zeros(count, dtype=np.int64)
        self.histogram = np.zeros(count * HISTOGRAM_BINS, dtype=np.int64)
        self.team_products = [
            np.zeros((c.stop - c.start, c.stop - c.start)) for c in arrays.team_columns
        ]
        self.top = arrays.projection.clip(0) + HISTOGRAM_SPAN * arrays.stddev + 1e-9
        self.bin_scale = HISTOGRAM_BINS / self.top
        self.offsets = np.arange(count, dtype=np.int64) * HISTOGRAM_BINS

    def add_block(self, points: np.ndarray, arrays: _SlateArrays) -> None:
        """Float reductions of one block: always the same shapes, so the same rounding."""
        self.total += points.sum(axis=0)
        self.total_squares += np.einsum("ij,ij->j", points, points)
        np.maximum(self.maximum, points.max(axis=0), out=self.maximum)
        self.hits += (points >= arrays.target).sum(axis=0)
        self.zeros += (points == 0.0).sum(axis=0)
        for products, columns in zip(self.team_products, arrays.team_columns, strict=True):
            team = points[:, columns]
            products += team.T @ team

    def add_histogram(self, points: np.ndarray, bins: np.ndarray) -> None:
        """Integer counts, exact whatever the chunking; ``bins`` is scratch space."""
        np.multiply(points, self.bin_scale, out=points)
        np.copyto(bins, points, casting="unsafe")
        np.minimum(bins, HISTOGRAM_BINS - 1, out=bins)
        bins += self.offsets
        self.histogram += np.bincount(bins.ravel(), minlength=self.histogram.size)


def _draw_into(
    points: np.ndarray,
    seed: int,
    first_block: int,
    sizes: list[int],
    arrays: _SlateArrays,
    game_weight: float,
    team_weight: float,
) -> None:
    """Fill ``points`` with the scenarios of consecutive blocks, one generator per block."""
    own_weight = math.sqrt(1.0 - game_weight - team_weight)
    row = 0
    for offset, size in enumerate(sizes):
        rng = np.random.default_rng([seed, first_block + offset])
        game = rng.standard_normal((size, max(arrays.game_count, 1)))
        team = rng.standard_normal((size, len(arrays.team_ids)))
        own = points[row : row + size]
        rng.standard_normal(out=own)
        shared = math.sqrt(team_weight) * team
        shared += math.sqrt(game_weight) * game[:, arrays.team_game]
        own *= own_weight
        own += shared[:, arrays.player_team]
        row += size
    points *= arrays.stddev
    points += arrays.projection
    np.maximum(points, 0.0, out=points)


def _percentiles(
    histogram: np.ndarray, zeros: int, top: float, maximum: float, n: int
) -> list[float]:
    """Percentiles from a histogram whose first bin also holds the exact zeros (the floor).

    Ranks inside the mass at 0 are exactly 0; elsewhere the value is interpolated linearly
    inside its bin, so the error is at most one bin width.
    """
    counts = histogram.copy()
    counts[0] -= zeros
    cumulative = zeros + np.cumsum(counts)
    width = top / HISTOGRAM_BINS
    values = []
    for q in PERCENTILES:
        rank = q / 100 * n
        if rank <= zeros:
            values.append(0.0)
            continue
        index = int(np.searchsorted(cumulative, rank, side="left"))
        before = cumulative[index - 1] if index else zeros
        inside = counts[index]
        fraction = (rank - before) / inside if inside else 0.0
        values.append(min(maximum, (index + fraction) * width))
    return values


def _summaries(acc: _Accumulator, arrays: _SlateArrays, n: int) -> dict[str, Any]:
    mean = acc.total / n
    variance = np.maximum(acc.total_squares / n - mean**2, 0.0)
    players = []
    for player_id, p in zip(arrays.ids, arrays.slate_order, strict=True):
        histogram = acc.histogram[p * HISTOGRAM_BINS : (p + 1) * HISTOGRAM_BINS]
        values = _percentiles(histogram, int(acc.zeros[p]), acc.top[p], acc.maximum[p], n)
        players.append(
            {
                "id": player_id,
                "mean": _round(mean[p]),
                "std": _round(math.sqrt(variance[p])),
                **{f"p{q}": _round(v) for q, v in zip(PERCENTILES, values, strict=True)},
                "max": _round(acc.maximum[p]),
                "value_target": _round(arrays.target[p]),
                "p_value_target": _round(acc.hits[p] / n),
            }
        )
    teams = []
    for team_id, members, products in zip(
        arrays.team_ids, arrays.team_columns, acc.team_products, strict=True
    ):
        teams.append(
            {
                "id": team_id,
                "mean_total": _round(mean[members].sum()),
                "mean_pairwise_correlation": _mean_correlation(products, mean[members], n),
            }
        )
    return {"players": players, "teams": teams}


def _mean_correlation(products: np.ndarray, mean: np.ndarray, n: int) -> float | None:
    size = len(mean)
    if size < 2:
        return None
    covariance = products / n - np.outer(mean, mean)
    scale = np.sqrt(np.clip(np.diag(covariance), 0, None))
    valid = np.outer(scale, scale)
    upper = np.triu_indices(size, k=1)
    pairs = valid[upper] > 0
    if not pairs.any():
        return None
    correlation = covariance[upper][pairs] / valid[upper][pairs]
    return _round(correlation.mean())


def _block_sizes(scenario_count: int) -> list[int]:
    return [
        min(BLOCK_SCENARIOS, scenario_count - start)
        for start in range(0, scenario_count, BLOCK_SCENARIOS)
    ]


def sample_points(
    slate: Mapping[str, Any],
    scenario_count: int,
    seed: int,
    *,
    game_weight: float = GAME_WEIGHT,
    team_weight: float = TEAM_WEIGHT,
) -> np.ndarray:
    """The raw scenario x player points that ``simulate`` summarises (same draws, same seed).

    Columns follow the slate's player order. For analysis and tests of the model on small
    counts: it holds every draw in memory.
    """
    _validate(slate, scenario_count, seed, game_weight, team_weight)
    arrays = _SlateArrays(slate)
    points = np.empty((scenario_count, len(arrays.ids)))
    _draw_into(points, seed, 0, _block_sizes(scenario_count), arrays, game_weight, team_weight)
    return points[:, arrays.slate_order]


def blocks_per_chunk(player_count: int, chunk_size: int | None) -> int:
    """Blocks drawn at once: one by default (cache-friendly), never over CHUNK_BYTES."""
    cap = max(1, CHUNK_BYTES // (8 * max(player_count, 1) * BLOCK_SCENARIOS))
    return max(1, min(cap, (chunk_size or BLOCK_SCENARIOS) // BLOCK_SCENARIOS))


def simulate(
    slate: Mapping[str, Any],
    scenario_count: int,
    seed: int,
    *,
    chunk_size: int | None = None,
    game_weight: float = GAME_WEIGHT,
    team_weight: float = TEAM_WEIGHT,
) -> dict[str, Any]:
    """Simulate ``scenario_count`` scenarios of ``slate``; return per-player/team summaries.

    ``chunk_size`` (scenarios drawn at once, whole blocks) changes memory and speed only.
    Everything but ``duration_ms`` is a pure function of (slate, scenario_count, seed, weights).
    """
    started = time.perf_counter()
    _validate(slate, scenario_count, seed, game_weight, team_weight)
    arrays = _SlateArrays(slate)
    acc = _Accumulator(arrays)
    sizes = _block_sizes(scenario_count)
    per_chunk = blocks_per_chunk(len(arrays.ids), chunk_size)
    rows = min(scenario_count, per_chunk * BLOCK_SCENARIOS)
    points_buffer = np.empty((rows, len(arrays.ids)))
    bins_buffer = np.empty((rows, len(arrays.ids)), dtype=np.int64)
    for first in range(0, len(sizes), per_chunk):
        chunk_sizes = sizes[first : first + per_chunk]
        used = sum(chunk_sizes)
        points = points_buffer[:used]
        _draw_into(points, seed, first, chunk_sizes, arrays, game_weight, team_weight)
        row = 0
        for size in chunk_sizes:
            acc.add_block(points[row : row + size], arrays)
            row += size
        acc.add_histogram(points, bins_buffer[:used])
    return {
        **_summaries(acc, arrays, scenario_count),
        "scenario_count": scenario_count,
        "seed": seed,
        "duration_ms": _round((time.perf_counter() - started) * 1000),
    }
