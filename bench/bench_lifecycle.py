"""Shutdown and crash recovery of gunicorn instances, against bare gunicorn and the lease bound.

    python -m bench.bench_lifecycle [--trials N] [--json PATH]

Production configuration (gunicorn.conf.py, JOB_CONCURRENCY=1, the default JOB_LEASE_SECONDS
and JOB_SWEEP_SECONDS), a private Redis database, the shared Neo4j and the football demo slate
(`flask --app app.wsgi seed --if-empty` loads it). Medians of TRIALS:

- idle exit: SIGTERM to the master's exit of an idle instance, against the bare app with the
  same gunicorn settings (bench/bare_gunicorn_conf.py): what draining and hand-back add.
- job end to exit: SIGTERM while a job of a few seconds runs; from the job's ``finished_at``
  (Redis's clock, the same host's) to the master's exit, against the idle exit: once its last
  job is done an instance should leave as fast as an idle one.
- crash recovery: SIGKILL to the whole process group of the instance running a job, while an
  intake-only second instance runs (its sweeper recovers; it never claims); seconds until Redis
  shows the job ``pending`` again, against JOB_LEASE_SECONDS + JOB_SWEEP_SECONDS, the
  documented worst case.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from app.config import Settings
from app.jobs.keys import job_key, shard_key, shard_of_job
from bench.run import BARE_CONFIG, Figure, bench_database, empty_redis_db, part_main
from tests.support.gunicorn import SERVICE_CONFIG, Gunicorn
from tests.support.waiting import wait_until

# Own database of the shared Redis, flushed before and after; far from the low numbers that
# the tests (1), `make run` (0) and ad-hoc work reach for.
REDIS_DB = 14
TRIALS = 3
SLATE_ID = "nfl-2026-11-29-main"
# About 2-3 s of simulation on the reference machine: long enough to signal it mid-run.
JOB_SCENARIOS = 150_000
# After /health answers: the second worker boots and the job threads settle into idle polling.
SETTLE_SECONDS = 1.0
# How often Redis is polled for a job's state; the resolution of the recovery figure.
POLL_SECONDS = 0.02
# Bounds that mean something is broken rather than slow.
EXIT_TIMEOUT_SECONDS = 120.0
STATE_TIMEOUT_SECONDS = 60.0
TARGET_RECOVERY_RATIO = 1.0


def start(config: str, env: dict[str, str], workdir: Path) -> Gunicorn:
    """A gunicorn instance serving, its output kept in ``workdir`` for a failure's message."""
    server = Gunicorn(env, workdir, config=config).start()
    time.sleep(SETTLE_SECONDS)
    return server


def wait_for_state(client: redis.Redis, job_id: str, state: str, timeout: float) -> float:
    """Poll Redis until the job is in ``state``; return the wall-clock time it was seen."""

    def seen_at() -> float | None:
        return time.time() if client.hget(job_key(job_id), "state") == state else None

    return wait_until(seen_at, timeout, what=f"job {job_id} {state}", interval=POLL_SECONDS)


def submit(server: Gunicorn) -> str:
    """Submit the football job through ``server``; its ID."""
    if server.request("GET", f"/slates/{SLATE_ID}").status != 200:
        raise RuntimeError(f"no slate {SLATE_ID}: run `flask --app app.wsgi seed --if-empty`")
    body = {"slate_id": SLATE_ID, "scenario_count": JOB_SCENARIOS, "seed": 7}
    response = server.request("POST", "/jobs", body)
    if response.status != 202:
        raise RuntimeError(f"POST /jobs answered {response.status}: {response.body}")
    return str(response.body["id"])


def idle_exit(config: str, env: dict[str, str], workdir: Path) -> float:
    """Seconds from SIGTERM to the master's exit, nothing running."""
    server = start(config, env, workdir)
    try:
        signalled = time.monotonic()
        server.terminate()
        server.wait_exit(EXIT_TIMEOUT_SECONDS)
        return time.monotonic() - signalled
    finally:
        server.stop()


def drain_exit(env: dict[str, str], workdir: Path, client: redis.Redis) -> dict[str, Any]:
    """SIGTERM during a job: seconds from the job's end to the exit, and what became of it."""
    server = start(SERVICE_CONFIG, env, workdir)
    try:
        job_id = submit(server)
        wait_for_state(client, job_id, "running", STATE_TIMEOUT_SECONDS)
        signalled = time.time()
        server.terminate()
        server.wait_exit(EXIT_TIMEOUT_SECONDS)
        exited = time.time()
    finally:
        server.stop()
    record = client.hgetall(job_key(job_id))
    finished = int(record["finished_at"]) / 1000 if record.get("finished_at") else None
    return {
        "state": record.get("state"),
        "signal_to_exit_s": exited - signalled,
        "job_end_to_exit_s": exited - finished if finished else None,
    }


