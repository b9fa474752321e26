"""A full instance at production defaults: every core busy with a job, and probes still fast.

    python -m bench.bench_instance [--scenarios N] [--json PATH]

One gunicorn with the production gunicorn.conf.py and every setting at its default (workers
and job threads sized from the machine's usable CPUs), on a private Redis database and the
shared Neo4j with the football demo slate (`flask --app app.wsgi seed --if-empty` loads it).

1. Idle: a prober alone, one connection, /health and /ready alternately, PROBES_PER_SECOND.
2. One job of ``--scenarios`` scenarios alone, SINGLE_RUNS times one after the other: the
   median of their player-scenario draws per second over each job's span from start to
   finish (the records' timestamps, as for the aggregate, so both count the same per-job work:
   the slate's read, the result's storage) is the single-job rate. The simulation's own
   ``duration_ms`` is noted beside it.
3. Usable CPUs x 2 jobs submitted at once while the prober runs: the aggregate rate is all
   their draws over the span from the first job's start to the last one's finish (the records'
   timestamps, on Redis's clock). Figures: the aggregate rate over usable CPUs x the single-job
   rate, and the prober's p50/p99 under that load next to its idle figures.
4. SLOW_CLIENTS connections sending their request headers a few bytes at a time (reopened as
   soon as the instance closes them, tests/support/slow_clients.py) for SLOW_CLIENT_SECONDS,
   with the prober: its p99 and maximum next to its idle figures, and its failures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from app.sizing import usable_cpus
from bench.run import Figure, bench_database, part_main
from tests.support.gunicorn import Gunicorn
from tests.support.http import request
from tests.support.slow_clients import SlowClients

# Own database of the shared Redis, flushed before and after.
REDIS_DB = 11
SLATE_ID = "nfl-2026-11-29-main"
PLAYERS = 494
# About 3 s of simulation alone on the reference machine: long enough to measure a rate.
SCENARIOS = 300_000
PROBES_PER_SECOND = 5
# Single-job runs whose median is the baseline: one alone moved by 30 % between runs.
SINGLE_RUNS = 3
IDLE_PROBE_SECONDS = 10
JOB_TIMEOUT_SECONDS = 600
TARGET_AGGREGATE_RATIO = 0.9
TARGET_HEALTH_P99_MS = 50.0
TARGET_READY_P99_MS = 100.0
TARGET_MAX_MS = 1000.0
# Slow-header connections straight to the instance, and how long the prober runs beside them.
SLOW_CLIENTS = 200
SLOW_CLIENT_SECONDS = 30


@dataclass
class Prober:
    """One connection's worth of probes, as a kubelet or a balancer sends them."""

    port: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"/health": [], "/ready": []})
    failures: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Probe until stopped, alternating the paths, PROBES_PER_SECOND in all."""
        paths = ["/health", "/ready"]
        sent = 0
        while not self.stop.is_set():
            path = paths[sent % 2]
            started = time.perf_counter()
            try:
                status = request(self.port, "GET", path, timeout=5).status
            except OSError:
                status = 0
            self.latencies[path].append((time.perf_counter() - started) * 1000)
            self.failures += status != 200
            sent += 1
            self.stop.wait(max(0.0, 1 / PROBES_PER_SECOND - (time.perf_counter() - started)))

    def summary(self) -> dict[str, dict[str, float]]:
        """p50, p99 and max of each path, milliseconds."""
        return {
            path: {
                "p50_ms": statistics.median(values),
                "p99_ms": statistics.quantiles(values, n=100, method="inclusive")[98],
                "max_ms": max(values),
                "count": float(len(values)),
            }
            for path, values in self.latencies.items()
            if len(values) >= 2
        }


def probing(port: int, seconds: float) -> dict[str, dict[str, float]]:
    """The prober's figures over ``seconds`` of probing, with its failures under "failures"."""
    prober = Prober(port)
    thread = threading.Thread(target=prober.run)
    thread.start()
    time.sleep(seconds)
    prober.stop.set()
    thread.join()
    return {**prober.summary(), "failures": {"count": float(prober.failures)}}


def _span(started_at: str, finished_at: str) -> float:
    """Seconds between two of a record's timestamps."""
    return _moment(finished_at) - _moment(started_at)


