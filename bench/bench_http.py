"""HTTP throughput and latency of the service against a bare Flask route, measured side by side.

    python -m bench.bench_http [--duration S] [--json PATH]

Two gunicorn instances run at once with the production settings (gunicorn.conf.py: workers,
gthread threads, keep-alive, JSON access and app logs at INFO to a file, stdout to /dev/null):
the service, intake-only (JOB_CONCURRENCY=0, so only the HTTP path is measured), on a private
Redis database and the shared Neo4j; and bench/bare_app.py through bench/bare_gunicorn_conf.py.
For each endpoint wrk sends the same request (method, path, body) to both, each after a
warm-up, in alternating slices (bare, service, service, bare). A slice starts once Redis is not
persisting, and runs again if Redis forked meanwhile (a snapshot takes one of two cores, from
whichever side runs). The figures are the service's over the bare app's: requests/s, p50 and
p99 (the mean of the slices' percentiles), and the CPU time of the gunicorn processes per
request, which other processes' load on a shared machine moves far less than requests/s.
GET /ready is measured twice: under the same load as the others, and as a probe sees it (one
connection), where its p99 target applies. POST /jobs runs last: its writes trigger snapshots.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import redis

from app.config import Settings
from app.jobs.ids import new_job_id
from app.jobs.store import JobStore
from bench.run import BARE_CONFIG, PEER_CONFIG, Figure, bench_database, part_main
from tests.support.gunicorn import Gunicorn
from tests.support.results import run_next_job, stored_result

# Own database of the shared Redis, flushed before and after; far from the low numbers that
# the tests (1), `make run` (0) and ad-hoc work reach for.
REDIS_DB = 12
# wrk: one thread per core of the 2-core reference machine, 8 keep-alive connections per
# gunicorn worker (as many as its gthread threads), a fixed measured window after a warm-up.
WRK_THREADS = 2
WRK_CONNECTIONS = 16
DURATION_SECONDS = 10
WARMUP_SECONDS = 2
# Each side's measured time is cut in this many slices, run in ABBA order.
SLICES = 2
# A load balancer or kubelet probes one request at a time.
PROBE_CONNECTIONS = 1
PROBE_DURATION_SECONDS = 6
# Longest wait for a Redis snapshot or AOF rewrite to end before a run starts anyway.
QUIET_REDIS_TIMEOUT_SECONDS = 60
# A slice during which Redis forked (snapshot, AOF rewrite: a core of two) is run again, at
# most this many times in all.
SLICE_ATTEMPTS = 3
# Seconds wrk may run over its duration before it counts as stuck.
WRK_GRACE_SECONDS = 30
SLATE_ID = "nfl-2026-11-29-main"
SUBMISSION: dict[str, Any] = {"slate_id": SLATE_ID, "scenario_count": 10_000, "seed": 7}
# The stored result of a 10k-scenario run of the football slate is about 90 KB.
COMPLETE_JOB_SCENARIOS = 10_000
# Targets from the issue: service requests/s over the bare route's, and the probe's p99.
TARGET_SUBMIT = 0.7
# POST /jobs over the Flask + python-rq route a team would write instead (bench/peer_rq_app.py).
TARGET_SUBMIT_VS_RQ = 1.5
PEER_PAIR, PEER_NAME = "POST /jobs vs rq", "flask+rq"
TARGET_FETCH = 0.8
# A complete job sent with its stored deflate stream in a gzip member, against the bare route.
GZIP_FETCH, TARGET_GZIP_FETCH = "GET /jobs/<id> complete gzip", 0.9
TARGET_HEALTH = 0.9
TARGET_READY_P99_MS = 20.0

# wrk calls done() once at the end; one parseable line carries the figures.
_LUA_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "p50_us": %.0f, "p99_us": %.0f, '
    .. '"socket_errors": %d, "http_errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass(frozen=True)
class Load:
    """One wrk run's result, or several runs' together."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    seconds: float
    socket_errors: int
    http_errors: int
    cpu_seconds: float = 0.0  # used by the server's master and workers meanwhile

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU per request: unlike requests/s, barely moved by other processes' load."""
        return self.cpu_seconds / self.requests * 1e6

    @classmethod
    def combined(cls, loads: list[Load]) -> Load:
        """Runs taken together: their requests over their time; the mean of their percentiles."""
        requests = sum(load.requests for load in loads)
        seconds = sum(load.seconds for load in loads)
        return cls(
            requests_per_s=requests / seconds,
            p50_ms=statistics.mean(load.p50_ms for load in loads),
            p99_ms=statistics.mean(load.p99_ms for load in loads),
            requests=requests,
            seconds=seconds,
            socket_errors=sum(load.socket_errors for load in loads),
            http_errors=sum(load.http_errors for load in loads),
            cpu_seconds=sum(load.cpu_seconds for load in loads),
        )


