"""Monte Carlo simulation of a slate: correlated fantasy points for every player, summarised.

Pure: numpy and the standard library only, no I/O, so it is the easiest code to test. One
module for the model, its chunked pipeline and its summaries: they change together.

Model. A player's points in one scenario are
    max(0, projection + stddev * (sqrt(GAME_WEIGHT) g + sqrt(TEAM_WEIGHT) t + sqrt(rest) e))
where ``g`` ~ N(0, 1) is shared by every player of a game (both teams: pace, overtime),
``t`` ~ N(0, 1) by teammates (a good day for the offence), ``e`` is the player's own term and
rest = 1 - GAME_WEIGHT - TEAM_WEIGHT. Before the floor at 0, teammates are correlated by
GAME_WEIGHT + TEAM_WEIGHT, opponents by GAME_WEIGHT, players of different games not at all.
Both weights are keyword parameters of ``simulate``.

Precision and speed. Draws are float32 (DRAW_DTYPE) standard normals from numpy's SFC64
generator. numpy draws each block's game and team terms; the players' normals are drawn from
the same generator's state by the compiled pass (app/slates/kernel.py, C), which makes
exactly the values numpy's float32 ``standard_normal`` would and touches each one once, in a
register: shared term, scale, floor, the float64 sum, maximum, value-target count, histogram
slot and the centred copy for teammates' products, which BLAS takes. Teammates' products are
taken on draws centred on the first block's means, so variances and correlations keep their
digits; one scenario's standard deviation is exactly 0. Results for a seed are fixed within a
version; they differ from slatesim 0.1's (float64 PCG64 draws) and, in the last digits and by
at most a bin in the percentiles, from 0.2 to 0.5's (float32 sums or numpy passes; 0.6 sums
each block in float64 and places each value in its histogram bin exactly, on the same draws).

Determinism. Scenarios come in fixed blocks of BLOCK_SCENARIOS, block ``b`` drawn from its own
generator seeded with ``(seed, b)`` in a fixed order. A chunk (``chunk_size``, whole blocks) is
only how many blocks one team's pass handles at once: element-wise arithmetic does not depend
on it, every floating-point reduction is done per block in a fixed order (the kernel is built
without fast-math or FMA contraction) and the block totals are added in block order, and
histograms are integer counts. Teammate products go through BLAS,
whose result for one shape does not depend on its thread count. So the same slate,
``scenario_count``, ``seed`` and weights give a byte-identical result whatever the chunk size
and numpy's thread count, except ``duration_ms``: the run's wall time, the only field that
varies between runs. Compare results without it.

Memory. Draws are made and reduced team by team, a chunk at a time: by default a team's chunk
is at most TEAM_CHUNK_BYTES, and no chunk holds more than CHUNK_BYTES (one block at least).
The running totals are a few numbers and one histogram per player, so memory does not grow
with ``scenario_count`` (1,000,000 scenarios of a 500-player slate peak at about 20 MB), nor
does the result's size.

Percentiles (approximate, bounded). Each player has a histogram of HISTOGRAM_BINS equal bins
over (0, top], top = max(projection, 0) + HISTOGRAM_SPAN * stddev, plus a count of the
scenarios at exactly 0 (the floor); values above ``top`` (probability < 1e-15 per draw) count
in the last bin, and the maximum is tracked exactly. Percentile q is read at rank
q/100 * scenario_count: inside the mass at 0 it is exactly 0, otherwise it is interpolated
linearly inside the bin holding the order statistic of that rank, so it differs from numpy's
``percentile(method="inverted_cdf")`` by less than one bin width, top / HISTOGRAM_BINS: about
0.04 points for a 20-point projection with a 7-point stddev. (Numpy's
default, linear method may also differ by part of the gap between neighbouring order
statistics, which vanishes as the count grows.) Maxima and value-target rates are exact;
means, standard deviations and correlations are exact up to single-precision rounding of each
block's sums (about 1e-6 relative).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from app.slates import kernel

# Correlation of players of the same game (both teams) before the floor at 0.
GAME_WEIGHT = 0.10
# Extra correlation of teammates on top of the game's.
TEAM_WEIGHT = 0.25
# Draws are single precision: twice the values per cache line and half the memory traffic of
# float64; every sum over scenarios is accumulated in float64.
DRAW_DTYPE = kernel.DRAW_DTYPE
# Scenarios drawn from one generator: fixed, so results do not depend on chunking.
BLOCK_SCENARIOS = 4096
# Default draws of one team handled at once: small enough to stay in a core's L2 cache.
TEAM_CHUNK_BYTES = 1024 * 1024
# Upper bound of the draws held at once (a team's chunk plus the chunk's shared terms).
CHUNK_BYTES = 64 * 1024 * 1024
# Histogram resolution of each player's points; bounds the percentile error (see above).
HISTOGRAM_BINS = 2048
# The histogram covers projection + HISTOGRAM_SPAN standard deviations (P(beyond) < 1e-15).
HISTOGRAM_SPAN = 8.0
# Daily-fantasy "value": 5x means 5 points per 1,000 of salary, the usual bar for a good day.
VALUE_MULTIPLIER = 5.0
# The percentiles reported for every player.
PERCENTILES = (10, 25, 50, 75, 90, 99)
# Decimals kept in results, so serialisation is stable and compact.
DECIMALS = 4
# Histogram slots per player: the bins plus the count of scenarios at exactly 0.
_SLOTS = HISTOGRAM_BINS + 1
# The plan's per-player columns the kernel takes, in its order.
_KERNEL_CONSTANTS = ("own_scale", "floor", "threshold", "shift")


class SimulationError(ValueError):
    """The slate or the parameters cannot be simulated; the message says why."""


def _round(value: float) -> float:
    """Fixed decimals for stable JSON; ``+ 0.0`` turns a rounded -0.0 into 0.0."""
    return round(float(value), DECIMALS) + 0.0


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_parameters(
    scenario_count: int,
    seed: int,
    chunk_size: int | None,
    game_weight: float,
    team_weight: float,
) -> None:
    """Reject parameters the engine cannot honour, saying which and why."""
    if not _is_integer(scenario_count) or scenario_count < 1:
        raise SimulationError(f"scenario_count must be a positive integer, not {scenario_count!r}")
    if not _is_integer(seed) or seed < 0:
        raise SimulationError(f"seed must be a non-negative integer, not {seed!r}")
    if chunk_size is not None and (not _is_integer(chunk_size) or chunk_size < 1):
        raise SimulationError(f"chunk_size must be a positive integer, not {chunk_size!r}")
    if not (game_weight >= 0 and team_weight >= 0 and game_weight + team_weight < 1):
        raise SimulationError("game_weight and team_weight must be >= 0 with a sum below 1")


def _number(player: Mapping[str, Any], field: str, minimum: float = -math.inf) -> float:
    """A finite numeric field of a player, or a SimulationError naming player and field."""
    value = player.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SimulationError(f"player {player.get('id')!r} has an invalid {field}: {value!r}")
    if value < minimum:
        raise SimulationError(f"player {player.get('id')!r} has a negative {field}: {value!r}")
    return float(value)


def _positions(items: Iterable[Mapping[str, Any]], kind: str) -> dict[str, int]:
    """Id -> position; a missing or repeated id would make results ambiguous, so it is refused."""
    positions: dict[str, int] = {}
    for item in items:
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise SimulationError(f"a {kind} of the slate has no id: {item!r}")
        if item_id in positions:
            raise SimulationError(f"{kind} id {item_id!r} appears twice in the slate")
        positions[item_id] = len(positions)
    return positions


def _team_games(
    players: Sequence[Mapping[str, Any]],
    teams: Mapping[str, int],
    games: Sequence[Mapping[str, Any]],
) -> np.ndarray:
    """Each team's game index; checks every player's team and game exist and belong together."""
    game_positions = _positions(games, "game")
    team_game = np.zeros(len(teams), dtype=np.intp)
    seen: dict[str, str] = {}  # team -> its game
    for player in players:
        name, team, game = player.get("id"), str(player.get("team_id")), str(player.get("game_id"))
        if team not in teams:
            raise SimulationError(f"player {name!r} plays for unknown team {team!r}")
        if game not in game_positions:
            raise SimulationError(f"player {name!r} plays in unknown game {game!r}")
        sides = (games[game_positions[game]].get("home"), games[game_positions[game]].get("away"))
        if team not in sides or seen.setdefault(team, game) != game:
            raise SimulationError(f"player {name!r}: team {team!r} does not play in game {game!r}")
        team_game[teams[team]] = game_positions[game]
    return team_game


class _Plan:
    """The slate as arrays, players sorted by team so a team is a contiguous row range.

    Draws are held as ``d = scale * (points - projection)``: centred, which keeps sums of
    squares well conditioned, and in histogram-bin units, which saves a pass per histogram.
    Per-player constants are columns (players x 1) that broadcast over scenarios.
    """

    def __init__(self, slate: Mapping[str, Any], game_weight: float, team_weight: float) -> None:
        players: Sequence[Mapping[str, Any]] = slate.get("players") or []
        if not players:
            raise SimulationError(f"slate {slate.get('id')!r} has no players to simulate")
        self.ids = list(_positions(players, "player"))
        games = slate.get("games") or []
        teams = _positions(slate.get("teams") or [], "team")
        self.team_ids = list(teams)
        self.team_game = _team_games(players, teams, games)
        self.game_count = len(games)
        order = sorted(range(len(players)), key=lambda i: teams[players[i]["team_id"]])
        ordered = [players[i] for i in order]
        self.slate_order = np.argsort(order)  # slate position -> row
        self._lay_out_teams([teams[p["team_id"]] for p in ordered])
        self.projection = np.array([_number(p, "projection") for p in ordered])
        salary = np.array([_number(p, "salary", minimum=0.0) for p in ordered])
        self.target = salary / 1000 * VALUE_MULTIPLIER
        self.weights = (math.sqrt(game_weight), math.sqrt(team_weight))
        self.own_weight = math.sqrt(1.0 - game_weight - team_weight)
        self._set_units(np.array([_number(p, "stddev", minimum=0.0) for p in ordered]))

    def _lay_out_teams(self, team_of_row: list[int]) -> None:
        """Row range of each team."""
        sizes = np.bincount(team_of_row, minlength=len(self.team_ids))
        starts = np.concatenate(([0], np.cumsum(sizes)))
        self.team_rows = [slice(int(a), int(b)) for a, b in itertools.pairwise(starts)]
        self.largest_team = int(sizes.max())

    def _set_units(self, stddev: np.ndarray) -> None:
        """Per-player constants of ``d``, the centred bin-unit points (see the class doc)."""
        top = np.maximum(self.projection, 0.0) + HISTOGRAM_SPAN * stddev
        self.scale = HISTOGRAM_BINS / np.where(top > 0, top, 1.0)  # always-0 players: any scale
        # Columns that meet the draws, in the draws' precision (no upcast temporaries).
        self.own_scale = (self.scale * stddev * self.own_weight)[:, None].astype(DRAW_DTYPE)
        # d + shift: points in bin units
        self.shift = (self.scale * self.projection)[:, None].astype(DRAW_DTYPE)
        self.floor = -self.shift  # points >= 0
        self.threshold = (self.scale * (self.target - self.projection))[:, None].astype(DRAW_DTYPE)

    def shared(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Teams x scenarios common term of one block, in units of the own term's weight."""
        game = rng.standard_normal((self.game_count, size), dtype=DRAW_DTYPE)
        team = rng.standard_normal((len(self.team_ids), size), dtype=DRAW_DTYPE)
        team *= DRAW_DTYPE(self.weights[1])
        team += DRAW_DTYPE(self.weights[0]) * game[self.team_game]
        team /= DRAW_DTYPE(self.own_weight)
        return team


