"""``flask --app app.wsgi jobs ...``: submit, watch, cancel, list, show and requeue jobs, print
the queue depth, and move a store written before 0.5 into the shards (``migrate``).

Output is JSON on stdout, for scripts; ``watch`` (and ``submit --wait``) on a terminal shows a
progress bar instead, and piped prints one JSON line per change. Exit codes: 0 ok (a watched
job ended complete), 1 not found (or expired, or the store is unavailable, or a watched job
ended failed or cancelled, or a cancel came after the job finished), 2 usage (bad arguments,
or a job that cannot be requeued). Below WARNING the service's own log lines go to the log
file only, unless LOG_LEVEL is set for the command.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click
from flask.cli import AppGroup

from app.correlation import new_id
from app.errors import DOMAIN_ERRORS, ApiError, JobExpired, JobFinished, JobNotFound, api_error
from app.jobs.job import LISTABLE_STATES, Job, JobState
from app.jobs.migration import migrate_everything
from app.jobs.validation import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    parse_job_id_text,
    parse_list_query,
    parse_submission,
)
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
        except (ApiError, *DOMAIN_ERRORS) as raised:
            error = raised if isinstance(raised, ApiError) else api_error(raised)
        if error.status == 400:
            raise click.UsageError(error.message) from None
        if isinstance(error, (JobNotFound, JobExpired, JobFinished)):
            raise NotFoundExit(error.message) from None
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
    _echo(services().jobs.get(parse_job_id_text(job_id)).to_dict(include_result=with_result))


@jobs_cli.command("requeue")
@click.argument("job_id")
@_client_errors
def requeue_command(job_id: str) -> None:
    """Submit a failed job again as a new job with the same params (and seed)."""
    svc = services()
    failed = svc.jobs.get(parse_job_id_text(job_id))
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


@jobs_cli.command("migrate")
@_client_errors
def migrate_command() -> None:
    """Move every job of the layout before 0.5 into the shards now (the sweep moves them a
    batch a period otherwise). Safe while instances work; prints how many moved and how many
    wait because an instance of 0.4 still runs them (run it again once those have ended)."""
    started = time.monotonic()
    outcome = migrate_everything(services().store)
    _echo({**outcome._asdict(), "seconds": round(time.monotonic() - started, 3)})


# How often ``watch`` reads the record; progress itself moves once per heartbeat.
WATCH_INTERVAL_SECONDS = 0.25
FINISHED = (JobState.COMPLETE, JobState.FAILED)


@jobs_cli.command("submit")
@click.argument("slate_id")
@click.option("--scenarios", "scenario_count", type=int, required=True)
@click.option("--seed", type=int, help="Fix the seed (the same seed gives the same result).")
@click.option("--wait", is_flag=True, help="Watch the job until it ends (see `jobs watch`).")
@_client_errors
def submit_command(slate_id: str, scenario_count: int, seed: int | None, wait: bool) -> None:
    """Submit a simulation job, as POST /jobs does; print its record."""
    svc = services()
    body = {"slate_id": slate_id, "scenario_count": scenario_count}
    body |= {"seed": seed} if seed is not None else {}
    submission = parse_submission(body, max_scenarios=svc.settings.job_max_scenarios)
    job, _ = svc.jobs.submit(submission, idempotency_key=None, request_id=new_id(), user_id=None)
    if not wait:
        _echo(job.to_dict())
        return
    if not sys.stdout.isatty():
        click.echo(json.dumps({"submitted": job.id}))
    raise SystemExit(_watch(job.id))


@jobs_cli.command("watch")
@click.argument("job_id")
@_client_errors
def watch_command(job_id: str) -> None:
    """Follow a job until it ends: a progress bar on a terminal, JSON lines when piped."""
    raise SystemExit(_watch(job_id))


@jobs_cli.command("cancel")
@click.argument("job_id")
@_client_errors
def cancel_command(job_id: str) -> None:
    """Cancel a job, as POST /jobs/<id>/cancel does; print its record."""
    job, _ = services().jobs.cancel(parse_job_id_text(job_id), user_id=None)
    _echo(job.to_dict(include_result=False))


def _watch(job_id: str) -> int:
    """Follow ``job_id`` to its end; the exit code (0 complete, 1 failed or cancelled)."""
    jobs = services().jobs
    parsed = parse_job_id_text(job_id)
    job = jobs.get(parsed)
    if sys.stdout.isatty():
        job = _watch_with_a_bar(job, lambda: jobs.get(parsed))
    else:
        last = None
        while True:
            change = _change(job)
            if change != last:
                click.echo(json.dumps(change))
                last = change
            if job.state in FINISHED:
                break
            time.sleep(WATCH_INTERVAL_SECONDS)
            job = jobs.get(parsed)
    return 0 if job.state is JobState.COMPLETE else 1


def _change(job: Job) -> dict[str, Any]:
    """What ``watch`` prints when it changes: state, progress, and the error once failed."""
    record = job.to_dict(include_result=False)
    line = {"id": job.id, "state": record["state"]}
    for key in ("progress", "error"):
        if key in record:
            line[key] = record[key]
    return line


def _watch_with_a_bar(job: Job, get: Callable[[], Job]) -> Job:
    """A rich progress bar of scenarios done, their rate and the time left; the final job."""
    from rich.progress import (  # imported here: only a terminal needs it
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    total = int(job.fields["scenario_count"])
    columns = (
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("scenarios"),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(job.state.value, total=total, rate="")
        while True:
            progress = job.to_dict(include_result=False).get("progress") or {}
            done = total if job.state is JobState.COMPLETE else progress.get("scenarios_done", 0)
            speed = bar.tasks[0].speed
            rate = f"{speed:,.0f}/s" if speed else ""
            bar.update(task, completed=done, description=job.state.value, rate=rate)
            if job.state in FINISHED:
                break
            time.sleep(WATCH_INTERVAL_SECONDS)
            job = get()
    record = job.to_dict(include_result=False)
    if "error" in record:
        click.echo(
            f"{job.id} {record['state']}: {record['error']['code']}: {record['error']['message']}"
        )
    else:
        click.echo(f"{job.id} {record['state']} in {record['metadata']['duration_ms']} ms")
    return job
