"""The slate store: every Cypher query of the service, and the only code that talks to Neo4j.

About 400 lines on purpose: the one owner of Cypher keeps every query and the deadline around
it together.

Queries are module constants; every input reaches them as a query parameter, never as text.
Reads are auto-commit READ queries (the driver does not retry them) bounded on the client side:
each runs in a thread of its own and its caller waits at most DEPENDENCY_TIMEOUT_SECONDS; past
that the call's connection is killed, which ends its read (the driver's own query timeout is
the server's, and a server that says nothing would hold the socket forever). Reads of requests
and jobs also go through the Neo4j bulkhead and breaker (``app/resilience.py``). When Neo4j
cannot answer, methods raise :class:`SlateStoreUnavailableError` with a message that names the
failure and holds no address, URI or credential; a full bulkhead or an open breaker raises
``DependencyUnavailableError`` at once. The graph model is described in docs/data-model.md.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from neo4j import (
    READ_ACCESS,
    Driver,
    GraphDatabase,
    ManagedTransaction,
    Query,
    RoutingControl,
    Session,
    unit_of_work,
)
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConnectionPoolError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from app.config import Settings
from app.resilience import DeadlineExceededError, Dependency, call_with_deadline

logger = logging.getLogger(__name__)

# The connections a worker's driver may hold: request threads, job threads and probes share them.
NEO4J_MAX_POOL_SIZE = 10


def create_neo4j_driver(settings: Settings) -> Driver:
    """A Neo4j driver with a bounded pool; connecting and acquiring are bounded by the timeout."""
    timeout = settings.dependency_timeout_seconds
    return GraphDatabase.driver(
        settings.neo4j_uri,
        auth=(settings.neo4j_user, settings.neo4j_password),
        max_connection_pool_size=NEO4J_MAX_POOL_SIZE,
        connection_timeout=timeout,
        connection_acquisition_timeout=timeout,
        max_transaction_retry_time=timeout,
    )


T = TypeVar("T")

# Seeding and schema changes write a few thousand entities; allowed longer than one request.
SEED_TIMEOUT_SECONDS = 60.0

CONSTRAINTS = (
    "CREATE CONSTRAINT slate_id IF NOT EXISTS FOR (slate:Slate) REQUIRE slate.id IS UNIQUE",
    "CREATE CONSTRAINT game_id IF NOT EXISTS FOR (game:Game) REQUIRE game.id IS UNIQUE",
    "CREATE CONSTRAINT team_id IF NOT EXISTS FOR (team:Team) REQUIRE team.id IS UNIQUE",
    "CREATE CONSTRAINT player_id IF NOT EXISTS FOR (player:Player) REQUIRE player.id IS UNIQUE",
)

LIST_SLATES = """
MATCH (slate:Slate)
RETURN slate.id AS id, slate.sport AS sport, slate.site AS site, slate.name AS name,
       slate.starts_at AS starts_at,
       COUNT { (:Game)-[:IN_SLATE]->(slate) } AS game_count,
       COUNT { (:Player)-[:ON_SLATE]->(slate) } AS player_count
ORDER BY starts_at, id
"""

LOAD_SLATE = """
MATCH (slate:Slate {id: $slate_id})
RETURN slate {.id, .sport, .site, .name, .starts_at} AS slate,
  COLLECT {
    MATCH (home:Team)-[:PLAYS_IN {side: 'home'}]->(game:Game)-[:IN_SLATE]->(slate),
          (away:Team)-[:PLAYS_IN {side: 'away'}]->(game)
    RETURN game {.id, home: home.id, away: away.id, .total, .spread} ORDER BY game.id
  } AS games,
  COLLECT {
    MATCH (team:Team)-[:PLAYS_IN]->(:Game)-[:IN_SLATE]->(slate)
    RETURN team {.id, .name} ORDER BY team.id
  } AS teams,
  COLLECT {
    MATCH (player:Player)-[entry:ON_SLATE]->(slate),
          (player)-[:PLAYS_FOR]->(team:Team)-[:PLAYS_IN]->(game:Game)-[:IN_SLATE]->(slate)
    RETURN player {.id, .name, team_id: team.id, game_id: game.id, salary: entry.salary,
                   positions: entry.positions, projection: entry.projection,
                   stddev: entry.stddev}
    ORDER BY player.id
  } AS players
