"""The soak's verdict: every record and every log line read once the queue is empty.

Each invariant is checked from outside the service and named where it is checked:
- every acknowledged job is complete (never lost, never stuck);
- one job per logical submission, and no job that no client got an acknowledgement for;
- every job completed exactly once: "job complete" logged once, or not at all when the worker
  that completed it was SIGKILLed (its last lines may never reach the log), never twice; and it
  never ran again after it completed (no "job started" after its "job complete"; no complete
  job seen in another state by the watcher);
- the service answered nothing outside its contract: its 5xx answers are 503s with
  Retry-After and a documented code; the balancer's own answers are counted apart;
- no log line says something unexpected happened (an unexpected job error, a request that
  crashed, a worker that failed to boot).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.jobs.keys import job_key
from tests.support.invariants import (
    COMPLETE,
    STARTED,
    StateWatch,
    StoreClient,
    all_job_ids,
    count_by_job,
    log_lines,
)
from tests.support.load import Submitters

# The service's documented 503 codes; every 5xx it sends must be one of them.
DOCUMENTED_503_CODES = frozenset(
    {
        "store_unavailable",
        "dependency_unavailable",
        "slate_store_unavailable",
        "shutting_down",
        "too_many_connections",
    }
)
# Log messages that say something went wrong that no fault explains.
UNEXPECTED_MESSAGES = (
    "job raised an unexpected error",
    "Exception in worker process",
    "Error handling request",
    "Worker failed to boot",
)


@dataclass
class Verdict:
    """What the soak found: counts to print, and the invariants that broke."""

    counts: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def violated(self, invariant: str, examples: Iterable[Any]) -> None:
        """Record a broken invariant with a few examples."""
        shown = list(examples)
        if shown:
            self.violations.append(f"{invariant}: {len(shown)}, e.g. {shown[:5]}")


def check(
    client: StoreClient,
    submitters: list[Submitters],
    watch: StateWatch,
    log_files: list[Any],
    killed_workers: set[int],
) -> Verdict:
    """Read every acknowledged job's record and every log line; the verdict.

    ``killed_workers`` are the pids the nemesis SIGKILLed.
    """
    verdict = Verdict()
    acknowledged = {k: v for group in submitters for k, v in group.acknowledged.items()}
    job_ids = list(acknowledged.values())
    records = _records(client, job_ids)
    states = Counter(record.get("state", "missing") for record in records.values())
    verdict.counts["acknowledged submissions"] = len(acknowledged)
    verdict.counts["final states"] = dict(states)
    verdict.counts["attempts > 1"] = sum(int(r.get("attempts", 0)) > 1 for r in records.values())
    verdict.counts["lost attempts"] = sum(int(r.get("lost_attempts", 0)) for r in records.values())
    verdict.violated(
        "acknowledged job not complete",
        (
            (job_id, record.get("state", "missing"), record.get("error_code"))
            for job_id, record in records.items()
            if record.get("state") != "complete"
        ),
    )
    verdict.violated(
        "submissions that share a job",
        (job_id for job_id, n in Counter(job_ids).items() if n > 1),
    )
    stored = set(all_job_ids(client))
    verdict.counts["jobs in Redis"] = len(stored)
    verdict.violated("job without an acknowledged submission", stored - set(job_ids))

    lines = log_lines(log_files)
    completions = count_by_job(lines, COMPLETE)
    starts = count_by_job(lines, STARTED)
    verdict.counts["log lines read"] = len(lines)
    verdict.counts["job runs (job started)"] = sum(starts[job_id] for job_id in job_ids)
    verdict.counts["superseded attempts"] = sum(
        "superseded" in line.get("message", "") for line in lines
    )
    verdict.violated(
        "job completed more than once", ((j, completions[j]) for j in job_ids if completions[j] > 1)
    )
    unlogged = [job_id for job_id in job_ids if completions[job_id] == 0]
    verdict.counts["completions unlogged (their worker was SIGKILLed)"] = len(unlogged)
    verdict.violated(
        "job complete without a line from a live worker",
        (
            (job_id, records[job_id].get("worker"))
            for job_id in unlogged
            if records[job_id].get("state") == "complete"
            and _pid(records[job_id].get("worker")) not in killed_workers
        ),
    )
    verdict.violated("job run again after it completed", _runs_after_completion(lines))
    verdict.counts["complete jobs watched"] = len(watch.complete)
    verdict.counts["state watch polls"] = watch.polls
    verdict.violated("complete job seen in another state", watch.regressions)

    answers: Counter[str] = Counter()
    for group in submitters:
        answers.update(group.answers)
        verdict.violated("client error (answer outside the retry contract)", group.errors)
    verdict.counts["answers"] = dict(sorted(answers.items()))
    verdict.violated("5xx from the service outside its contract", _outside_contract(answers))
    verdict.counts["ERROR log lines"] = dict(
        Counter(line["message"][:80] for line in lines if line.get("level") == "ERROR")
    )
    verdict.violated(
        "unexpected log line",
        (
            line["message"][:120]
            for line in lines
            if any(message in line.get("message", "") for message in UNEXPECTED_MESSAGES)
        ),
    )
    return verdict


def _pid(worker: str | None) -> int | None:
    """The pid in a record's ``worker`` (``host:pid``)."""
    pid = (worker or "").rpartition(":")[2]
    return int(pid) if pid.isdigit() else None


def _records(client: StoreClient, job_ids: list[str]) -> dict[str, dict[str, str]]:
    names = ("state", "attempts", "lost_attempts", "error_code", "worker")
    pipe = client.pipeline(transaction=False)
    for job_id in job_ids:
        pipe.hmget(job_key(job_id), *names)
    return {
        job_id: {name: value for name, value in zip(names, values, strict=True) if value}
        for job_id, values in zip(job_ids, pipe.execute(), strict=True)
    }


def _runs_after_completion(lines: list[dict[str, Any]]) -> list[str]:
    """Jobs with a "job started" line later than their "job complete" line (log time)."""
    completed_at: dict[str, str] = {}
    for line in lines:
        if line.get("message") == COMPLETE:
            completed_at.setdefault(line["job_id"], line["timestamp"])
    return sorted(
        {
            line["job_id"]
            for line in lines
            if line.get("message") == STARTED
            and line["job_id"] in completed_at
            and line["timestamp"] > completed_at[line["job_id"]]
        }
    )


def _outside_contract(answers: Counter[str]) -> list[str]:
    """Answers with the API's error envelope and a 5xx status that no contract allows."""
    found = []
    for name, count in answers.items():
        status, _, code = name.partition(" ")
        server_error = status.isdigit() and int(status) >= 500 and bool(code)
        if server_error and (status != "503" or code not in DOCUMENTED_503_CODES):
            found.append(f"{name} x{count}")
    return found
