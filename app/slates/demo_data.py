"""Demo slates: a basketball main slate, a football main slate and a basketball showdown.

Pure and deterministic: fixed tables plus one seeded ``random.Random``, no I/O, so every call
returns the same slates and a seeded database always holds the same numbers. Each slate has the
shape ``SlateRepository.load_slate`` returns (docs/data-model.md): games and teams ordered by id,
players ordered by id.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

# Fixed seed: the demo data must be identical on every machine and every run.
DEMO_SEED = 20261128
# Where the demo slates claim to come from; not a real contest site.
DEMO_SITE = "demo"
# Random spread around a roster spot's depth, so teams differ without reordering stars.
SKILL_JITTER = 0.15
# Projection noise around salary times points per thousand: salary predicts, not dictates.
PROJECTION_NOISE = (0.85, 1.15)
# Players per team on a showdown slate: the best paid, as a single-game contest offers.
SHOWDOWN_PLAYERS_PER_TEAM = 10
# Showdown salaries spread wider than main-slate ones: main 3000..11000 maps to 1000..12000.
SHOWDOWN_SALARIES = (1000, 12000)

FIRST_NAMES = """
    Aaron Adrian Alec Andre Austin Bennett Blake Brandon Caleb Cameron Carter Chris Cole Connor
    Damon Darius Derek Devin Dominic Drew Elijah Eric Evan Felix Gavin Grant Hayden Isaiah Jalen
    Jamal Jared Jaylen Jordan Julian Justin Kendall Kevin Kyle Lamar Landon Logan Lucas Malik
    Marcus Mason Miles Nathan Nico Omar Owen Parker Quentin Reggie Ryan Shane Terrell Trevor Tyler
    Victor Xavier
"""
LAST_NAMES = """
    Adams Alvarez Bailey Barnes Bell Brooks Bryant Carter Coleman Collins Cooper Crawford Daniels
    Dawson Dixon Ellis Ferguson Fleming Foster Freeman Gibson Graham Grant Greene Griffin Hale
    Harper Hayes Henderson Holmes Howard Hudson Irving Jenkins Jordan Keller Kennedy Lawson Lewis
    Marshall Mason McCoy Mitchell Morgan Murray Nelson Owens Palmer Patterson Porter Powell Reed
    Reynolds Robinson Russell Sanders Shaw Simmons Spencer Stewart Sullivan Thompson Tucker Turner
    Vaughn Wallace Warren Watson Wells West Wheeler Whitfield Willis Wright Young
"""


@dataclass(frozen=True)
class _Sport:
    """How one sport's teams, rosters, salaries, projections and betting lines look."""

    prefix: str
    sport: str
    # "abbreviation: City Nickname" entries in schedule order: the 1st visits the 2nd, and so on.
    teams: str
    # One roster spot per word, "POSITIONS:depth"; depth 1 is a star, 0 a deep reserve.
    roster: str
    # Salary range per primary position, in dollars.
    salaries: dict[str, tuple[int, int]]
    # Fantasy points per $1000 of salary: how projections follow salaries.
    points_per_thousand: float
    # Standard deviation as a share of the projection.
    stddev_share: tuple[float, float]
    total_range: tuple[float, float]
    # Spread points per unit of strength difference (strengths are -1..1).
    spread_per_strength: float
    home_edge: float
    has_defense: bool