@dataclass(frozen=True)
class Request:
    """What wrk sends: a method, a path and, for POST, a JSON body."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def script(self) -> str:
        """The wrk Lua script sending this request and reporting in one line."""
        lines = [
            f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in self.headers
        ]
        if self.body is not None:
            lua_string = json.dumps(json.dumps(self.body, separators=(",", ":")))
            lines += [
                f'wrk.method = "{self.method}"',
                f"wrk.body = {lua_string}",
                'wrk.headers["Content-Type"] = "application/json"',
            ]
        return "\n".join(lines) + _LUA_DONE


def run_wrk(
    port: int,
    request: Request,
    workdir: Path,
    *,
    duration: float,
    connections: int = WRK_CONNECTIONS,
) -> Load:
    """One wrk run against ``port``; raises when wrk fails or reports no result line."""
    script = workdir / f"wrk-{request.method.lower()}.lua"
    script.write_text(request.script())
    command = [
        "wrk",
        f"-t{min(WRK_THREADS, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",  # wrk takes whole seconds
        "-s",
        str(script),
        f"http://127.0.0.1:{port}{request.path}",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + WRK_GRACE_SECONDS, check=True
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result: {done.stdout[-500:]} {done.stderr[-500:]}")
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    seconds = raw["duration_us"] / 1e6
    return Load(
        requests_per_s=raw["requests"] / seconds,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        requests=raw["requests"],
        seconds=seconds,
        socket_errors=raw["socket_errors"],
        http_errors=raw["http_errors"],
    )


def wait_for_quiet_redis(client: redis.Redis) -> None:
    """Wait while Redis snapshots or rewrites its AOF: a fork that takes a core of two."""
    deadline = time.monotonic() + QUIET_REDIS_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        persistence = client.info("persistence")
        if not (persistence["rdb_bgsave_in_progress"] or persistence["aof_rewrite_in_progress"]):
            return
        time.sleep(0.2)


def group_cpu_seconds(group: int) -> float:
    """CPU seconds (user + system) used so far by the processes of process group ``group``.

    A gunicorn started in its own session is its master's group: master and workers.
    """
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the command name in parentheses: state, ppid, pgrp, ... utime (14), stime (15).
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class SideBySide:
    """The service and the bare app, measured in ABBA order so drift weighs on both alike."""

    service: Gunicorn
    bare: Gunicorn
    peer: Gunicorn
    workdir: Path
    redis_client: redis.Redis
    duration: float
    warmup: float
    disturbed_slices: int = 0

    def _warm(self, server: Gunicorn, request: Request, connections: int) -> None:
        if self.warmup:
            wait_for_quiet_redis(self.redis_client)
            run_wrk(
                server.port, request, self.workdir, duration=self.warmup, connections=connections
            )

    def _slice(self, server: Gunicorn, request: Request, seconds: float, connections: int) -> Load:
        """One measured run, again when Redis forked meanwhile (a snapshot took a core)."""
        for _ in range(SLICE_ATTEMPTS):
            wait_for_quiet_redis(self.redis_client)
            forks = self.redis_client.info("stats")["total_forks"]
            cpu = group_cpu_seconds(server.pid)
            load = run_wrk(
                server.port, request, self.workdir, duration=seconds, connections=connections
            )
            load = replace(load, cpu_seconds=group_cpu_seconds(server.pid) - cpu)
            if self.redis_client.info("stats")["total_forks"] == forks:
                break
            self.disturbed_slices += 1
        return load

    def pair(
        self,
        request: Request,
        connections: int = WRK_CONNECTIONS,
        *,
        probe: bool = False,
        against: Gunicorn | None = None,
    ) -> tuple[Load, Load]:
        """``request`` against the service and a baseline (the bare app by default).

        After a warm-up of each, the measured time is cut in slices run baseline, service,
        service, baseline, ... A probe run is shorter and needs no warm-up (both are warm).
        """
        baseline = against or self.bare
        duration = PROBE_DURATION_SECONDS if probe else self.duration
        if not probe:
            for server in (baseline, self.service):
                self._warm(server, request, connections)
        slices: dict[str, list[Load]] = {"service": [], "bare": []}
        order = [("bare", baseline), ("service", self.service)]
        for number in range(SLICES):
            for name, server in order if number % 2 == 0 else reversed(order):
                slices[name].append(self._slice(server, request, duration / SLICES, connections))
        return Load.combined(slices["service"]), Load.combined(slices["bare"])

    def service_only(self, request: Request) -> Load:
        """``request`` against the service alone, warmed up, for as long as a pair's side."""
        self._warm(self.service, request, WRK_CONNECTIONS)
        slices = [
            self._slice(self.service, request, self.duration / SLICES, WRK_CONNECTIONS)
            for _ in range(SLICES)
        ]
        return Load.combined(slices)