def _block_generator(seed: int, block: int) -> np.random.Generator:
    """Block ``block``'s own generator: SFC64, numpy's fastest bit generator (about 1.2x
    PCG64's normals here), seeded with ``(seed, block)`` through a SeedSequence."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence([seed, block])))


def _chunk_generators(
    plan: _Plan, seed: int, first_block: int, count: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The shared terms of ``count`` blocks (teams x blocks x scenarios) and the blocks'
    generator states (kernel.generator_states), ready for the players' draws.

    Each block's generator is drawn in a fixed order (games, teams, then players team by
    team), so a block's numbers do not depend on the blocks drawn with it. numpy draws the
    shared terms; the kernel goes on from the states for the players, team after team.
    """
    generators = [_block_generator(seed, first_block + i) for i in range(count)]
    shared = np.stack([plan.shared(generator, size) for generator in generators], axis=1)
    return shared, kernel.generator_states(generators)


def _floored(plan: _Plan, rows: slice, draws: np.ndarray, shared: np.ndarray) -> np.ndarray:
    """The floored ``d`` of one block's raw draws (rows x scenarios), in numpy: what the
    kernel computes, for sample_points."""
    floored: np.ndarray = np.maximum((draws + shared) * plan.own_scale[rows], plan.floor[rows])
    return floored


