"""The slates HTTP contract: listing, one slate, unknown ids, and a Neo4j outage."""

from __future__ import annotations

import dataclasses

import pytest

from app import create_app
from app.config import Settings
from app.services import EXTENSION_KEY
from tests.support.answers import assert_error
from tests.support.ports import free_port

PLAYER_FIELDS = ["id", "name", "team_id", "game_id", "salary", "positions", "projection", "stddev"]


@pytest.fixture(autouse=True)
def _demo_slates_are_seeded(seeded_slates: list[dict]) -> None:
    """Every test here reads the demo slates from the real Neo4j."""


def test_list_slates_shows_the_demo_slates_with_counts(client, demo_listing):
    response = client.get("/slates")
    assert response.status_code == 200
    slates = {slate["id"]: slate for slate in response.get_json()["slates"]}
    assert slates["nfl-2026-11-29-main"] == demo_listing[-1]
    assert slates["nba-2026-11-28-showdown-bos-nyk"]["player_count"] == 20


def test_get_slate_returns_games_teams_and_priced_players(client, seeded_slates):
    response = client.get("/slates/nba-2026-11-28-main")
    assert response.status_code == 200
    slate = response.get_json()
    assert slate == seeded_slates[0]
    assert list(slate["players"][0]) == PLAYER_FIELDS
    assert list(slate["games"][0]) == ["id", "home", "away", "total", "spread"]
    assert list(slate["teams"][0]) == ["id", "name"]


def test_an_unknown_slate_is_a_404_naming_it(client):
    error = assert_error(client.get("/slates/nba-1999-01-01-main"), 404, "slate_not_found")
    assert "nba-1999-01-01-main" in error["message"]


def test_an_unknown_id_is_echoed_and_one_no_slate_can_have_is_a_400(client):
    error = assert_error(client.get(f"/slates/{'x' * 128}"), 404, "slate_not_found")
    assert "x" * 128 in error["message"]
    for impossible in ("x" * 129, "%C5%BF" * 3, "a%20b"):  # too long, non-ASCII, a space
        error = assert_error(client.get(f"/slates/{impossible}"), 400, "validation_error")
        assert error["field"] == "slate_id"


def test_neo4j_down_is_a_503_with_retry_after(settings: Settings):
    offline = dataclasses.replace(
        settings, neo4j_uri=f"bolt://127.0.0.1:{free_port()}", dependency_timeout_seconds=0.5
    )
    app = create_app(offline)
    try:
        for path in ("/slates", "/slates/nba-2026-11-28-main"):
            response = app.test_client().get(path)
            error = assert_error(response, 503, "slate_store_unavailable")
            assert "ServiceUnavailable" in error["message"]
            assert int(response.headers["Retry-After"]) > 0
    finally:
        app.extensions[EXTENSION_KEY].close()
