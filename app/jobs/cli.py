"""``flask --app app.wsgi jobs ...``: list, show and requeue jobs and print the queue depth.

Output is JSON on stdout, for scripts. Exit codes: 0 ok, 1 not found (or expired, or the
store is unavailable), 2 usage (bad arguments, or a job that cannot be requeued).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click
from flask.cli import AppGroup

from app.correlation import new_id
from app.errors import ApiError, InvalidJobId, JobExpired, JobNotFound
from app.jobs.store import LISTABLE_STATES, JobState
from app.jobs.validation import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, parse_list_query
from app.logging_setup import console_logs_to_stderr
from app.services import services


@click.group("jobs", cls=AppGroup)
def jobs_cli() -> None:
    """Inspect and requeue simulation jobs."""
    # Log lines go to stderr, so stdout holds only the JSON a script parses.
    console_logs_to_stderr()


P = ParamSpec("P")
R = TypeVar("R")


class NotFoundExit(click.ClickException):
    """A job that does not exist (any more): exit code 1."""

    exit_code = 1


def _echo(document: Any) -> None:
    click.echo(json.dumps(document, indent=2))


def _client_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Map the service's client errors to exit codes: usage 2, everything else 1."""

    @wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except InvalidJobId as error:
            raise click.UsageError(error.message) from None
        except (JobNotFound, JobExpired) as error:
            raise NotFoundExit(error.message) from None
        except ApiError as error:
            if error.status == 400:
                raise click.UsageError(error.message) from None
            raise click.ClickException(f"{error.code}: {error.message}") from None

    return wrapper


@jobs_cli.command("list")
@click.option("--state", type=click.Choice([s.value for s in LISTABLE_STATES]))
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_LIST_LIMIT),
    default=DEFAULT_LIST_LIMIT,
    show_default=True,
)
@click.option("--cursor", help="The next_cursor printed by the previous page.")
@_client_errors
def list_command(state: str | None, limit: int, cursor: str | None) -> None:
    """List jobs newest first, as GET /jobs does."""
    query = {"limit": str(limit)} | ({"state": state} if state else {})
    query |= {"cursor": cursor} if cursor else {}
    parsed_state, parsed_limit, after = parse_list_query(query)
    _echo(services().jobs.list(parsed_state, limit=parsed_limit, after=after).to_dict())


@jobs_cli.command("show")
@click.argument("job_id")
@click.option("--with-result/--without-result", default=False, show_default=True)
@_client_errors
def show_command(job_id: str, with_result: bool) -> None:
    """Print one job record."""
    _echo(services().jobs.get(job_id).to_dict(include_result=with_result))


@jobs_cli.command("requeue")
@click.argument("job_id")
@_client_errors
def requeue_command(job_id: str) -> None:
    """Submit a failed job again as a new job with the same params (and seed)."""
    svc = services()
    failed = svc.jobs.get(job_id)
    if failed.state is not JobState.FAILED:
        raise click.UsageError(f"job {failed.id} is {failed.state.value}; only failed jobs requeue")
    job, _ = svc.jobs.submit(
        failed.params, idempotency_key=None, request_id=new_id(), user_id=failed.user_id
    )
    _echo({"requeued_from": failed.id, "job": job.to_dict()})


@jobs_cli.command("depth")
@_client_errors
def depth_command() -> None:
    """Print the cluster-wide pending and running counts."""
    _echo(services().jobs.queue_depth())