def crash_recovery(env: dict[str, str], workdir: Path, client: redis.Redis) -> dict[str, Any]:
    """SIGKILL the instance running a job; seconds until Redis shows the job pending again."""
    server = start(SERVICE_CONFIG, env, workdir)
    try:
        job_id = submit(server)
        wait_for_state(client, job_id, "running", STATE_TIMEOUT_SECONDS)
        lease_score = client.zscore(shard_key(shard_of_job(job_id), "leases"), job_id)
        assert lease_score is not None, f"job {job_id} is running without a lease"
        lease_deadline = lease_score / 1000
        killed = time.time()
        server.kill_group()
    finally:
        server.stop()
    bound = Settings().job_lease_seconds + Settings().job_sweep_seconds
    recovered = wait_for_state(client, job_id, "pending", bound + STATE_TIMEOUT_SECONDS)
    return {
        "kill_to_pending_s": recovered - killed,
        "lease_left_at_kill_s": lease_deadline - killed,
        "lapse_to_pending_s": recovered - lease_deadline,
        "lost_attempts": int(client.hget(job_key(job_id), "lost_attempts") or 0),
    }


def measure(env: dict[str, str], client: redis.Redis, trials: int) -> dict[str, Any]:
    """Every trial, interleaved where two things are compared; the raw results."""
    with_jobs = {**env, "JOB_CONCURRENCY": "1"}
    raw: dict[str, Any] = {"idle_exit_s": {"service": [], "bare": []}, "drain": [], "crash": []}
    with tempfile.TemporaryDirectory(prefix="slatesim-bench-lifecycle-") as tmp:
        workdir = Path(tmp)
        for _ in range(trials):
            raw["idle_exit_s"]["service"].append(idle_exit(SERVICE_CONFIG, with_jobs, workdir))
            raw["idle_exit_s"]["bare"].append(idle_exit(BARE_CONFIG, env, workdir))
        for _ in range(trials):
            raw["drain"].append(drain_exit(with_jobs, workdir, client))
            empty_redis_db(client, "lifecycle")
        sweeper = start(SERVICE_CONFIG, {**env, "JOB_CONCURRENCY": "0"}, workdir)
        try:
            for _ in range(trials):
                raw["crash"].append(crash_recovery(with_jobs, workdir, client))
                empty_redis_db(client, "lifecycle")
        finally:
            sweeper.stop()
    return raw


def figures_from(raw: dict[str, Any], notes: list[str]) -> list[Figure]:
    """Medians against their baselines."""
    median = statistics.median
    idle_service = median(raw["idle_exit_s"]["service"])
    idle_bare = median(raw["idle_exit_s"]["bare"])
    figures = [Figure("idle SIGTERM to exit", idle_service, "s", idle_bare, "bare gunicorn")]
    drained = [d for d in raw["drain"] if d["state"] == "complete"]
    if len(drained) < len(raw["drain"]):
        notes.append(f"{len(raw['drain']) - len(drained)} drained job(s) did not complete")
    if drained:
        figures.append(
            Figure(
                "job end to exit",
                median(d["job_end_to_exit_s"] for d in drained),
                "s",
                idle_service,
                "idle exit",
            )
        )
        signal_to_exit = median(d["signal_to_exit_s"] for d in drained)
        notes.append(f"drain: SIGTERM to exit {signal_to_exit:.2f} s with a job running")
    settings = Settings()
    bound = settings.job_lease_seconds + settings.job_sweep_seconds
    figures.append(
        Figure(
            "crash to pending",
            median(c["kill_to_pending_s"] for c in raw["crash"]),
            "s",
            bound,
            "lease + sweep",
            ("<=", TARGET_RECOVERY_RATIO),
        )
    )
    notes.append(
        f"crash: JOB_LEASE_SECONDS={settings.job_lease_seconds}, JOB_SWEEP_SECONDS="
        f"{settings.job_sweep_seconds:g}; lease left at the kill (median) "
        f"{median(c['lease_left_at_kill_s'] for c in raw['crash']):.2f} s, then pending "
        f"{median(c['lapse_to_pending_s'] for c in raw['crash']):.2f} s after the lease lapsed"
    )
    return figures


def run(args: argparse.Namespace, notes: list[str], raw: dict[str, Any]) -> list[Figure]:
    """Every trial on a private Redis database; the medians."""
    notes.append(f"medians of {args.trials} trials; production gunicorn.conf.py, JOB_CONCURRENCY=1")
    with bench_database("lifecycle", REDIS_DB) as (env, client):
        raw.update(measure(env, client, args.trials))
    return figures_from(raw, notes)


def main() -> None:
    """Run the trials and report; never fail."""
    part_main("lifecycle", __doc__, run, trials=TRIALS)


if __name__ == "__main__":
    main()
