"""A job through a real gunicorn: submit, poll until complete, check params, metadata, result."""

from __future__ import annotations

import pytest

from app.sizing import blas_threads, usable_cpus
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SLATE = "nba-2026-11-28-main"


def test_a_submitted_job_runs_to_complete_through_gunicorn(gunicorn):
    server = gunicorn()
    submitted = server.request(
        "POST",
        "/jobs",
        {"slate_id": SLATE, "scenario_count": 2000, "seed": 99},
        headers={"X-User-ID": "e2e"},
    )
    assert submitted.status == 202
    job_id = submitted.body["id"]
    assert submitted.headers["location"] == f"/jobs/{job_id}"
    record = server.wait_for_job(job_id, {"complete", "failed"})
    assert record["state"] == "complete", record.get("error")
    assert record["params"] == {"slate_id": SLATE, "scenario_count": 2000, "seed": 99}
    assert record["metadata"]["slate_id"] == SLATE
    assert record["metadata"]["scenario_count"] == 2000
    assert record["metadata"]["duration_ms"] > 0
    assert record["metadata"]["worker"].endswith(tuple("0123456789"))
    assert record["user_id"] == "e2e" and record["attempts"] == 1
    assert record["started_at"] <= record["finished_at"] < record["expires_at"]
    result = record["result"]
    assert result["scenario_count"] == 2000 and result["seed"] == 99
    assert len(result["players"]) > 200
    player = result["players"][0]
    assert player["p10"] <= player["p50"] <= player["p90"] <= player["max"]


def test_an_unknown_slate_fails_with_slate_not_found(gunicorn):
    server = gunicorn()
    job_id = server.request(
        "POST", "/jobs", {"slate_id": "no-such-slate", "scenario_count": 10}
    ).body["id"]
    record = server.wait_for_job(job_id, {"complete", "failed"})
    assert record["state"] == "failed"
    assert record["error"]["code"] == "slate_not_found"


def test_an_intake_only_instance_accepts_but_runs_nothing(gunicorn):
    server = gunicorn(JOB_CONCURRENCY="0")
    job_id = server.request("POST", "/jobs", {"slate_id": SLATE, "scenario_count": 10}).body["id"]
    started = wait_until(
        lambda: [line for line in server.json_lines() if line["message"] == "job runner started"],
        10,
        what="the job runner started",
    )
    assert started[0]["context"]["job_threads"] == 0  # no thread that could claim it
    assert server.request("GET", f"/jobs/{job_id}").body["state"] == "pending"
    runner = gunicorn()
    assert runner.wait_for_job(job_id, {"complete"})["state"] == "complete"


def test_each_worker_caps_its_numeric_pools_to_its_share_of_the_cpus(gunicorn):
    server = gunicorn(WEB_CONCURRENCY="2", JOB_CONCURRENCY="1")
    expected = blas_threads(usable_cpus(), workers=2, job_threads=1)
    seen = {server.request("GET", "/ready").body["worker"]["numeric_threads"] for _ in range(10)}
    assert seen == {expected}
