"""``flask seed``: loads the demo slates, skips a seeded graph with --if-empty, fails cleanly."""

from __future__ import annotations

import dataclasses

from app import create_app
from app.config import Settings
from app.services import EXTENSION_KEY
from app.slates.cli import seed_command
from tests.support.ports import free_port


def test_seed_loads_the_demo_slates_and_prints_one_summary_line(app, seeded_slates):
    result = app.test_cli_runner().invoke(seed_command)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("seed: 3 slates, 23 games, 46 teams, 754 players")
    assert "created 0 nodes and 0 relationships" in lines[0]


def test_seed_if_empty_leaves_a_seeded_graph_alone(app, seeded_slates):
    result = app.test_cli_runner().invoke(seed_command, ["--if-empty"])
    assert result.exit_code == 0, result.output
    assert "nothing loaded" in result.stdout


def test_seed_without_neo4j_exits_1_with_a_short_message(settings: Settings):
    offline = dataclasses.replace(
        settings, neo4j_uri=f"bolt://127.0.0.1:{free_port()}", dependency_timeout_seconds=0.5
    )
    app = create_app(offline)
    try:
        result = app.test_cli_runner().invoke(seed_command)
    finally:
        app.extensions[EXTENSION_KEY].close()
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: cannot seed, Neo4j is unavailable: ServiceUnavailable: cannot reach Neo4j"
    )
    assert "Traceback" not in result.output
    assert settings.neo4j_password not in result.output
