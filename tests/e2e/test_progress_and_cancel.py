"""Watching and stopping long jobs through a real gunicorn on the real Redis and Neo4j.

Invariants: a running job's progress is seen moving forward and the result is the one the
same job gives without progress reporting (named as the job body names it); a cancelled
pending job never starts; a cancelled running job stops within one heartbeat and one chunk and
frees its thread; a cancel racing a completion ends in exactly one consistent outcome; the CLI
shows a progress bar on a terminal, JSON lines when piped, and exits 0, 1 or 2 as documented.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from app.jobs.simulation_job import with_names
from app.slates.demo_data import demo_slates
from app.slates.simulation import simulate
from tests.support.gunicorn import REPO_ROOT, Gunicorn
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SLATE = "nfl-2026-11-29-main"
# A few seconds of work on this machine, reported chunk by chunk.
LONG_SCENARIOS, LONG_SEED = 600_000, 7
LONG_JOB = {"slate_id": SLATE, "scenario_count": LONG_SCENARIOS, "seed": LONG_SEED}
SHORT_JOB = {"slate_id": "nba-2026-11-28-main", "scenario_count": 2_000}
HEARTBEAT_SECONDS = 0.5  # the e2e timings (tests/e2e/conftest.py)


def submit(server: Gunicorn, body: dict) -> str:
    response = server.request("POST", "/jobs", body)
    assert response.status == 202, response.body
    return response.body["id"]


def started_lines(server: Gunicorn, job_id: str) -> int:
    return sum(
        1
        for line in server.json_lines()
        if line.get("message") == "job started" and line.get("job_id") == job_id
    )


def test_progress_moves_forward_and_the_result_is_unchanged(gunicorn):
    server = gunicorn()
    job_id = submit(server, LONG_JOB)
    seen: list[dict] = []

    def complete() -> dict | None:
        record = server.request("GET", f"/jobs/{job_id}").body
        progress = record.get("progress") or {}
        moved = not seen or seen[-1]["scenarios_done"] != progress.get("scenarios_done")
        if record["state"] == "running" and progress.get("scenarios_done") and moved:
            seen.append(progress)
        return record if record["state"] in ("complete", "failed") else None

    record = wait_until(complete, 120, what="the job complete", interval=0.1)
    done = [progress["scenarios_done"] for progress in seen]
    assert len(done) >= 3 and done == sorted(set(done)), done
    assert all(0 < progress["fraction"] < 1 for progress in seen), seen
    assert "progress" not in record
    slate = next(s for s in demo_slates() if s["id"] == SLATE)
    alone = with_names(simulate(slate, LONG_SCENARIOS, LONG_SEED), slate)
    for key in ("players", "teams", "scenario_count", "seed"):
        assert record["result"][key] == alone[key], key


def test_a_cancelled_pending_job_never_starts(gunicorn):
    server = gunicorn()  # one job thread: the second job waits behind the first
    running = submit(server, LONG_JOB)
    server.wait_for_job(running, {"running"}, timeout=30)
    pending = submit(server, SHORT_JOB)
    depth = server.request("GET", "/ready").body["queue"]["pending"]
    response = server.request("POST", f"/jobs/{pending}/cancel", headers={"X-User-ID": "alice"})
    assert response.status == 200, response.body
    assert response.body["state"] == "failed" and response.body["error"]["code"] == "cancelled"
    assert response.body["cancelled_by"] == "alice"
    assert server.request("GET", "/ready").body["queue"]["pending"] == depth - 1
    again = server.request("POST", f"/jobs/{pending}/cancel")
    assert again.status == 200 and again.body["state"] == "failed"  # idempotent
    server.request("POST", f"/jobs/{running}/cancel")
    server.wait_for_job(running, {"failed"}, timeout=30)
    # The one job thread takes jobs in order: once a job queued after it has run, the
    # cancelled one would have started before it, had it still been in the queue.
    later = submit(server, SHORT_JOB)
    server.wait_for_job(later, {"complete"}, timeout=30)
    assert started_lines(server, pending) == 0


def test_a_cancelled_running_job_stops_within_a_heartbeat_and_frees_its_thread(gunicorn):
    server = gunicorn()
    running = submit(server, LONG_JOB)
    following = submit(server, SHORT_JOB)
    server.wait_for_job(running, {"running"}, timeout=30)
    requested = time.monotonic()
    response = server.request("POST", f"/jobs/{running}/cancel")
    assert response.status == 202 and response.body["cancel_requested_at"]
    record = server.wait_for_job(running, {"failed", "complete"}, timeout=30)
    stopped = time.monotonic() - requested
    assert record["state"] == "failed" and record["error"]["code"] == "cancelled", record
    assert "result" not in record
    assert stopped < HEARTBEAT_SECONDS + 1.0 + 0.5, stopped  # a beat, a chunk, polling
    server.wait_for_job(following, {"running", "complete"}, timeout=1.0)
    after = server.request("POST", f"/jobs/{running}/cancel")
    assert after.status == 200 and after.body["error"]["code"] == "cancelled"


# An instance whose attempts hear of a cancel only at a slow heartbeat: what ends them first is
# the hand-back or the kill the test sends (heartbeat + 2 timeouts stay under the 9 s lease).
DEAF_INSTANCE = {"JOB_HEARTBEAT_SECONDS": "4", "DEPENDENCY_TIMEOUT_SECONDS": "1"}


def _cancel_running(server: Gunicorn, job_ids: list[str]) -> None:
    for job_id in job_ids:
        server.wait_for_job(job_id, {"running"}, timeout=30)
    for job_id in job_ids:
        response = server.request("POST", f"/jobs/{job_id}/cancel", headers={"X-User-ID": "bob"})
        assert response.status == 202, response.body
        assert response.body["state"] == "running" and response.body["cancel_requested_at"]


def _assert_ended_cancelled_without_running_again(server: Gunicorn, job_ids: list[str]) -> None:
    for job_id in job_ids:
        record = server.wait_for_job(job_id, {"complete", "failed"}, timeout=60)
        assert record["state"] == "failed", record
        assert record["error"]["code"] == "cancelled" and "result" not in record
        assert record["cancelled_by"] == "bob"
        assert started_lines(server, job_id) == 0


def test_a_cancelled_job_handed_back_at_sigterm_never_completes_on_the_next_instance(gunicorn):
    """Invariant: a 202 to a cancel is kept across a drain that hands the job back."""
    first = gunicorn(JOB_CONCURRENCY="3", SHUTDOWN_TIMEOUT_SECONDS="0", **DEAF_INSTANCE)
    job_ids = [submit(first, {**LONG_JOB, "seed": n}) for n in range(3)]
    _cancel_running(first, job_ids)
    first.terminate()
    assert first.wait_exit(30) == 0
    handed_back = [
        line["job_id"] for line in first.json_lines() if "straggler" in line.get("message", "")
    ]
    assert handed_back, "the drain should hand the cancelled jobs back"
    _assert_ended_cancelled_without_running_again(gunicorn(), job_ids)


def test_a_cancelled_job_whose_instance_is_killed_never_completes_after_recovery(gunicorn):
    """Invariant: a 202 to a cancel is kept across a SIGKILL and the lease recovery after it."""
    first = gunicorn(**DEAF_INSTANCE)
    job_id = submit(first, LONG_JOB)
    _cancel_running(first, [job_id])
    first.kill_group()
    _assert_ended_cancelled_without_running_again(gunicorn(), [job_id])


def test_a_cancel_racing_completion_has_exactly_one_outcome(gunicorn):
    server = gunicorn()
    outcomes = []
    for delay in (0.0, 0.02, 0.05, 0.1, 0.2, 0.3):
        job_id = submit(server, SHORT_JOB)
        time.sleep(delay)
        answer = server.request("POST", f"/jobs/{job_id}/cancel").status
        record = server.wait_for_job(job_id, {"complete", "failed"}, timeout=30)
        if record["state"] == "complete":
            assert "result" in record and "error" not in record
            assert answer in (202, 409)  # requested too late, or after completion
        else:
            assert record["error"]["code"] == "cancelled" and "result" not in record
            assert answer in (200, 202)
        if answer == 409:
            assert record["state"] == "complete"
        outcomes.append((answer, record["state"]))
    assert {state for _, state in outcomes} <= {"complete", "failed"}


def flask_jobs(server: Gunicorn, *args: str, terminal: bool = False) -> subprocess.CompletedProcess:
    """Run ``flask jobs ...`` against the instance's Redis, on a pseudo-terminal if asked."""
    command = [sys.executable, "-m", "flask", "--app", "app.wsgi", "jobs", *args]
    env = {**os.environ, **server.env, "LOG_FILE": str(server.log_dir / "cli.log")}
    env.pop("LOG_LEVEL", None)
    if terminal:  # util-linux's script(1) gives the command a terminal and records it
        line = " ".join(command)
        command = ["script", "-q", "-e", "-c", line, "/dev/null"]
        env["COLUMNS"] = "100"
    return subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_cli_shows_a_progress_bar_on_a_terminal_and_json_lines_when_piped(gunicorn):
    server = gunicorn()
    shown = flask_jobs(
        server, "submit", SLATE, "--scenarios", "400000", "--seed", "3", "--wait", terminal=True
    )
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    assert "scenarios" in shown.stdout and "/400000" in shown.stdout
    assert "complete in" in shown.stdout
    assert '"level": "INFO"' not in shown.stdout + shown.stderr  # its own output only
    piped = flask_jobs(server, "submit", SLATE, "--scenarios", "200000", "--wait")
    assert piped.returncode == 0, piped.stderr[-2000:]
    lines = [json.loads(line) for line in piped.stdout.splitlines()]
    assert lines[0]["submitted"] and lines[-1]["state"] == "complete"
    assert any(line.get("progress") for line in lines[1:-1])
    job_id = lines[0]["submitted"]
    assert flask_jobs(server, "cancel", job_id).returncode == 1  # finished: nothing to cancel
    assert flask_jobs(server, "cancel", "not-a-job-id").returncode == 2
    assert flask_jobs(server, "watch", job_id).returncode == 0
    queued = json.loads(flask_jobs(server, "submit", SLATE, "--scenarios", "600000").stdout)
    assert flask_jobs(server, "cancel", queued["id"]).returncode == 0
    assert flask_jobs(server, "watch", queued["id"]).returncode == 1  # ended cancelled
