"""Fixtures for slate tests: what the seeded demo slates look like when listed."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def demo_listing() -> list[dict[str, Any]]:
    """The demo slates as GET /slates and ``list_slates`` show them, in start order."""
    return [
        {
            "id": "nba-2026-11-28-main",
            "sport": "basketball",
            "site": "demo",
            "name": "Basketball main slate, 10 games",
            "starts_at": "2026-11-28T23:00:00Z",
            "game_count": 10,
            "player_count": 260,
        },
        {
            "id": "nba-2026-11-28-showdown-bos-nyk",
            "sport": "basketball",
            "site": "demo",
            "name": "Basketball showdown, BOS at NYK",
            "starts_at": "2026-11-28T23:30:00Z",
            "game_count": 1,
            "player_count": 20,
        },
        {
            "id": "nfl-2026-11-29-main",
            "sport": "football",
            "site": "demo",
            "name": "Football main slate, 13 games",
            "starts_at": "2026-11-29T18:00:00Z",
            "game_count": 13,
            "player_count": 494,
        },
    ]
