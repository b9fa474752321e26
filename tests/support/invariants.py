"""What the fault tests and the soak check from outside the service: the log lines each instance
wrote about jobs, and the states Redis holds over time."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis

from app.jobs.keys import SHARDS, index_name, job_key, shard_key

# A client of the store: a single Redis (or Sentinel's primary) or a Redis Cluster.
StoreClient = redis.Redis | redis.RedisCluster

if TYPE_CHECKING:
    from tests.support.gunicorn import Gunicorn
    from tests.support.load import Submitters

COMPLETE = "job complete"
STARTED = "job started"
# How often a StateWatch reads every state by default (a fault test's handful of jobs).
WATCH_INTERVAL_SECONDS = 0.05


def rotated(path: Path) -> list[Path]:
    """A log file and its rotated backups, oldest first (``app.log.2``, ``app.log.1``,
    ``app.log``), those that exist."""
    backups = sorted(
        (p for p in path.parent.glob(f"{path.name}.*") if p.suffix[1:].isdigit()),
        key=lambda p: int(p.suffix[1:]),
        reverse=True,
    )
    return [*backups, *([path] if path.exists() else [])]


def log_lines(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Every whole JSON line of ``paths``, in order; a half-written last line is left out."""
    lines: list[dict[str, Any]] = []
    for path in paths:
        text = path.read_text(errors="replace")
        for line in text[: text.rfind("\n") + 1].splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(line))
    return lines


def count_by_job(lines: Iterable[dict[str, Any]], message: str) -> Counter[str]:
    """How many lines with ``message`` each job has."""
    return Counter(line["job_id"] for line in lines if line.get("message") == message)


def messages_of(lines: Iterable[dict[str, Any]], job_id: str) -> list[str]:
    """Every message logged about the job, in order."""
    return [line["message"] for line in lines if line.get("job_id") == job_id]


def assert_acknowledged_jobs_complete_once(
    servers: Iterable[Gunicorn], load: Submitters, *, at_least: int = 20
) -> None:
    """Every job a client got a 202 or 200 for ends complete, one job per Idempotency-Key, and
    one "job complete" line per job across ``servers`` (the instances that ran jobs)."""
    servers = list(servers)
    assert not load.errors, load.errors[:5]
    ids = list(load.acknowledged.values())
    assert len(ids) >= at_least, len(ids)
    assert len(set(ids)) == len(ids)  # one job per logical submission
    for job_id in ids:
        record = servers[0].wait_for_job(job_id, {"complete", "failed"}, timeout=120)
        assert record["state"] == "complete", record
    counts = count_by_job((line for s in servers for line in s.json_lines()), COMPLETE)
    assert all(counts.get(job_id) == 1 for job_id in ids), {
        job_id: counts.get(job_id) for job_id in ids if counts.get(job_id) != 1
    }


def all_job_ids(client: StoreClient) -> list[str]:
    """The ID of every job the store lists, in every shard."""
    pipe = client.pipeline(transaction=False)
    for shard in SHARDS:
        pipe.zrange(shard_key(shard, index_name(None)), 0, -1)
    return [job_id for ids in cast("list[list[str]]", pipe.execute()) for job_id in ids]


@dataclass
class StateWatch:
    """Polls the state of every job Redis holds; records any complete job seen otherwise.

    Invariant it checks: a complete job is never seen in another state afterwards.
    """

    redis_client: StoreClient
    interval: float = WATCH_INTERVAL_SECONDS
    regressions: list[tuple[str, str]] = field(default_factory=list)
    complete: set[str] = field(default_factory=set)
    polls: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Poll until stopped; a poll that Redis does not answer is skipped."""
        while not self.stop.is_set():
            with contextlib.suppress(redis.RedisError):
                self._poll()
            self.stop.wait(self.interval)

    def _poll(self) -> None:
        ids = all_job_ids(self.redis_client)
        pipe = self.redis_client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(job_key(job_id), "state")
        for job_id, state in zip(ids, pipe.execute(), strict=True):
            if state == "complete":
                self.complete.add(job_id)
            elif job_id in self.complete and state is not None:
                self.regressions.append((job_id, state))
        self.polls += 1

    @contextlib.contextmanager
    def running(self) -> Iterator[StateWatch]:
        """Watch in a background thread for the duration of a block."""
        thread = threading.Thread(target=self.run, name="state-watch", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            thread.join(10)
