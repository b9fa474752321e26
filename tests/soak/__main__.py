"""``make soak``: run the soak and print its report; exit 1 when an invariant broke.

    python -m tests.soak            # SOAK_SECONDS (600) of faults, SOAK_SEED (drawn) seeds them

SOAK_REDIS=cluster runs it on a Redis Cluster of its own (three primaries, three replicas) with
the cluster's faults (a primary or a replica SIGKILLed, slots moved) in place of the single
Redis's (replies held, an instance cut off, Redis restarted or SIGKILLed).

Everything it starts lives under .soak/<time>-<seed>/ (instances' logs, Redis's AOF, HAProxy's
output), kept for reading after the run.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Literal

from app.jobs.keys import job_key
from tests.soak.checker import Verdict, check
from tests.soak.nemesis import Nemesis
from tests.soak.stack import SoakStack
from tests.support.gunicorn import REPO_ROOT
from tests.support.invariants import StateWatch, StoreClient
from tests.support.load import Submitters
from tests.support.services import service_env
from tests.support.waiting import wait_until

DEFAULT_SECONDS = 600
RUNS_DIR = REPO_ROOT / ".soak"
# Steady submissions: quick jobs from two clients, and a job of about a second of CPU from a
# third, so that faults find jobs running.
QUICK_JOB = {"slate_id": "nba-2026-11-28-showdown-bos-nyk", "scenario_count": 2000}
LONG_JOB = {"slate_id": "nfl-2026-11-29-main", "scenario_count": 100_000}
# What a balancer or a restarting instance may answer is sent again under the same
# Idempotency-Key, twice a second for up to ten minutes.
RETRIED_STATUSES = frozenset({502, 503, 504})
RETRY_PAUSE_SECONDS = 0.5
MAX_ATTEMPTS = 1200
# Once the faults stop: how long every acknowledged job has to reach a final state.
SETTLE_SECONDS = 300.0
# The watcher reads every job's state this often (thousands of jobs by the end).
WATCH_INTERVAL_SECONDS = 1.0


def clients(port: int) -> list[Submitters]:
    """The soak's clients, through HAProxy."""
    return [
        Submitters(
            port=port,
            body=body,
            clients=count,
            pause=pause,
            retry_statuses=RETRIED_STATUSES,
            retry_pause=RETRY_PAUSE_SECONDS,
            max_attempts=MAX_ATTEMPTS,
            timeout=20.0,
            key_prefix="soak",
        )
        for body, count, pause in ((QUICK_JOB, 2, 0.25), (LONG_JOB, 1, 1.0))
    ]


def soak(
    directory: Path, seed: int, seconds: float, topology: Literal["single", "cluster"]
) -> tuple[Nemesis, Verdict, float]:
    """Start the stack, load it while the nemesis works, heal, settle, check; stop it all.

    Returns the nemesis (its faults), the verdict and how long the jobs took to settle.
    """
    stack = SoakStack(directory, service_env(redis_db=0), topology)
    try:
        stack.start()
        with contextlib.closing(stack.redis_client()) as client:
            nemesis = Nemesis(stack, random.Random(seed))
            watch = StateWatch(client, interval=WATCH_INTERVAL_SECONDS)
            load = clients(stack.port)
            with watch.running():
                with contextlib.ExitStack() as running:
                    for group in load:
                        running.enter_context(group)
                    started = time.monotonic()
                    nemesis.run(started, started + seconds, threading.Event())
                stack.heal()
                stack.wait_in_rotation(*stack.instances)
                settled = settle(client, load)
            verdict = check(client, load, watch, stack.log_files(), nemesis.killed_workers)
    finally:
        stack.stop()
    never = [fault.line() for fault in nemesis.faults if fault.recovered_after is None]
    verdict.violated("fault the service did not recover from", never)
    return nemesis, verdict, settled


def settle(client: StoreClient, load: list[Submitters]) -> float:
    """Wait until every acknowledged job is complete or failed; the seconds it took."""
    started = time.monotonic()
    ids = [job_id for group in load for job_id in group.acknowledged.values()]

    def final() -> bool:
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(job_key(job_id), "state")
        return all(state in ("complete", "failed") for state in pipe.execute())

    with contextlib.suppress(TimeoutError):  # what is still not final is reported by check
        wait_until(final, SETTLE_SECONDS, what="every acknowledged job final", interval=1.0)
    return time.monotonic() - started


def main() -> int:
    """Run the soak; print the report; 0 when every invariant held."""
    seconds = float(os.environ.get("SOAK_SECONDS") or DEFAULT_SECONDS)
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1, 2**31))
    topology: Literal["single", "cluster"] = (
        "cluster" if os.environ.get("SOAK_REDIS") == "cluster" else "single"
    )
    directory = RUNS_DIR / f"{time.strftime('%Y%m%d-%H%M%S')}-{seed}"
    print(
        f"soak: seed {seed}, {seconds:g} s of faults, Redis {topology}, files in {directory}",
        flush=True,
    )
    began = time.monotonic()
    nemesis, verdict, settled = soak(directory, seed, seconds, topology)
    kinds = Counter(fault.kind for fault in nemesis.faults)
    print()
    print(f"soak: seed {seed}, {seconds:g} s of faults, {time.monotonic() - began:.0f} s in all")
    print(f"faults: {len(nemesis.faults)} {dict(sorted(kinds.items()))}")
    print(f"settled: every acknowledged job final {settled:.1f} s after the faults stopped")
    for name, value in verdict.counts.items():
        print(f"{name}: {value}")
    if verdict.violations:
        print("FAILED:")
        for violation in verdict.violations:
            print(f"  {violation}")
        return 1
    print(
        "PASSED: every acknowledged job complete exactly once, none run after it completed, "
        "no answer outside the contract, no unexpected log line"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
