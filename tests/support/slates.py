"""A slate whose names are markup: what the dashboard must show as text, never run."""

from __future__ import annotations

from typing import Any

HOSTILE_SLATE_ID = "test-hostile-names"
SCRIPT_NAME = "<script>window.__pwned = true</script>Script Kiddie"
ATTRIBUTE_NAME = '"><img src=x onerror="window.__pwned=true">Quote Breaker'
HOSTILE_TEAM_NAME = "<b>Bold</b> & <i>Italic</i>"


def hostile_slate() -> dict[str, Any]:
    """One game, two teams of four; one player and one team named with markup."""
    teams = [{"id": "hx-a", "name": HOSTILE_TEAM_NAME}, {"id": "hx-b", "name": "Plain Team"}]
    players = []
    for team in teams:
        for k in range(4):
            players.append(
                {
                    "id": f"{team['id']}-{k}",
                    "name": f"Player {team['id']}-{k}",
                    "team_id": team["id"],
                    "game_id": "hx-game",
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
        "games": [{"id": "hx-game", "home": "hx-a", "away": "hx-b", "total": 44.0, "spread": -3.0}],
        "teams": teams,
        "players": players,
    }
