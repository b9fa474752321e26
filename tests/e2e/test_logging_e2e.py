"""Logs of a real gunicorn run: every line JSON, IDs carried from request to job, no secrets."""

from __future__ import annotations

import json

import pytest

from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.e2e

REQUIRED = {"timestamp", "level", "logger", "message", "pid"}
SECRETS = ("redis-log-pw-123", "Bearer top-secret-token", "cookie-secret-456")


def _lines(text: str) -> list[dict]:
    return [json.loads(raw) for raw in text.splitlines() if raw.strip()]


def test_every_line_is_json_and_the_request_id_reaches_the_job(gunicorn, tmp_path, service_env):
    redis_server = RedisServer(tmp_path / "redis", password=SECRETS[0])
    redis_server.directory.mkdir()
    redis_server.start()
    try:
        server = gunicorn(WEB_CONCURRENCY="2", REDIS_URL=redis_server.url)
        headers = {
            "X-Request-ID": "trace-abc.123_X",
            "X-User-ID": "alice",
            "Authorization": SECRETS[1],
            "Cookie": f"session={SECRETS[2]}",
            "User-Agent": "slatesim-test/1",
        }
        submitted = server.request(
            "POST",
            "/jobs",
            {"slate_id": "nba-2026-11-28-main", "scenario_count": 500},
            headers=headers,
        )
        assert submitted.status == 202
        assert submitted.headers["x-request-id"] == "trace-abc.123_X"
        job_id = submitted.body["id"]
        assert server.wait_for_job(job_id, {"complete"})["request_id"] == "trace-abc.123_X"
        bad = server.request("GET", "/health", headers={"X-Request-ID": "bad id with spaces"})
        assert len(bad.headers["x-request-id"]) == 26
        server.request("GET", "/ready")
        server.stop()
    finally:
        redis_server.stop()

    stdout = _lines(server.output())
    logfile = _lines(server.log_file.read_text())
    for lines in (stdout, logfile):
        assert lines
        for line in lines:
            assert set(line) >= REQUIRED, line
        text = json.dumps(lines)
        for secret in (*SECRETS, service_env["NEO4J_PASSWORD"]):
            assert secret not in text

    traced = [line for line in logfile if line.get("request_id") == "trace-abc.123_X"]
    access = [line for line in traced if line["logger"] == "gunicorn.access"]
    assert access and access[0]["context"]["method"] == "POST"
    assert access[0]["context"]["path"] == "/jobs" and access[0]["context"]["status"] == 202
    assert access[0]["context"]["duration_ms"] >= 0
    assert access[0]["context"]["client"] == "127.0.0.1"
    assert access[0]["context"]["user_agent"] == "slatesim-test/1"
    messages = {line["message"] for line in traced}
    assert {"job submitted", "job started", "job complete"} <= messages
    for line in traced:
        if line["message"] in ("job started", "job complete"):
            assert line["job_id"] == job_id and line["user_id"] == "alice"
    assert not [
        line
        for line in logfile
        if line["logger"] == "gunicorn.access" and line["context"]["path"] in ("/health", "/ready")
    ]


def test_the_access_line_names_only_a_user_id_the_app_accepted(gunicorn):
    # A spoofed or malformed X-User-ID is refused with 400; its access line must not carry it.
    server = gunicorn()
    body = {"slate_id": "nba-2026-11-28-main", "scenario_count": 10}
    sent = {
        "accepted": ("alice", 202),
        "rejected": ("admin\u00a0root", 400),  # a no-break space: not a token
        "rejected-too-long": ("x" * 65, 400),
    }
    for request_id, (user_id, status) in sent.items():
        headers = {"X-Request-ID": request_id, "X-User-ID": user_id}
        assert server.request("POST", "/jobs", body, headers=headers).status == status
    server.stop()
    access = {
        line["request_id"]: line
        for line in _lines(server.log_file.read_text())
        if line["logger"] == "gunicorn.access"
    }
    assert access["accepted"]["user_id"] == "alice"
    assert "user_id" not in access["rejected"]
    assert "user_id" not in access["rejected-too-long"]