class _Scratch:
    """The centred draws of a chunk, carved from a buffer sized once per simulation."""

    def __init__(self, capacity: int) -> None:
        self._centred = np.empty(capacity, dtype=DRAW_DTYPE)

    def centred(self, shape: tuple[int, ...]) -> np.ndarray:
        """A view of ``shape`` for the centred draws."""
        return self._centred[: math.prod(shape)].reshape(shape)


def _add_in_order(total: np.ndarray, partials: np.ndarray) -> None:
    """Add per-block partials one after another: the rounding never depends on chunking."""
    for partial in partials:
        total += partial


class _Totals:
    """Per-player and per-team running totals; float ones are reduced block by block."""

    def __init__(self, plan: _Plan) -> None:
        count = len(plan.ids)
        self.plan = plan
        self.total = np.zeros(count)
        self.maximum = np.full(count, -np.inf, dtype=DRAW_DTYPE)
        self.hits = np.zeros(count, dtype=np.int64)
        # Slot 0: scenarios at exactly 0 points; slot k: points in (k - 1, k] bin units.
        self.histogram = np.zeros((count, _SLOTS), dtype=np.int64)
        # Products of teammates' draws, centred on ``center`` (the first block's means): the
        # single-precision products then carry the spread, not the mean's square, so
        # variances and covariances keep their digits (one scenario's variance is exactly 0).
        self.products = [np.zeros((r.stop - r.start,) * 2) for r in plan.team_rows]
        self.center = np.zeros(count, dtype=DRAW_DTYPE)
        self._centred: set[int] = set()
        self._columns = {
            name: np.ascontiguousarray(getattr(plan, name)[:, 0]) for name in _KERNEL_CONSTANTS
        }

    def add(self, team: int, generators: np.ndarray, shared: np.ndarray, scratch: _Scratch) -> None:
        """Draw and reduce one team's chunk in one compiled pass, then the products.

        ``generators`` holds the chunk's block states (advanced past the team's draws),
        ``shared`` the team's common term (blocks x scenarios). The products are centred on
        block 0's means: the chunk that holds it is reduced uncentred, then centred once its
        sums are known (the same float32 subtraction the kernel does).
        """
        rows = self.plan.team_rows[team]
        count, size = shared.shape
        shape = (count, rows.stop - rows.start, size)
        sums, centred = np.empty(shape[:2]), scratch.centred(shape)
        first_chunk = team not in self._centred
        own_scale, floor, threshold, shift = (
            self._columns[name][rows] for name in _KERNEL_CONSTANTS
        )
        kernel.reduce_team_chunk(
            generators,
            shared,
            own_scale,
            floor,
            threshold,
            shift,
            self.center[rows],  # zeros until block 0 is reduced
            sums,
            self.maximum[rows],
            self.hits[rows],
            self.histogram[rows],
            centred,
        )
        if first_chunk:
            self.center[rows] = sums[0] / size
            centred -= self.center[rows][:, None]
            self._centred.add(team)
        _add_in_order(self.total[rows], sums)
        _add_in_order(self.products[team], centred @ centred.transpose(0, 2, 1))