def complete_job(store: JobStore) -> str:
    """A complete job with a real result, written through the store as a worker would.

    The queue must be empty: the claim takes the oldest pending job.
    """
    params = {**SUBMISSION, "scenario_count": COMPLETE_JOB_SCENARIOS}
    store.submit(new_job_id(), params, request_id=new_job_id(), user_id=None)
    return run_next_job(
        store,
        lambda job: json.loads(stored_result(SLATE_ID, job["scenario_count"], job["seed"])),
        worker="bench:1",
    )


def wire_bytes(service: Gunicorn, job_id: str) -> str:
    """The complete job's response body, plain and with gzip: bytes on the wire."""
    plain = service.request("GET", f"/jobs/{job_id}")
    zipped = service.request("GET", f"/jobs/{job_id}", headers={"Accept-Encoding": "gzip"})
    plain_bytes = int(plain.headers["content-length"])
    if zipped.headers.get("content-encoding") != "gzip":
        return "GET /jobs/<id> complete: no gzip answer to Accept-Encoding: gzip"
    return (
        f"GET /jobs/<id> complete on the wire: {len(zipped.body):,} bytes with gzip, "
        f"{plain_bytes:,} plain ({plain_bytes / len(zipped.body):.1f}x)"
    )


def figures_for(
    name: str,
    service: Load,
    baseline: Load,
    *,
    baseline_name: str = "bare",
    ratio_target: float | None = None,
    p99_bound_ms: float | None = None,
) -> list[Figure]:
    """Requests/s, p50, p99 and CPU of ``name`` against its baseline, with their targets."""
    return [
        Figure(
            f"{name} req/s",
            service.requests_per_s,
            "req/s",
            baseline.requests_per_s,
            baseline_name,
            (">=", ratio_target) if ratio_target else None,
        ),
        Figure(f"{name} p50", service.p50_ms, "ms", baseline.p50_ms, baseline_name),
        Figure(
            f"{name} p99",
            service.p99_ms,
            "ms",
            baseline.p99_ms,
            baseline_name,
            ("<=", p99_bound_ms) if p99_bound_ms else None,
            target_on_value=True,
        ),
        Figure(
            f"{name} CPU",
            service.cpu_us_per_request,
            "us/req",
            baseline.cpu_us_per_request,
            baseline_name,
        ),
    ]


def main() -> None:
    """Start both servers, measure every endpoint against the bare route, report; never fail."""
    part_main("http", __doc__, measure, duration=DURATION_SECONDS, warmup=WARMUP_SECONDS)


def measure(args: argparse.Namespace, notes: list[str], raw: dict[str, Any]) -> list[Figure]:
    """Every endpoint on a private Redis database."""
    notes.append(
        f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}, {args.duration:g}s a side in {SLICES} slices "
        f"after a {args.warmup:g}s warm-up; /ready probe: -c{PROBE_CONNECTIONS}, "
        f"{PROBE_DURATION_SECONDS}s a side"
    )
    with bench_database("http", REDIS_DB) as (env, client):
        figures, loads = run(env, client, args.duration, args.warmup, notes)
    raw.update(loads)
    return figures


