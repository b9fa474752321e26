"""The suite's own slate data: a slate whose names are markup (what the dashboard must show as
text, never run), and its removal.

Every node the suite writes to Neo4j has an id that starts with TEST_ID_PREFIX, so that the
session can remove all of it at its end: the Neo4j of `make run` is the same server, and after
`make test` it must list the demo slates only."""

from __future__ import annotations

from typing import Any

from neo4j import Driver

TEST_ID_PREFIX = "test-"
HOSTILE_SLATE_ID = f"{TEST_ID_PREFIX}hostile-names"
SCRIPT_NAME = "<script>window.__pwned = true</script>Script Kiddie"
ATTRIBUTE_NAME = '"><img src=x onerror="window.__pwned=true">Quote Breaker'
HOSTILE_TEAM_NAME = "<b>Bold</b> & <i>Italic</i>"


def hostile_slate() -> dict[str, Any]:
    """One game, two teams of four; one player and one team named with markup."""
    teams = [
        {"id": f"{TEST_ID_PREFIX}hx-a", "name": HOSTILE_TEAM_NAME},
        {"id": f"{TEST_ID_PREFIX}hx-b", "name": "Plain Team"},
    ]
    players = []
    for team in teams:
        for k in range(4):
            players.append(
                {
                    "id": f"{team['id']}-{k}",
                    "name": f"Player {team['id']}-{k}",
                    "team_id": team["id"],
                    "game_id": f"{TEST_ID_PREFIX}hx-game",
                    "salary": 4000 + 1000 * k,
                    "positions": ["X"],
                    "projection": 10.0 + 3 * k,
                    "stddev": 4.0,
                }
            )
    players[0]["name"], players[5]["name"] = SCRIPT_NAME, ATTRIBUTE_NAME
    return {
        "id": HOSTILE_SLATE_ID,
        "sport": "football",
        "site": "test",
        "name": "Names that are markup",
        "starts_at": "2026-12-01T18:00:00Z",
        "games": [
            {
                "id": f"{TEST_ID_PREFIX}hx-game",
                "home": f"{TEST_ID_PREFIX}hx-a",
                "away": f"{TEST_ID_PREFIX}hx-b",
                "total": 44.0,
                "spread": -3.0,
            }
        ],
        "teams": teams,
        "players": players,
    }


# Every slate, game, team and player of the suite's own, with their relationships.
_REMOVE_TEST_NODES = """
MATCH (node) WHERE (node:Slate OR node:Game OR node:Team OR node:Player)
  AND node.id STARTS WITH $prefix
DETACH DELETE node
RETURN count(node) AS removed
"""
_COUNT_TEST_NODES = "MATCH (node) WHERE node.id STARTS WITH $prefix RETURN count(node) AS left"


def remove_test_slates(driver: Driver) -> int:
    """Delete every node the suite wrote (ids under TEST_ID_PREFIX); return how many."""
    records = driver.execute_query(_REMOVE_TEST_NODES, prefix=TEST_ID_PREFIX).records
    return int(records[0]["removed"])


def count_test_nodes(driver: Driver) -> int:
    """Nodes with an id under TEST_ID_PREFIX still in the graph."""
    return int(driver.execute_query(_COUNT_TEST_NODES, prefix=TEST_ID_PREFIX).records[0]["left"])
