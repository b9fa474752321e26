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
from typing import Any, cast

import redis

from app.jobs.keys import ALL_INDEX_KEY, job_key

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


@dataclass
class StateWatch:
    """Polls the state of every job Redis holds; records any complete job seen otherwise.

    Invariant it checks: a complete job is never seen in another state afterwards.
    """

    redis_client: redis.Redis
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
        ids = cast("list[str]", self.redis_client.zrange(ALL_INDEX_KEY, 0, -1))
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
