"""``flask --app app.wsgi seed``: create the graph schema and load the demo slates."""

from __future__ import annotations

import time

import click
from flask.cli import with_appcontext

from app.services import services
from app.slates.demo_data import demo_slates
from app.slates.repository import SlateStoreUnavailableError


@click.command("seed")
@click.option("--if-empty", is_flag=True, help="Load nothing when the graph already has slates.")
@with_appcontext
def seed_command(if_empty: bool) -> None:
    """Create the uniqueness constraints and load the demo slates (safe to run again)."""
    repository = services().slates
    try:
        repository.ensure_schema()
        if if_empty and not repository.is_empty():
            click.echo("seed: the graph already holds slates; nothing loaded (--if-empty)")
            return
        started = time.perf_counter()
        counts = repository.seed(demo_slates())
    except SlateStoreUnavailableError as error:
        raise click.ClickException(f"cannot seed, Neo4j is unavailable: {error}") from None
    click.echo(
        f"seed: {counts['slates']} slates, {counts['games']} games, {counts['teams']} teams, "
        f"{counts['players']} players, {counts['entries']} slate entries; created "
        f"{counts['nodes_created']} nodes and {counts['relationships_created']} relationships "
        f"in {time.perf_counter() - started:.2f}s"
    )