def run(
    env: dict[str, str],
    client: redis.Redis,
    duration: float,
    warmup: float,
    notes: list[str],
) -> tuple[list[Figure], dict[str, Any]]:
    """Both servers up, every endpoint measured; the figures and the raw loads."""
    intake_only = {**env, "JOB_CONCURRENCY": "0"}
    with tempfile.TemporaryDirectory(prefix="slatesim-bench-http-") as tmp:
        workdir = Path(tmp)
        service = Gunicorn(intake_only, workdir, keep_output=False).start(wait=False)
        bare = Gunicorn(intake_only, workdir, config=BARE_CONFIG, keep_output=False)
        bare.start(wait=False)
        peer = Gunicorn(intake_only, workdir, config=PEER_CONFIG, keep_output=False)
        peer.start(wait=False)
        try:
            service.wait_until_serving("/ready")
            bare.wait_until_serving("/health")
            peer.wait_until_serving("/health")
            # The complete job first: its claim takes the oldest pending job.
            complete_id = complete_job(JobStore(client, ttl_seconds=Settings().job_ttl_seconds))
            submitted = service.request("POST", "/jobs", SUBMISSION)
            if submitted.status != 202:
                raise RuntimeError(f"POST /jobs answered {submitted.status}: {submitted.body}")
            pending = submitted.body
            for job_id, state in ((pending["id"], "pending"), (complete_id, "complete")):
                if service.request("GET", f"/jobs/{job_id}").body["state"] != state:
                    raise RuntimeError(f"job {job_id} is not {state}")
            bench = SideBySide(service, bare, peer, workdir, client, duration, warmup)
            loads: dict[str, tuple[Load, Load]] = {}
            fetch = "GET /jobs/<id> pending"
            loads[fetch] = bench.pair(Request("GET", f"/jobs/{pending['id']}"))
            complete = bench.service_only(Request("GET", f"/jobs/{complete_id}"))
            loads["GET /jobs/<id> complete"] = (complete, loads[fetch][1])
            loads[GZIP_FETCH] = bench.pair(
                Request("GET", f"/jobs/{complete_id}", headers=(("Accept-Encoding", "gzip"),))
            )
            notes.append(wire_bytes(service, complete_id))
            loads["GET /health"] = bench.pair(Request("GET", "/health"))
            loads["GET /ready"] = bench.pair(Request("GET", "/ready"))
            loads["GET /ready probe"] = bench.pair(
                Request("GET", "/ready"), PROBE_CONNECTIONS, probe=True
            )
            # Last: its thousands of writes make Redis snapshot, which would disturb the others.
            submit = Request("POST", "/jobs", SUBMISSION)
            loads = {
                "POST /jobs": bench.pair(submit),
                PEER_PAIR: bench.pair(submit, against=peer),
                **loads,
            }
            if bench.disturbed_slices:
                notes.append(f"{bench.disturbed_slices} slice(s) run again: Redis forked meanwhile")
        finally:
            service.stop()
            bare.stop()
            peer.stop()

    ratio_targets = {
        "POST /jobs": TARGET_SUBMIT,
        PEER_PAIR: TARGET_SUBMIT_VS_RQ,
        "GET /jobs/<id> complete": TARGET_FETCH,
        GZIP_FETCH: TARGET_GZIP_FETCH,
        "GET /jobs/<id> pending": TARGET_FETCH,
        "GET /health": TARGET_HEALTH,
    }
    figures: list[Figure] = []
    for name, (measured, baseline) in loads.items():
        figures += figures_for(
            name,
            measured,
            baseline,
            baseline_name=PEER_NAME if name == PEER_PAIR else "bare",
            ratio_target=ratio_targets.get(name),
            p99_bound_ms=TARGET_READY_P99_MS if name == "GET /ready probe" else None,
        )
        for load, who in ((measured, "service"), (baseline, "bare")):
            if load.socket_errors or load.http_errors:
                notes.append(
                    f"{name} ({who}): {load.socket_errors} socket errors, "
                    f"{load.http_errors} HTTP errors in {load.requests} requests"
                )
    notes.append(
        "GET /jobs/<id> complete serves a stored result of about 90 KB; its baseline is the "
        "bare route's GET /jobs/<id>"
    )
    raw = {
        name: {"service": asdict(measured), "bare": asdict(baseline)}
        for name, (measured, baseline) in loads.items()
    }
    return figures, raw


if __name__ == "__main__":
    main()