def _moment(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run_jobs(server: Gunicorn, count: int, scenarios: int) -> list[dict[str, Any]]:
    """Submit ``count`` jobs at once and wait for all of them; their records."""
    body = {"slate_id": SLATE_ID, "scenario_count": scenarios}
    ids = []
    for seed in range(count):
        response = server.request("POST", "/jobs", {**body, "seed": seed})
        if response.status != 202:
            raise RuntimeError(f"POST /jobs answered {response.status}: {response.body}")
        ids.append(response.body["id"])
    records = [server.wait_for_job(i, {"complete", "failed"}, JOB_TIMEOUT_SECONDS) for i in ids]
    failed = [r["id"] for r in records if r["state"] != "complete"]
    if failed:
        raise RuntimeError(f"jobs failed: {failed}")
    return records


def measure(args: argparse.Namespace, notes: list[str], raw: dict[str, Any]) -> list[Figure]:
    """Idle probes, one job alone, then the full instance with probes."""
    cpus = usable_cpus()
    with (
        bench_database("instance", REDIS_DB) as (env, _client),
        tempfile.TemporaryDirectory(prefix="slatesim-bench-instance-") as tmp,
    ):
        server = Gunicorn(env, Path(tmp), keep_output=False).start()
        try:
            server.wait_until_serving("/ready")
            if server.request("GET", f"/slates/{SLATE_ID}").status != 200:
                raise RuntimeError(f"no slate {SLATE_ID}: run `flask --app app.wsgi seed`")
            raw["idle_probes"] = probing(server.port, IDLE_PROBE_SECONDS)
            alone = [run_jobs(server, 1, args.scenarios)[0] for _ in range(SINGLE_RUNS)]
            raw["alone_ms"] = [r["metadata"]["duration_ms"] for r in alone]
            raw["alone_span_s"] = [_span(r["started_at"], r["finished_at"]) for r in alone]
            prober = Prober(server.port)
            thread = threading.Thread(target=prober.run)
            thread.start()
            try:
                loaded = run_jobs(server, cpus * 2, args.scenarios)
            finally:
                prober.stop.set()
                thread.join()
            raw["loaded_probes"] = prober.summary()
            raw["probe_failures"] = prober.failures
            raw["loaded_ms"] = [r["metadata"]["duration_ms"] for r in loaded]
            first = min(_moment(r["started_at"]) for r in loaded)
            raw["span_s"] = max(_moment(r["finished_at"]) for r in loaded) - first
            # When each job ran, from the first start: shows a wave that started late.
            raw["loaded_timeline_s"] = sorted(
                (
                    round(_moment(r["started_at"]) - first, 3),
                    round(_moment(r["finished_at"]) - first, 3),
                )
                for r in loaded
            )
            slow = SlowClients(server.port, SLOW_CLIENTS).start()
            try:
                raw["slow_client_probes"] = probing(server.port, SLOW_CLIENT_SECONDS)
            finally:
                slow.stop()
            raw["slow_client_answers"] = dict(slow.statuses)
        finally:
            server.stop()
    draws = args.scenarios * PLAYERS
    alone_s = statistics.median(raw["alone_span_s"])
    alone_simulation_s = statistics.median(raw["alone_ms"]) / 1000
    single_rate = draws / alone_s
    aggregate_rate = draws * cpus * 2 / raw["span_s"]
    notes.append(
        f"{cpus} usable CPU(s), {cpus * 2} jobs of {args.scenarios:,} scenarios of {SLATE_ID}; "
        f"alone {alone_s:.2f} s start to finish, of which {alone_simulation_s:.2f} s simulating "
        f"(medians of {SINGLE_RUNS}); each at full load simulating "
        f"{statistics.median(raw['loaded_ms']) / 1000:.2f} s (median), span {raw['span_s']:.2f} s; "
        f"against the simulation alone the aggregate ratio is "
        f"{aggregate_rate / (cpus * draws / alone_simulation_s):.2f}; jobs ran (start, finish) "
        f"{raw['loaded_timeline_s']} s"
    )
    if raw["probe_failures"]:
        notes.append(f"{raw['probe_failures']} probe(s) did not answer 200 under load")
    slow_failures = int(raw["slow_client_probes"]["failures"]["count"])
    notes.append(
        f"{SLOW_CLIENTS} slow-header connections for {SLOW_CLIENT_SECONDS} s: {slow_failures} "
        f"probe(s) did not answer 200; their connections were answered {raw['slow_client_answers']}"
    )
    figures = [
        Figure(
            "aggregate draws/s",
            aggregate_rate,
            "draws/s",
            cpus * single_rate,
            "CPUs x one job alone",
            (">=", TARGET_AGGREGATE_RATIO),
        )
    ]
    targets = {"/health": TARGET_HEALTH_P99_MS, "/ready": TARGET_READY_P99_MS}
    for path, target in targets.items():
        idle, loaded = raw["idle_probes"][path], raw["loaded_probes"][path]
        for stat in ("p50_ms", "p99_ms", "max_ms"):
            bound = {"p99_ms": target, "max_ms": TARGET_MAX_MS}.get(stat)
            figures.append(
                Figure(
                    f"{path} {stat[:-3]} under load",
                    loaded[stat],
                    "ms",
                    idle[stat],
                    "idle",
                    ("<=", bound) if bound else None,
                    target_on_value=True,
                )
            )
        slow = raw["slow_client_probes"][path]
        for stat in ("p99_ms", "max_ms"):
            figures.append(
                Figure(
                    f"{path} {stat[:-3]} with {SLOW_CLIENTS} slow clients",
                    slow[stat],
                    "ms",
                    raw["idle_probes"][path][stat],
                    "no slow client",
                    ("<=", TARGET_MAX_MS),
                    target_on_value=True,
                )
            )
    return figures


def main() -> None:
    """Measure and report; never fail."""
    part_main("instance", __doc__, measure, scenarios=SCENARIOS)


if __name__ == "__main__":
    main()