BASKETBALL = _Sport(
    prefix="nba",
    sport="basketball",
    teams="""
        bos: Boston Tides | nyk: New York Knights | phi: Philadelphia Founders | tor: Toronto Lynx
        chi: Chicago Blaze | cle: Cleveland Forge | det: Detroit Motors | ind: Indianapolis Racers
        mil: Milwaukee Stags | atl: Atlanta Flight | mia: Miami Surge | orl: Orlando Comets
        was: Washington Senators | cha: Charlotte Monarchs | den: Denver Peaks
        min: Minneapolis Wolves | okc: Oklahoma City Storm | por: Portland Pioneers
        slc: Salt Lake City Summit | dal: Dallas Mustangs
    """,
    roster="""
        PG:0.95 SG:0.8 SF:0.75 PF:0.7 C:0.65 PG/SG:0.45 SF/PF:0.4 C:0.35 SG/SF:0.25 PF/C:0.2
        PG:0.1 SF:0.05 C:0
    """,
    salaries={position: (3000, 11000) for position in ("PG", "SG", "SF", "PF", "C")},
    points_per_thousand=4.7,
    stddev_share=(0.25, 0.35),
    total_range=(212.0, 238.0),
    spread_per_strength=6.0,
    home_edge=2.0,
    has_defense=False,
)
FOOTBALL = _Sport(
    prefix="nfl",
    sport="football",
    teams="""
        buf: Buffalo Bison | mia: Miami Sharks | bos: Boston Minutemen | nyc: New York Guardians
        bal: Baltimore Mariners | cin: Cincinnati Rivermen | cle: Cleveland Hounds
        pit: Pittsburgh Ironmen | hou: Houston Wildcatters | ind: Indianapolis Stallions
        jax: Jacksonville Gators | nas: Nashville Sound | den: Denver Thunderbirds
        kc: Kansas City Scouts | lv: Las Vegas Jackpots | sd: San Diego Admirals
        dal: Dallas Wranglers | phi: Philadelphia Liberty | was: Washington Generals
        chi: Chicago Grizzlies | det: Detroit Ironclads | gb: Green Bay Lumberjacks
        min: Minneapolis Norsemen | atl: Atlanta Firebirds | sea: Seattle Orcas
        sf: San Francisco Gold
    """,
    roster="""
        QB:0.9 QB:0 RB:0.85 RB:0.45 RB:0.2 RB:0.05 WR:0.9 WR:0.7 WR:0.5 WR:0.35 WR:0.2 WR:0.1
        WR:0.05 WR:0 TE:0.7 TE:0.3 TE:0.1 TE:0
    """,
    salaries={
        "QB": (4800, 8400),
        "RB": (4000, 9500),
        "WR": (3000, 9500),
        "TE": (2500, 7500),
        "DST": (2000, 4500),
    },
    points_per_thousand=2.6,
    stddev_share=(0.35, 0.5),
    total_range=(37.0, 54.0),
    spread_per_strength=5.0,
    home_edge=1.5,
    has_defense=True,
)


def demo_slates() -> list[dict[str, Any]]:
    """The demo slates the seeder loads, identical on every call."""
    rng = random.Random(DEMO_SEED)
    basketball = _main_slate(rng, BASKETBALL, "2026-11-28", starts_at="2026-11-28T23:00:00Z")
    football = _main_slate(rng, FOOTBALL, "2026-11-29", starts_at="2026-11-29T18:00:00Z")
    showdown = _showdown_slate(
        basketball, BASKETBALL, "nba-2026-11-28-bos-nyk", starts_at="2026-11-28T23:30:00Z"
    )
    return [basketball, showdown, football]


def _main_slate(rng: random.Random, sport: _Sport, date: str, *, starts_at: str) -> dict[str, Any]:
    teams = _teams(sport)
    strength = {team["id"]: rng.uniform(-1.0, 1.0) for team in teams}
    games = []
    for away, home in zip(teams[0::2], teams[1::2], strict=True):
        matchup = f"{_abbreviation(away['id'])}-{_abbreviation(home['id'])}"
        spread = (strength[away["id"]] - strength[home["id"]]) * sport.spread_per_strength
        games.append(
            {
                "id": f"{sport.prefix}-{date}-{matchup}",
                "home": home["id"],
                "away": away["id"],
                "total": _half_point(rng.uniform(*sport.total_range)),
                "spread": _half_point(spread - sport.home_edge),
            }
        )
    game_of_team = {team: game["id"] for game in games for team in (game["home"], game["away"])}
    used_names: set[str] = set()
    players = []
    for team in teams:
        facts = {"team_id": team["id"], "game_id": game_of_team[team["id"]]}
        for number, spot in enumerate(sport.roster.split(), start=1):
            positions, depth = spot.split(":")
            skill = min(1.0, max(0.0, float(depth) + rng.uniform(-SKILL_JITTER, SKILL_JITTER)))
            name = _unique_name(rng, used_names)
            priced = _priced(rng, sport, positions.split("/"), skill)
            players.append({"id": f"{team['id']}-{number:02d}", "name": name, **facts, **priced})
        if sport.has_defense:
            priced = _priced(rng, sport, ["DST"], rng.random())
            players.append({"id": f"{team['id']}-dst", "name": team["name"], **facts, **priced})
    return {
        "id": f"{sport.prefix}-{date}-main",
        "sport": sport.sport,
        "site": DEMO_SITE,
        "name": f"{sport.sport.capitalize()} main slate, {len(games)} games",
        "starts_at": starts_at,
        "games": sorted(games, key=lambda game: game["id"]),
        "teams": sorted(teams, key=lambda team: team["id"]),
        "players": sorted(players, key=lambda player: player["id"]),
    }


