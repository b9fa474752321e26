"""The dashboard's cost: a large job's page, and the overview's Redis work, against baselines.

    python -m bench.bench_dashboard [--renders N] [--calls N] [--json PATH]

A private Redis database, the shared Neo4j and the football demo slate (494 players). One job
of 1,000,000 scenarios is run to complete in this process (simulation_job, as a job thread
runs it), then:

- job page: server time of ``GET /dashboard/jobs/<id>`` (the record and result read from
  Redis, the table of 494 players with a box each rendered by Jinja2), measured around the WSGI
  app with Flask's test client (no network), median of RENDERS, against ``GET /jobs/<id>`` of
  the same job in the same process (the JSON API). Absolute target: under 50 ms.
- overview: Redis's own CPU time (``INFO cpu``, user + sys) per overview (the store's
  overview script) over CALLS calls, with 4 jobs running, against the readiness check's Redis
  work (the readiness checker's own Redis check: PING and the two counts, pipelined, as /ready
  sends them). Target: no more.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis
from flask.testing import FlaskClient

from app import create_app
from app.config import Settings
from app.jobs.ids import new_job_id
from app.jobs.simulation_job import simulation_job
from app.services import EXTENSION_KEY, Services
from bench.run import Figure, bench_database, part_main
from tests.support.results import claim_any, run_next_job

REDIS_DB = 10
SLATE_ID = "nfl-2026-11-29-main"
SCENARIOS = 1_000_000
RENDERS = 30
CALLS = 3000
RUNNING_JOBS = 4
TARGET_RENDER_MS = 50.0


def _server_ms(client: FlaskClient, path: str, times: int) -> float:
    """Median milliseconds of ``times`` GETs of ``path`` through the WSGI app."""
    client.get(path)  # templates compiled, connections open
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples)


def _complete_job(svc: Services) -> tuple[str, int]:
    """Run one 1M-scenario football job to complete; its id and result size in bytes."""
    params = {"slate_id": SLATE_ID, "scenario_count": SCENARIOS, "seed": 1}
    svc.store.submit(new_job_id(), params, request_id=None, user_id="bench")
    job_id = run_next_job(svc.store, simulation_job(svc.slates), worker="bench:1")
    job = svc.store.get(job_id)
    result = job.result_json() if job is not None else None
    assert result is not None, "the job did not complete"
    return job_id, len(result)


def _redis_cpu_us(client: redis.Redis, call: Callable[[], object], calls: int) -> float:
    """Redis's CPU microseconds (user + sys) per ``call``, over ``calls`` calls."""

    def cpu() -> float:
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    call()
    before = cpu()
    for _ in range(calls):
        call()
    return (cpu() - before) / calls * 1e6


def measure(env: dict[str, str], client: redis.Redis, renders: int, calls: int) -> dict[str, Any]:
    """The raw figures: render times, and Redis CPU per overview and per readiness check."""
    settings = Settings.from_env({**env, "JOB_CONCURRENCY": "0", "LOG_LEVEL": "WARNING"})
    app = create_app(settings)
    svc: Services = app.extensions[EXTENSION_KEY]
    try:
        job_id, result_bytes = _complete_job(svc)
        http = app.test_client()
        raw: dict[str, Any] = {
            "result_bytes": result_bytes,
            "job_page_ms": _server_ms(http, f"/dashboard/jobs/{job_id}", renders),
            "job_json_ms": _server_ms(http, f"/jobs/{job_id}", renders),
            "overview_page_ms": _server_ms(http, "/dashboard", renders),
            "ready_ms": _server_ms(http, "/ready", renders),
        }
        for n in range(RUNNING_JOBS):
            svc.store.submit(
                new_job_id(),
                {"slate_id": SLATE_ID, "scenario_count": 1, "seed": n},
                request_id=None,
                user_id="bench",
            )
            claim_any(svc.store, worker=f"bench:{n % 2}", instance="bench:0", lease_seconds=600)

        def readiness() -> None:  # what /ready asks of Redis, through its own checker
            svc.readiness.check(("redis",))

        # Alternated, so a burst of load elsewhere on the host falls on both sides.
        overview_us, ready_us = [], []
        for _ in range(3):
            overview_us.append(_redis_cpu_us(client, svc.store.overview, calls))
            ready_us.append(_redis_cpu_us(client, readiness, calls))
        raw["overview_redis_cpu_us"] = statistics.median(overview_us)
        raw["ready_redis_cpu_us"] = statistics.median(ready_us)
        return raw
    finally:
        svc.close()


def run(args: argparse.Namespace, notes: list[str], raw: dict[str, Any]) -> list[Figure]:
    """Measure on a private Redis database; the figures."""
    with bench_database("dashboard", REDIS_DB) as (env, client):
        raw.update(measure(env, client, args.renders, args.calls))
    notes.append(
        f"job page: {SCENARIOS:,}-scenario job of {SLATE_ID}, result {raw['result_bytes']:,} "
        f"bytes; medians of {args.renders} renders in-process (Flask test client)"
    )
    notes.append(
        f"overview Redis CPU: median of 3 runs of {args.calls} calls, {RUNNING_JOBS} jobs running"
    )
    return [
        Figure(
            "job page, 494 players",
            raw["job_page_ms"],
            "ms",
            raw["job_json_ms"],
            "GET /jobs/<id> JSON",
            ("<=", TARGET_RENDER_MS),
            target_on_value=True,
        ),
        Figure("overview page", raw["overview_page_ms"], "ms", raw["ready_ms"], "GET /ready"),
        Figure(
            "overview Redis CPU",
            raw["overview_redis_cpu_us"],
            "us",
            raw["ready_redis_cpu_us"],
            "readiness check",
            ("<=", 1.0),
        ),
    ]


def main() -> None:
    """Measure and report; never fail."""
    part_main("dashboard", __doc__, run, renders=RENDERS, calls=CALLS)


if __name__ == "__main__":
    main()
