"""The project's image, run with podman on the host's network as `make test-container` builds
it (scripts/container-image.sh): start it, talk HTTP to it, stop, restart or kill it, read its
logs.

Secrets reach the container through an env file readable by its owner only, never podman's
command line.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.http import Response, request
from tests.support.ports import free_port
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
# The image the tests run: the one scripts/container-image.sh builds.
IMAGE = os.environ.get("IMAGE", "localhost/slatesim:test")
CONTAINERS_CONF = REPO_ROOT / "tests" / "container" / "containers.conf"
# As deploy/compose.yaml's stop_grace_period: SHUTDOWN_TIMEOUT_SECONDS (90) + 15.
STOP_TIMEOUT_SECONDS = 105
# A fresh container may take this long to answer: interpreter, imports, two workers.
SERVE_TIMEOUT_SECONDS = 60.0


def podman(
    *args: str, check: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run podman with the project's containers.conf; raises with its stderr on failure."""
    env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: exit {result.returncode}: {result.stderr}")
    return result


def image_exists() -> bool:
    """Whether IMAGE has been built (`make test-container` builds it)."""
    return podman("image", "exists", IMAGE, check=False).returncode == 0


@dataclass
class Container:
    """One container of IMAGE, listening on ``port`` of the host's loopback."""

    name: str
    env: dict[str, str]
    env_dir: Path
    port: int = field(default_factory=free_port)

    def run(self) -> Container:
        """Start it detached, as compose would: host network, a 105 s stop timeout."""
        env_file = self.env_dir / f"{self.name}.env"
        env_file.touch(mode=0o600)
        settings = {**self.env, "BIND": f"127.0.0.1:{self.port}"}
        env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        podman(
            "run",
            "--detach",
            "--name",
            self.name,
            "--network",
            "host",
            "--stop-timeout",
            str(STOP_TIMEOUT_SECONDS),
            "--env-file",
            str(env_file),
            IMAGE,
        )
        return self

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Response:
        """An HTTP request to the container's server."""
        return request(self.port, method, path, body, **kwargs)

    def wait_until_serving(self, path: str = "/ready") -> None:
        """Until ``path`` answers 200."""

        def answers() -> bool:
            try:
                return self.request("GET", path, timeout=3).status == 200
            except OSError:
                return False

        wait_until(answers, SERVE_TIMEOUT_SECONDS, what=f"{self.name} serving {path}")

    def wait_for_job(self, job_id: str, states: set[str], timeout: float) -> dict[str, Any]:
        """Poll GET /jobs/<id> until the job is in one of ``states``; its record."""

        def in_state() -> dict[str, Any] | None:
            try:
                response = self.request("GET", f"/jobs/{job_id}", timeout=3)
            except OSError:
                return None  # restarting
            if response.status == 200 and response.body["state"] in states:
                return dict(response.body)
            return None

        return wait_until(in_state, timeout, what=f"job {job_id} in {sorted(states)}")

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        """A command inside the running container, as its user; not checked."""
        return podman("exec", self.name, *command, check=False)

    def inspect(self, template: str) -> str:
        """One value of ``podman inspect`` (a Go template such as ``{{.State.ExitCode}}``)."""
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> list[str]:
        """Every line the container's processes wrote to stdout and stderr, across restarts."""
        result = podman("logs", self.name)
        return (result.stdout + result.stderr).splitlines()

    def json_lines(self) -> list[dict[str, Any]]:
        """The log lines as JSON objects; raises on the first line that is not one."""
        parsed = []
        for line in self.logs():
            value = json.loads(line)
            if not isinstance(value, dict):
                raise ValueError(f"not a JSON object: {line!r}")
            parsed.append(value)
        return parsed

    def remove(self) -> None:
        """Stop at once and remove; nothing is left behind."""
        podman("rm", "--force", "--time", "0", self.name, check=False)
