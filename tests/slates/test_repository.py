"""The slate repository against the real Neo4j: round trips, idempotent seeding, outages."""

from __future__ import annotations

import dataclasses
import errno
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from neo4j import Driver
from neo4j.exceptions import (
    ClientError,
    ConnectionAcquisitionTimeoutError,
    CypherSyntaxError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from app.config import Settings
from app.slates.demo_data import demo_slates
from app.slates.repository import SlateRepository, SlateStoreUnavailableError, create_neo4j_driver
from tests.support.ports import free_port

# Generous for a cold JVM, which plans the first queries slowly; outages use short timeouts.
TEST_TIMEOUT_SECONDS = 10.0
OUTAGE_TIMEOUT_SECONDS = 1.0
DEMO_IDS = ["nba-2026-11-28-main", "nba-2026-11-28-showdown-bos-nyk", "nfl-2026-11-29-main"]
GRAPH_COUNTS = """
CALL () { MATCH (n) WHERE n:Slate OR n:Game OR n:Team OR n:Player
          RETURN labels(n)[0] AS kind, count(*) AS total
          UNION ALL
          MATCH ()-[r:IN_SLATE|PLAYS_IN|PLAYS_FOR|ON_SLATE]->()
          RETURN type(r) AS kind, count(*) AS total }
RETURN kind, sum(total) AS total ORDER BY kind
"""


@pytest.fixture(scope="module")
def settings_for_tests(service_env: dict[str, str]) -> Settings:
    return Settings.from_env(
        {
            **service_env,
            "DEPENDENCY_TIMEOUT_SECONDS": str(TEST_TIMEOUT_SECONDS),
            "JOB_LEASE_SECONDS": str(int(TEST_TIMEOUT_SECONDS * 3) + 5),  # a third at most
        }
    )


@pytest.fixture(scope="module")
def driver(settings_for_tests: Settings) -> Iterator[Driver]:
    neo4j_driver = create_neo4j_driver(settings_for_tests)
    yield neo4j_driver
    neo4j_driver.close()


@pytest.fixture
def repository(driver: Driver, seeded_slates: list[dict]) -> SlateRepository:
    """A repository on the real Neo4j, which holds the demo slates."""
    return SlateRepository(driver, timeout_seconds=TEST_TIMEOUT_SECONDS)


def _graph_counts(driver: Driver) -> dict[str, int]:
    records = driver.execute_query(GRAPH_COUNTS).records
    return {record["kind"]: record["total"] for record in records}


@contextmanager
def _unreachable(settings: Settings, **changes: Any) -> Iterator[SlateRepository]:
    changed = dataclasses.replace(
        settings, dependency_timeout_seconds=OUTAGE_TIMEOUT_SECONDS, **changes
    )
    neo4j_driver = create_neo4j_driver(changed)
    yield SlateRepository(neo4j_driver, timeout_seconds=OUTAGE_TIMEOUT_SECONDS)
    neo4j_driver.close()


@pytest.mark.parametrize("slate_id", DEMO_IDS)
def test_loading_a_seeded_slate_gives_back_the_generated_slate(repository, seeded_slates, slate_id):
    expected = next(slate for slate in seeded_slates if slate["id"] == slate_id)
    loaded = repository.load_slate(slate_id)
    assert loaded == expected
    assert list(loaded) == ["id", "sport", "site", "name", "starts_at", "games", "teams", "players"]
    assert list(loaded["players"][0]) == list(expected["players"][0])
    assert list(loaded["games"][0]) == ["id", "home", "away", "total", "spread"]


def test_seeding_again_creates_nothing_and_changes_no_count(repository, driver):
    before = _graph_counts(driver)
    result = repository.seed(demo_slates())
    assert (result["nodes_created"], result["relationships_created"]) == (0, 0)
    assert _graph_counts(driver) == before
    assert repository.load_slate("nfl-2026-11-29-main") == demo_slates()[2]


def test_seed_reports_what_it_was_given(repository):
    counts = repository.seed(demo_slates())
    assert {key: counts[key] for key in ("slates", "games", "teams", "players", "entries")} == {
        "slates": 3,
        "games": 23,
        "teams": 46,
        "players": 754,
        "entries": 774,
    }


def test_seed_rejects_a_player_who_is_not_in_his_teams_game(repository):
    slate = demo_slates()[0]
    slate["players"][0] = {**slate["players"][0], "game_id": slate["games"][-1]["id"]}
    with pytest.raises(ValueError, match="does not play it on this slate"):
        repository.seed([slate])


def test_every_id_has_a_uniqueness_constraint(repository, driver):
    repository.ensure_schema()
    records = driver.execute_query("SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties").records
    unique = {
        (record["labelsOrTypes"][0], tuple(record["properties"]))
        for record in records
        if record["type"] == "UNIQUENESS"
    }
    assert {("Slate", ("id",)), ("Game", ("id",)), ("Team", ("id",)), ("Player", ("id",))} <= unique


def test_an_unknown_slate_is_none(repository):
    assert repository.load_slate("nba-1999-01-01-main") is None


def test_list_slates_gives_counts_in_start_order(repository, demo_listing):
    listed = [slate for slate in repository.list_slates() if slate["id"] in DEMO_IDS]
    assert listed == demo_listing


def test_the_graph_is_not_empty_once_seeded(repository):
    assert repository.is_empty() is False


def test_server_info_gives_the_version_and_edition(repository):
    info = repository.server_info()
    assert info["version"].split(".")[0].isdigit()
    assert info["edition"] in {"community", "enterprise"}


def test_a_closed_port_is_unavailable_within_about_the_timeout(settings_for_tests):
    port = free_port()
    with _unreachable(settings_for_tests, neo4j_uri=f"bolt://127.0.0.1:{port}") as repository:
        started = time.monotonic()
        with pytest.raises(SlateStoreUnavailableError) as caught:
            repository.load_slate("nfl-2026-11-29-main")
        assert time.monotonic() - started < OUTAGE_TIMEOUT_SECONDS * 4
        assert str(caught.value) == "ServiceUnavailable: cannot reach Neo4j"
        assert str(port) not in str(caught.value)


def test_refused_credentials_are_unavailable_under_their_own_class(settings_for_tests):
    # An unknown user, so the failed login cannot lock out the account the other tests use.
    with _unreachable(settings_for_tests, neo4j_user="slatesim-test-nobody") as repository:
        with pytest.raises(SlateStoreUnavailableError, match=r"^AuthError: ") as caught:
            repository.server_info()
        assert settings_for_tests.neo4j_password not in str(caught.value)


class _TimedOutError(ClientError):
    code = "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration"


class _FailingDriver:
    """Stands in for a driver whose every query fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    @contextmanager
    def session(self, **kwargs: object) -> Iterator[_FailingDriver]:
        yield self

    def run(self, *args: object, **kwargs: object) -> None:
        raise self.error


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ServiceUnavailable("Couldn't connect to 10.1.2.3:7687"), "ServiceUnavailable: "),
        (SessionExpired("lost 10.1.2.3:7687"), "SessionExpired: "),
        (ConnectionAcquisitionTimeoutError("pool full"), "ConnectionAcquisitionTimeoutError: "),
        (TransientError("database unavailable"), "TransientError: "),
        (
            _TimedOutError("timed out"),
            "_TimedOutError: Neo.ClientError.Transaction.TransactionTimedOut",
        ),
        (
            OSError(errno.ECONNRESET, "Connection reset by peer"),
            "ConnectionResetError: Connection reset",
        ),
    ],
)
def test_outages_and_timeouts_become_unavailable_without_addresses(error, message):
    repository = SlateRepository(cast(Driver, _FailingDriver(error)), timeout_seconds=1.0)
    with pytest.raises(SlateStoreUnavailableError) as caught:
        repository.list_slates()
    assert str(caught.value).startswith(message)
    assert "10.1.2.3" not in str(caught.value)
    assert caught.value.__cause__ is error


def test_query_bugs_are_not_mistaken_for_outages():
    error = CypherSyntaxError("bad query")
    repository = SlateRepository(cast(Driver, _FailingDriver(error)), timeout_seconds=1.0)
    with pytest.raises(CypherSyntaxError):
        repository.load_slate("nfl-2026-11-29-main")
