"""The README's curl examples, run as written against a live server: they must all work."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.support.gunicorn import REPO_ROOT

pytestmark = pytest.mark.e2e

README_HOST = "http://127.0.0.1:8000"
_SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
_JOB_ID = re.compile(r"/jobs/[0-9A-Z]{26}")


def readme_curl_commands() -> list[str]:
    """Every curl command of the README's shell blocks, continuation lines joined."""
    text = (REPO_ROOT / "README.md").read_text()
    commands = []
    for block in _SH_BLOCK.findall(text):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split("   #")[0].strip()
            if command.startswith("curl ") and README_HOST in command:
                commands.append(command)
    return commands


def _run(command: str) -> tuple[int, str]:
    result = subprocess.run(
        ["bash", "-c", f"{command} -w '\\n%{{http_code}}'"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, (command, result.stderr)
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


def test_the_readme_covers_every_endpoint():
    covered = " ".join(readme_curl_commands())
    for path in (
        "/jobs",
        "/jobs/",
        "/jobs?",
        "/slates",
        "/slates/",
        "/health",
        "/ready",
        "/openapi.json",
        "/dashboard/",
    ):
        assert f"{README_HOST}{path}" in covered, path
    assert "/cancel" in covered


def test_every_curl_example_works_as_documented(gunicorn):
    server = gunicorn()
    base = f"http://127.0.0.1:{server.port}"
    job_id = cursor = None
    for command in readme_curl_commands():
        command = command.replace(README_HOST, base)
        if job_id:
            command = _JOB_ID.sub(f"/jobs/{job_id}", command)
        if "<next_cursor" in command:
            assert cursor, "the README lists a page before it uses its cursor"
            command = re.sub(r"<next_cursor[^>]*>", cursor, command)
        status, body = _run(command)
        if command.endswith("/cancel"):  # the example job may have completed by now
            assert status in (200, 202, 409), (command, status, body[-500:])
            continue
        assert 200 <= status < 300, (command, status, body[-500:])
        if "-X POST" in command:
            job_id = json.loads(body.split("\n\n", 1)[1])["id"]
            for n in range(3):
                server.request(
                    "POST",
                    "/jobs",
                    {"slate_id": "nba-2026-11-28-main", "scenario_count": 10, "seed": n},
                )
            cursor = server.request("GET", "/jobs?limit=1").body["next_cursor"]
            assert cursor
    assert job_id, "the README shows no submission"