def _percentiles(totals: _Totals, maximum: np.ndarray, n: int) -> np.ndarray:
    """Players x PERCENTILES read from the histograms (method in the module docstring)."""
    counts = totals.histogram  # slot 0: exactly 0 points, slot k: bin k
    cumulative = np.cumsum(counts, axis=1)
    rows = np.arange(len(counts))
    columns = []
    for q in PERCENTILES:
        rank = q * n / 100  # exact when q * n is a multiple of 100
        k = np.count_nonzero(cumulative < rank, axis=1)  # first slot reaching the rank
        before = cumulative[rows, np.maximum(k - 1, 0)]
        fraction = (rank - before) / np.maximum(counts[rows, k], 1)
        columns.append(np.where(k == 0, 0.0, (k - 1 + fraction) / totals.plan.scale))
    clipped: np.ndarray = np.minimum(np.stack(columns, axis=1), maximum[:, None])
    return clipped


def _mean_correlation(products: np.ndarray, mean: np.ndarray, n: int) -> float | None:
    """Mean Pearson correlation over teammate pairs; None without a pair that both vary."""
    covariance = products / n - np.outer(mean, mean)
    spread = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    upper = np.triu_indices(len(mean), k=1)
    scales = np.outer(spread, spread)[upper]
    valid = scales > 0
    if not valid.any():
        return None
    return _round(np.mean(covariance[upper][valid] / scales[valid]))