"""

IS_EMPTY = "RETURN NOT EXISTS { MATCH (:Slate) } AS empty"

SERVER_INFO = """
CALL dbms.components() YIELD versions, edition
RETURN versions[0] AS version, edition
LIMIT 1
"""

SEED_SLATES = """
UNWIND $rows AS row
MERGE (slate:Slate {id: row.id})
SET slate.sport = row.sport, slate.site = row.site, slate.name = row.name,
    slate.starts_at = datetime(row.starts_at)
"""
SEED_TEAMS = """
UNWIND $rows AS row
MERGE (team:Team {id: row.id})
SET team.name = row.name
"""
SEED_GAMES = """
UNWIND $rows AS row
MATCH (home:Team {id: row.home}), (away:Team {id: row.away})
MERGE (game:Game {id: row.id})
SET game.total = row.total, game.spread = row.spread
MERGE (home)-[home_side:PLAYS_IN]->(game)
SET home_side.side = 'home'
MERGE (away)-[away_side:PLAYS_IN]->(game)
SET away_side.side = 'away'
"""
SEED_SLATE_GAMES = """
UNWIND $rows AS row
MATCH (game:Game {id: row.game_id}), (slate:Slate {id: row.slate_id})
MERGE (game)-[:IN_SLATE]->(slate)
"""
SEED_PLAYERS = """
UNWIND $rows AS row
MATCH (team:Team {id: row.team_id})
MERGE (player:Player {id: row.id})
SET player.name = row.name
MERGE (player)-[:PLAYS_FOR]->(team)
"""
SEED_ENTRIES = """
UNWIND $rows AS row
MATCH (player:Player {id: row.player_id}), (slate:Slate {id: row.slate_id})
MERGE (player)-[entry:ON_SLATE]->(slate)
SET entry.salary = row.salary, entry.positions = row.positions,
    entry.projection = row.projection, entry.stddev = row.stddev
