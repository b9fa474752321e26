"""The image users build from the Dockerfile, run for real with podman (`make test-container`).

Each test starts a container of the image on the host's network against the local Redis and
Neo4j, with the service's defaults, and checks what a deployment relies on first:
- it serves /health and /ready;
- it runs as the image's non-root user and cannot change its own code;
- the image's HEALTHCHECK passes without curl;
- `podman stop -t 105` while a job runs: gunicorn, PID 1, gets SIGTERM, drains, the job ends
  complete before the container exits, and the exit code is 0 (nothing undone);
- `podman restart`, and `podman kill -s KILL` then `podman start`, mid-job: the job completes
  exactly once (one "job complete" line across the container's runs; never stuck);
- every line the container writes is one JSON object.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from app.jobs.store import JobStore
from tests.support.container import STOP_TIMEOUT_SECONDS, Container, image_exists, podman
from tests.support.invariants import COMPLETE, STARTED

pytestmark = pytest.mark.container

SLATE_ID = "nfl-2026-11-29-main"
# About 4 s of simulation on the reference machine: long enough to be caught running.
SCENARIOS = 1_000_000
# The lease (15 s by default) lapses, the sweep (5 s) finds it, the job runs again.
RECOVERY_TIMEOUT_SECONDS = 90


@pytest.fixture
def container(
    service_env: dict[str, str], redis_client: redis.Redis, seeded_slates, tmp_path: Path
) -> Iterator[Callable[[], Container]]:
    """Start containers of the image on this process's Redis database; removed after."""
    if not image_exists():
        pytest.fail("the image is not built: run `make test-container`")
    started: list[Container] = []

    def start() -> Container:
        name = f"slatesim-test-{uuid.uuid4().hex[:10]}"
        started.append(Container(name=name, env=service_env, env_dir=tmp_path))
        started[-1].run().wait_until_serving()
        return started[-1]

    yield start
    for instance in started:
        instance.remove()


def submit(instance: Container, seed: int = 1) -> str:
    body = {"slate_id": SLATE_ID, "scenario_count": SCENARIOS, "seed": seed}
    response = instance.request("POST", "/jobs", body)
    assert response.status == 202, response.body
    return str(response.body["id"])


def lines_about(instance: Container, job_id: str, message: str) -> int:
    return sum(
        1
        for line in instance.json_lines()
        if line.get("job_id") == job_id and line.get("message") == message
    )


def test_the_image_serves_health_and_ready(container):
    instance = container()
    health = instance.request("GET", "/health")
    assert health.status == 200 and health.body["status"] == "ok", health.body
    ready = instance.request("GET", "/ready")
    assert ready.status == 200, ready.body
    assert set(ready.body["checks"]) >= {"redis", "neo4j"}


def test_it_runs_as_its_non_root_user_and_cannot_change_its_code(container):
    instance = container()
    status = instance.exec("cat", "/proc/1/status").stdout
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == ["10001"] * 4, uid_line  # real, effective, saved, fs
    assert "gunicorn" in instance.exec("cat", "/proc/1/cmdline").stdout  # PID 1 itself
    for path in (
        "/app/gunicorn.conf.py",
        "/opt/slatesim/lib/python3.11/site-packages/app/__init__.py",
        "/opt/slatesim/lib/python3.11/site-packages/app/new_module.py",
    ):
        attempt = instance.exec("python", "-c", f"open({path!r}, 'a')")
        assert attempt.returncode != 0 and "PermissionError" in attempt.stderr, (path, attempt)


def test_the_images_healthcheck_passes_without_curl(container):
    instance = container()
    assert instance.exec("sh", "-c", "command -v curl || echo none").stdout.strip() == "none"
    check = instance.inspect("{{json .Config.Healthcheck.Test}}")
    assert "app.healthcheck" in check, check  # the image's HEALTHCHECK survived the build
    result = podman("healthcheck", "run", instance.name, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_stop_drains_the_running_job_before_the_container_exits(container, redis_client):
    instance = container()
    job_id = submit(instance)
    instance.wait_for_job(job_id, {"running"}, timeout=30)
    podman("stop", "--time", str(STOP_TIMEOUT_SECONDS), instance.name, timeout=150)
    assert instance.inspect("{{.State.Status}}") == "exited"
    assert instance.inspect("{{.State.ExitCode}}") == "0"
    job = JobStore(redis_client, ttl_seconds=3600).get(job_id)
    assert job is not None and job.state.value == "complete", job
    messages = [line["message"] for line in instance.json_lines()]
    assert "draining jobs" in messages and "worker drained" in messages
    drained = [line for line in instance.json_lines() if line["message"] == "worker drained"]
    assert sum(line["context"]["finished_jobs"] for line in drained) == 1
    assert all(line["context"]["handed_back"] == 0 for line in drained)
    assert lines_about(instance, job_id, COMPLETE) == 1


def test_a_restart_mid_job_completes_it_exactly_once(container):
    instance = container()
    job_id = submit(instance, seed=2)
    instance.wait_for_job(job_id, {"running"}, timeout=30)
    podman("restart", instance.name, timeout=150)
    instance.wait_until_serving()
    record = instance.wait_for_job(job_id, {"complete", "failed"}, RECOVERY_TIMEOUT_SECONDS)
    assert record["state"] == "complete", record
    assert lines_about(instance, job_id, COMPLETE) == 1
    assert record["lost_attempts"] == 0, record  # drained at the restart, not lost


def test_a_kill_mid_job_then_start_completes_it_exactly_once(container):
    instance = container()
    job_id = submit(instance, seed=3)
    instance.wait_for_job(job_id, {"running"}, timeout=30)
    podman("kill", "--signal", "KILL", instance.name)
    assert instance.inspect("{{.State.ExitCode}}") == "137"
    podman("start", instance.name)
    instance.wait_until_serving()
    record = instance.wait_for_job(job_id, {"complete", "failed"}, RECOVERY_TIMEOUT_SECONDS)
    assert record["state"] == "complete", record
    assert record["lost_attempts"] == 1 and record["attempts"] == 2, record
    assert lines_about(instance, job_id, STARTED) == 2  # the killed run and the recovered one
    assert lines_about(instance, job_id, COMPLETE) == 1


def test_every_line_the_container_writes_is_one_json_object(container):
    instance = container()
    job_id = submit(instance, seed=4)
    instance.wait_for_job(job_id, {"complete"}, timeout=60)
    instance.request("GET", "/no-such-page")
    podman("stop", "--time", str(STOP_TIMEOUT_SECONDS), instance.name, timeout=150)
    lines = instance.json_lines()  # raises on the first line that is not a JSON object
    assert len(lines) >= 10
    assert all({"timestamp", "level", "message"} <= line.keys() for line in lines), lines[:3]
    assert lines_about(instance, job_id, COMPLETE) == 1