def _player_summaries(totals: _Totals, n: int) -> list[dict[str, Any]]:
    """Per-player statistics in slate order, back in points."""
    plan = totals.plan
    mean_d = totals.total / n
    squares = np.concatenate([np.diag(products) for products in totals.products])
    mean = plan.projection + mean_d / plan.scale
    offset = mean_d - totals.center  # the mean of the centred draws
    std = np.sqrt(np.maximum(squares / n - offset**2, 0.0)) / plan.scale
    maximum = plan.projection + totals.maximum.astype(float) / plan.scale
    percentiles = _percentiles(totals, maximum, n)
    return [
        {
            "id": player_id,
            "mean": _round(mean[row]),
            "std": _round(std[row]),
            **{f"p{q}": _round(v) for q, v in zip(PERCENTILES, percentiles[row], strict=True)},
            "max": _round(maximum[row]),
            "value_target": _round(plan.target[row]),
            "p_value_target": _round(totals.hits[row] / n),
        }
        for player_id, row in zip(plan.ids, plan.slate_order, strict=True)
    ]


def _team_summaries(totals: _Totals, n: int) -> list[dict[str, Any]]:
    """Per-team expected total and mean teammate correlation (None below two players)."""
    plan = totals.plan
    mean_d = totals.total / n
    mean = plan.projection + mean_d / plan.scale
    return [
        {
            "id": team_id,
            "mean_total": _round(mean[rows].sum()),
            "mean_pairwise_correlation": (
                _mean_correlation(products, (mean_d - totals.center)[rows], n)
                if len(products) >= 2
                else None
            ),
        }
        for team_id, rows, products in zip(
            plan.team_ids, plan.team_rows, totals.products, strict=True
        )
    ]


