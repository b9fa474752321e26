"""Drive a real gunicorn in a subprocess: start it, talk HTTP to it, signal it, read its logs."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    """An HTTP response, body decoded as JSON when it is JSON."""

    status: int
    headers: dict[str, str]
    body: Any


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Response:
    """One HTTP request on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        sent_headers = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        connection.request(method, path, body=payload, headers=sent_headers)
        reply = connection.getresponse()
        raw = reply.read()
        content_type = reply.getheader("Content-Type", "")
        decoded = json.loads(raw) if raw and "json" in content_type else raw
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, decoded)
    finally:
        connection.close()


@dataclass
class Gunicorn:
    """One gunicorn master with its workers, run from the repository with our config."""

    env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def stdout_path(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.log_dir / f"gunicorn-{self.port}.out"

    @property
    def log_file(self) -> Path:
        """The LOG_FILE of this instance."""
        return self.log_dir / f"app-{self.port}.log"

    def start(self, wait: bool = True) -> Gunicorn:
        """Start gunicorn and, by default, wait until /health answers."""
        env = {
            **os.environ,
            **self.env,
            "BIND": f"127.0.0.1:{self.port}",
            "LOG_FILE": str(self.log_file),
        }
        with open(self.stdout_path, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        if wait:
            self.wait_until_serving()
        return self

    def wait_until_serving(self, timeout: float = 30.0) -> None:
        """Block until /health answers 200, or fail with the process output."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited early:\n{self.output()[-3000:]}")
            try:
                if request(self.port, "GET", "/health", timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gunicorn did not serve within {timeout}s:\n{self.output()[-3000:]}")

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Response:
        """An HTTP request to this instance."""
        return request(self.port, method, path, body, **kwargs)

    def signal(self, signum: int) -> None:
        """Send a signal to the master."""
        os.kill(self.process.pid, signum)

    def kill_group(self) -> None:
        """SIGKILL the master and every worker: no hook runs."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the master to exit; return its exit code."""
        return self.process.wait(timeout)

    def stop(self) -> None:
        """Make sure nothing of this instance is left running."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_group()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def output(self) -> str:
        """Everything the process wrote to stdout and stderr."""
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def json_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written to stdout."""
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]


def poll_job(instance: Gunicorn, job_id: str, states: set[str], timeout: float = 60.0) -> dict:
    """Poll GET /jobs/<id> until the job is in one of ``states``; return its record."""
    deadline = time.monotonic() + timeout
    record: dict = {}
    while time.monotonic() < deadline:
        response = instance.request("GET", f"/jobs/{job_id}")
        record = response.body
        if response.status == 200 and record["state"] in states:
            return record
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not in {states} after {timeout}s: {record}")
