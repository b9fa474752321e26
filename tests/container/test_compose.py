"""deploy/compose.yaml read by a real compose parser (podman-compose's `config`), and held to
the Dockerfile and the service's settings.

Invariants: the file parses and resolves; it refuses to start without NEO4J_PASSWORD; its three
services are the ones the docs name; each has a health check (the app's the same command as
the image's HEALTHCHECK) and the app waits for healthy dependencies; the app's grace period is
the drain's SHUTDOWN_TIMEOUT_SECONDS + 15 s, as the Dockerfile and the README say.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from app.config import Settings
from tests.support.container import CONTAINERS_CONF, REPO_ROOT

pytestmark = pytest.mark.container

COMPOSE_FILE = REPO_ROOT / "deploy" / "compose.yaml"
# The drain's margin over SHUTDOWN_TIMEOUT_SECONDS: gunicorn's own 10 s and 5 s to exit.
GRACE_MARGIN_SECONDS = 15


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if k != "NEO4J_PASSWORD"}
    return subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(COMPOSE_FILE), "config"],
        env={**variables, "CONTAINERS_CONF": str(CONTAINERS_CONF), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = compose_config(NEO4J_PASSWORD="example-password")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, duration
    return float(match.group(1))


def dockerfile_healthcheck() -> list[str]:
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.MULTILINE)
    assert match, "no HEALTHCHECK in the Dockerfile"
    return list(json.loads(match.group(1)))


def test_it_refuses_to_resolve_without_the_neo4j_password():
    result = compose_config()
    assert result.returncode != 0
    assert "set NEO4J_PASSWORD" in result.stderr


def test_its_services_are_the_ones_the_docs_name(resolved):
    assert set(resolved["services"]) == {"app", "redis", "neo4j"}
    docs = (REPO_ROOT / "README.md").read_text() + (REPO_ROOT / "docs/operations.md").read_text()
    for named in re.findall(r"compose -f deploy/compose.yaml run --rm (\w+)", docs):
        assert named in resolved["services"], named


def test_every_service_is_health_checked_and_the_app_waits_for_healthy_dependencies(resolved):
    services = resolved["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert services["app"]["healthcheck"]["test"] == ["CMD", *dockerfile_healthcheck()]
    assert services["app"]["depends_on"] == {
        "redis": {"condition": "service_healthy"},
        "neo4j": {"condition": "service_healthy"},
    }


def test_the_apps_grace_period_covers_the_drain_as_the_dockerfile_and_readme_say(resolved):
    grace = seconds(resolved["services"]["app"]["stop_grace_period"])
    assert grace == Settings().shutdown_timeout_seconds + GRACE_MARGIN_SECONDS
    assert f"docker stop -t {grace:g}" in (REPO_ROOT / "Dockerfile").read_text()
    for doc in ("README.md", "docs/operations.md"):
        assert f"stop -t {grace:g}" in (REPO_ROOT / doc).read_text(), doc