def _groups(scenario_count: int, blocks_per_chunk: int) -> Iterator[tuple[int, int, int]]:
    """(first block, blocks, scenarios per block): full blocks chunk by chunk, then the rest."""
    full, rest = divmod(scenario_count, BLOCK_SCENARIOS)
    for first in range(0, full, blocks_per_chunk):
        yield first, min(blocks_per_chunk, full - first), BLOCK_SCENARIOS
    if rest:
        yield full, 1, rest


def _blocks_per_chunk(plan: _Plan, chunk_size: int | None) -> int:
    """Whole blocks per chunk: ``chunk_size`` rounded down, or TEAM_CHUNK_BYTES' worth.

    At least one, and never so many that a chunk's draws pass CHUNK_BYTES.
    """
    block_bytes = np.dtype(DRAW_DTYPE).itemsize * BLOCK_SCENARIOS
    cap = CHUNK_BYTES // (block_bytes * (plan.largest_team + len(plan.team_ids)))
    if chunk_size is None:
        wanted = TEAM_CHUNK_BYTES // (block_bytes * plan.largest_team)
    else:
        wanted = chunk_size // BLOCK_SCENARIOS
    return max(1, min(cap, wanted))


def sample_points(
    slate: Mapping[str, Any],
    scenario_count: int,
    seed: int,
    *,
    game_weight: float = GAME_WEIGHT,
    team_weight: float = TEAM_WEIGHT,
) -> np.ndarray:
    """Every scenario x player point that ``simulate`` summarises, for tests and analysis.

    Same seed, same draws; columns in the slate's player order. It holds every draw in
    memory, so it is for small counts.
    """
    _check_parameters(scenario_count, seed, None, game_weight, team_weight)
    plan = _Plan(slate, game_weight, team_weight)
    d = np.empty((len(plan.ids), scenario_count))
    for first, _, size in _groups(scenario_count, 1):
        columns = slice(first * BLOCK_SCENARIOS, first * BLOCK_SCENARIOS + size)
        shared, generators = _chunk_generators(plan, seed, first, 1, size)
        for team, rows in enumerate(plan.team_rows):
            draws = np.empty((rows.stop - rows.start, size), dtype=DRAW_DTYPE)
            kernel.standard_normals(generators[0], draws)
            d[rows, columns] = _floored(plan, rows, draws, shared[team, 0])
    points = (d + plan.shift) / plan.scale[:, None]
    by_player: np.ndarray = points.T[:, plan.slate_order]
    return by_player


def simulate(
    slate: Mapping[str, Any],
    scenario_count: int,
    seed: int,
    *,
    chunk_size: int | None = None,
    game_weight: float = GAME_WEIGHT,
    team_weight: float = TEAM_WEIGHT,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Simulate ``scenario_count`` scenarios of ``slate`` into per-player and team summaries.

    ``chunk_size`` (scenarios handled at once, rounded down to whole blocks; sized from the
    teams when None) changes memory and speed only. Everything but ``duration_ms`` is a pure
    function of slate, count, seed and weights. ``progress`` is called with the scenarios done
    after each chunk; an exception it raises (a cancelled job) stops the simulation there.
    """
    started = time.perf_counter()
    _check_parameters(scenario_count, seed, chunk_size, game_weight, team_weight)
    plan = _Plan(slate, game_weight, team_weight)
    totals = _Totals(plan)
    groups = list(_groups(scenario_count, _blocks_per_chunk(plan, chunk_size)))
    scratch = _Scratch(plan.largest_team * max(count * size for _, count, size in groups))
    done = 0
    for first, count, size in groups:
        shared, generators = _chunk_generators(plan, seed, first, count, size)
        for team in range(len(plan.team_rows)):
            totals.add(team, generators, shared[team], scratch)
        done = min(done + count * size, scenario_count)
        if progress is not None:
            progress(done)
    return {
        "players": _player_summaries(totals, scenario_count),
        "teams": _team_summaries(totals, scenario_count),
        "scenario_count": scenario_count,
        "seed": seed,
        "duration_ms": _round((time.perf_counter() - started) * 1000),
    }