def _showdown_slate(
    main: dict[str, Any], sport: _Sport, game_id: str, *, starts_at: str
) -> dict[str, Any]:
    """One game of ``main`` on its own: its best-paid players, same projections, new prices."""
    game = next(game for game in main["games"] if game["id"] == game_id)
    teams = [team for team in main["teams"] if team["id"] in (game["away"], game["home"])]
    chosen = []
    for team in teams:
        roster = [player for player in main["players"] if player["team_id"] == team["id"]]
        roster.sort(key=lambda player: (-player["salary"], player["id"]))
        chosen.extend(roster[:SHOWDOWN_PLAYERS_PER_TEAM])
    away, home = _abbreviation(game["away"]), _abbreviation(game["home"])
    players = [{**player, "salary": _showdown_salary(sport, player)} for player in chosen]
    return {
        "id": f"{main['id'].removesuffix('-main')}-showdown-{away}-{home}",
        "sport": sport.sport,
        "site": DEMO_SITE,
        "name": f"{sport.sport.capitalize()} showdown, {away.upper()} at {home.upper()}",
        "starts_at": starts_at,
        "games": [game],
        "teams": teams,
        "players": sorted(players, key=lambda player: player["id"]),
    }


def _teams(sport: _Sport) -> list[dict[str, str]]:
    """The sport's teams in schedule order, ids unique per sport (``nba-bos``)."""
    return [
        {"id": f"{sport.prefix}-{abbreviation}", "name": name.strip()}
        for abbreviation, name in re.findall(r"(\w+): ([^|\n]+)", sport.teams)
    ]


def _abbreviation(team_id: str) -> str:
    return team_id.split("-", 1)[1]


def _priced(
    rng: random.Random, sport: _Sport, positions: list[str], skill: float
) -> dict[str, Any]:
    """Salary from skill, projection from salary (with noise), stddev from projection."""
    low, high = sport.salaries[positions[0]]
    salary = _round_to(low + skill * (high - low), 100)
    value = sport.points_per_thousand * rng.uniform(*PROJECTION_NOISE)
    projection = round(salary / 1000 * value, 1)
    return {
        "salary": salary,
        "positions": positions,
        "projection": projection,
        "stddev": round(projection * rng.uniform(*sport.stddev_share), 2),
    }


def _showdown_salary(sport: _Sport, player: dict[str, Any]) -> int:
    """The main-slate salary mapped linearly onto the showdown salary range."""
    low, high = sport.salaries[player["positions"][0]]
    share = (player["salary"] - low) / (high - low)
    return _round_to(
        SHOWDOWN_SALARIES[0] + share * (SHOWDOWN_SALARIES[1] - SHOWDOWN_SALARIES[0]), 100
    )


def _unique_name(rng: random.Random, used: set[str]) -> str:
    first_names, last_names = FIRST_NAMES.split(), LAST_NAMES.split()
    while True:
        name = f"{rng.choice(first_names)} {rng.choice(last_names)}"
        if name not in used:
            used.add(name)
            return name


def _half_point(value: float) -> float:
    return round(value * 2) / 2 + 0.0  # adding 0.0 turns -0.0 into 0.0


def _round_to(value: float, step: int) -> int:
    return round(value / step) * step