"""
# Statement and row set of each seeding step, in dependency order: nodes before their edges.
SEED_STEPS = (
    (SEED_SLATES, "slates"),
    (SEED_TEAMS, "teams"),
    (SEED_GAMES, "games"),
    (SEED_SLATE_GAMES, "slate_games"),
    (SEED_PLAYERS, "players"),
    (SEED_ENTRIES, "entries"),
)

SLATE_FIELDS = ("id", "sport", "site", "name", "starts_at")
GAME_FIELDS = ("id", "home", "away", "total", "spread")
TEAM_FIELDS = ("id", "name")
ENTRY_FIELDS = ("salary", "positions", "projection", "stddev")
PLAYER_FIELDS = ("id", "name", "team_id", "game_id", *ENTRY_FIELDS)

# Driver failures that mean "Neo4j cannot answer now"; other driver errors are bugs and propagate.
_UNAVAILABLE = (
    ServiceUnavailable,
    SessionExpired,
    ConnectionPoolError,
    TransientError,
    AuthError,
    OSError,
)
# Fixed reasons for driver-side failures, whose own messages carry addresses.
_DRIVER_REASONS = (
    (ServiceUnavailable, "cannot reach Neo4j"),
    (SessionExpired, "the connection to Neo4j was lost"),
    (ConnectionPoolError, "no connection to Neo4j became free in time"),
)


class SlateStoreUnavailableError(Exception):
    """Neo4j cannot answer now (down, unreachable, timed out, or refusing our credentials).

    The message is ``Class: reason`` and never contains an address, URI or credential. Bad
    credentials are not transient, but a caller cannot tell them from an outage and must not
    lose work over either, so they are reported the same way, under their own class name.
    """


class SlateRepository:
    """Reads and seeds slates in Neo4j through one shared driver.

    ``dependency`` is the bulkhead and breaker reads go through; without one (seeding, tools)
    reads are still bounded by the deadline.
    """

    def __init__(
        self, driver: Driver, *, timeout_seconds: float, dependency: Dependency | None = None
    ) -> None:
        self._driver = driver
        self._timeout = timeout_seconds
        self._dependency = dependency

    def accepting_calls(self) -> bool:
        """Whether reads would be let through now (the breaker is not open)."""
        return self._dependency is None or self._dependency.accepting()

    def list_slates(self) -> list[dict[str, Any]]:
        """Every slate with its game and player counts, by start time then id."""
        records = self._read(LIST_SLATES, "list_slates")
        return [{**record.data(), "starts_at": _iso_utc(record["starts_at"])} for record in records]

    def load_slate(self, slate_id: str) -> dict[str, Any] | None:
        """The whole slate in one query, as the simulation takes it; ``None`` when unknown."""
        records = self._read(LOAD_SLATE, "load_slate", slate_id=slate_id)
        if not records:
            return None
        record = records[0]
        slate = _ordered(record["slate"], SLATE_FIELDS)
        slate["starts_at"] = _iso_utc(slate["starts_at"])
        slate["games"] = [_ordered(game, GAME_FIELDS) for game in record["games"]]
        slate["teams"] = [_ordered(team, TEAM_FIELDS) for team in record["teams"]]
        slate["players"] = [_ordered(player, PLAYER_FIELDS) for player in record["players"]]
        return slate

    def is_empty(self) -> bool:
        """Whether the graph holds no slate yet, so seeding ``--if-empty`` should run."""
        return bool(self._read(IS_EMPTY, "is_empty")[0]["empty"])

    def server_info(self) -> dict[str, Any]:
        """Neo4j's version and edition: the readiness probe's one cheap query.

        Auto-commit, so the driver does not retry it: a probe reports, it does not insist.
        """
        query = Query(SERVER_INFO, timeout=self._timeout)
        info: dict[str, Any] = self._bounded(
            "server_info", lambda session: session.run(query).single(strict=True).data()
        )
        return info

    def ensure_schema(self) -> None:
        """Create the uniqueness constraints on every id, which also index the lookups."""
        with _unavailable_as_error("ensure_schema"):
            for statement in CONSTRAINTS:
                self._driver.execute_query(
                    Query(statement, timeout=SEED_TIMEOUT_SECONDS), routing_=RoutingControl.WRITE
                )

    def seed(self, slates: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Upsert ``slates`` in one write transaction; a second run with the same data adds nothing.

        Seeding adds and updates, never deletes. Returns the numbers of slates, games, teams,
        players and slate entries given, and of the nodes and relationships it created.
        """
        rows = _seed_rows(slates)
        with _unavailable_as_error("seed"), self._driver.session() as session:
            created = session.execute_write(_write_seed, rows)
        given = {name: len(rows[name]) for name in ("slates", "games", "teams", "players")}
        return {**given, "entries": len(rows["entries"]), **created}

    def _read(self, statement: str, operation: str, **parameters: Any) -> list[Any]:
        query = Query(statement, timeout=self._timeout)

        def read() -> list[Any]:
            return self._bounded(operation, lambda session: list(session.run(query, parameters)))

        if self._dependency is None:
            return read()
        return self._dependency.call(read, failures=(SlateStoreUnavailableError,))

    def _bounded(self, operation: str, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a session of its own, waiting at most the timeout for it.

        Past the timeout the session's connection is killed, so the abandoned read ends too
        and its pool slot comes back. The connection is found through the session's private
        ``_connection`` (the driver offers no public handle); should a driver release rename
        it, calls still end at the deadline and only the abandoned thread waits longer.
        """
        sessions: list[Session] = []
        abandoned = threading.Event()

        def call() -> T:
            with (
                _unavailable_as_error(operation, quiet=abandoned),
                self._driver.session(default_access_mode=READ_ACCESS) as session,
            ):
                sessions.append(session)
                return work(session)

        def abort() -> None:
            abandoned.set()
            for session in sessions:
                connection = getattr(session, "_connection", None)
                if connection is not None:
                    connection.kill()

        try:
            return call_with_deadline(call, dependency="neo4j", deadline=self._timeout, abort=abort)
        except DeadlineExceededError as error:
            message = f"TimeoutError: {error.reason}"
            logger.warning("neo4j unavailable during %s: %s", operation, message)
            raise SlateStoreUnavailableError(message) from None


@unit_of_work(timeout=SEED_TIMEOUT_SECONDS)
def _write_seed(tx: ManagedTransaction, rows: Mapping[str, list[dict[str, Any]]]) -> dict[str, int]:
    created = {"nodes_created": 0, "relationships_created": 0}
    for statement, key in SEED_STEPS:
        counters = tx.run(statement, rows=rows[key]).consume().counters
        created["nodes_created"] += counters.nodes_created
        created["relationships_created"] += counters.relationships_created
    return created


def _seed_rows(slates: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The parameter rows of each seeding step; teams, games and players once each."""
    teams: dict[str, dict[str, Any]] = {}
    games: dict[str, dict[str, Any]] = {}
    players: dict[str, dict[str, Any]] = {}
    rows: dict[str, list[dict[str, Any]]] = {"slates": [], "slate_games": [], "entries": []}
    for slate in slates:
        _check_derivable(slate)
        rows["slates"].append(_ordered(slate, SLATE_FIELDS))
        teams.update((team["id"], _ordered(team, TEAM_FIELDS)) for team in slate["teams"])
        for game in slate["games"]:
            games[game["id"]] = _ordered(game, GAME_FIELDS)
            rows["slate_games"].append({"slate_id": slate["id"], "game_id": game["id"]})
        for player in slate["players"]:
            players[player["id"]] = {field: player[field] for field in ("id", "name", "team_id")}
            entry = {field: player[field] for field in ENTRY_FIELDS}
            rows["entries"].append({"slate_id": slate["id"], "player_id": player["id"], **entry})
    return {
        **rows,
        "teams": list(teams.values()),
        "games": list(games.values()),
        "players": list(players.values()),
    }


def _check_derivable(slate: Mapping[str, Any]) -> None:
    """Reject a slate the graph could not give back: a player's game is his team's game."""
    team_ids = {team["id"] for team in slate["teams"]}
    game_of_team: dict[str, str] = {}
    for game in slate["games"]:
        for team_id in (game["home"], game["away"]):
            if team_id not in team_ids or team_id in game_of_team:
                raise ValueError(
                    f"slate {slate['id']}: team {team_id} is unknown or plays twice on the slate"
                )
            game_of_team[team_id] = game["id"]
    for player in slate["players"]:
        if game_of_team.get(player["team_id"]) != player["game_id"]:
            raise ValueError(
                f"slate {slate['id']}: player {player['id']} is in game {player['game_id']}, "
                f"but team {player['team_id']} does not play it on this slate"
            )


def _ordered(item: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """A plain dict with ``fields`` in the documented order (Neo4j maps have none)."""
    return {field: item[field] for field in fields}


def _iso_utc(value: Any) -> str:
    """A Neo4j DATETIME as ISO 8601 UTC with a ``Z``, as the slate shape writes it."""
    moment: datetime = value.to_native()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reason(error: BaseException) -> str:
    """What failed, in words that hold no address: a server code, a fixed phrase, an errno text."""
    if isinstance(error, Neo4jError):
        return error.code
    for kind, reason in _DRIVER_REASONS:
        if isinstance(error, kind):
            return reason
    return getattr(error, "strerror", None) or "network error"


def _is_unavailable(error: BaseException) -> bool:
    if isinstance(error, _UNAVAILABLE):
        return True
    return isinstance(error, ClientError) and "TransactionTimedOut" in error.code


@contextmanager
def _unavailable_as_error(operation: str, quiet: threading.Event | None = None) -> Iterator[None]:
    """Turn "Neo4j cannot answer" failures into SlateStoreUnavailableError; let bugs through.

    ``quiet``, once set (the call was abandoned and its connection killed), skips the log line:
    the caller has logged the timeout already.
    """
    try:
        yield
    except (Neo4jError, DriverError, OSError) as error:
        if not _is_unavailable(error):
            raise
        message = f"{type(error).__name__}: {_reason(error)}"
        if quiet is None or not quiet.is_set():
            logger.warning("neo4j unavailable during %s: %s", operation, message)
        raise SlateStoreUnavailableError(message) from error
