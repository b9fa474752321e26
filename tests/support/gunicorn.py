"""A real gunicorn master with its workers, run from the repository in a session of its own.

Tests and benchmarks drive it the same way: start it with an environment, talk HTTP to it,
signal it, read what it wrote. Every setting of the service that is not in ``env`` is the
service's default, whatever the caller's shell exports, so a run never depends on who ran it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.config import VARIABLES
from tests.support.http import Response, request
from tests.support.ports import free_port
from tests.support.processes import spawn
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVICE_CONFIG = "gunicorn.conf.py"
# A fresh instance may take this long to answer: imports, the Neo4j driver, two workers.
SERVE_TIMEOUT_SECONDS = 60.0
# After SIGTERM, how long ``stop`` waits for a clean exit before it kills the process group;
# a job still running at the end of a test or benchmark is handed back within this.
STOP_TIMEOUT_SECONDS = 20.0


@dataclass
class Gunicorn:
    """One gunicorn master started with ``-c config``, its output and log file in ``log_dir``.

    ``config`` is ``gunicorn.conf.py`` for the service, or another file with the same settings
    (the benchmarks' bare app). ``keep_output=False`` sends stdout to /dev/null, as a
    benchmark does to measure the service and not the terminal.
    """

    env: dict[str, str]
    log_dir: Path
    config: str = SERVICE_CONFIG
    port: int = field(default_factory=free_port)
    keep_output: bool = True
    process: subprocess.Popen[bytes] | None = None
    # Where this run's output begins in stdout_path: an instance restarted on the same port
    # appends to the file of the one before.
    output_offset: int = 0

    @property
    def stdout_path(self) -> Path:
        """Where the process's stdout and stderr go when kept."""
        return self.log_dir / f"gunicorn-{self.port}.out"

    @property
    def log_file(self) -> Path:
        """The LOG_FILE of this instance (unless ``env`` sets its own)."""
        return self.log_dir / f"app-{self.port}.log"

    @property
    def pid(self) -> int:
        """The master's pid."""
        assert self.process is not None, "gunicorn was not started"
        return self.process.pid

    def start(self, wait: bool = True) -> Gunicorn:
        """Start the master and, by default, wait until /health answers."""
        inherited = {k: v for k, v in os.environ.items() if k not in VARIABLES}
        env = {
            **inherited,
            "LOG_FILE": str(self.log_file),
            **self.env,
            "BIND": f"127.0.0.1:{self.port}",
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.stdout_path.exists():
            self.output_offset = self.stdout_path.stat().st_size
        self.process = spawn(
            [sys.executable, "-m", "gunicorn", "-c", self.config],
            self.stdout_path if self.keep_output else None,
            cwd=REPO_ROOT,
            env=env,
            start_new_session=True,
        )
        if wait:
            self.wait_until_serving()
        return self

    def wait_until_serving(
        self, path: str = "/health", timeout: float = SERVE_TIMEOUT_SECONDS
    ) -> None:
        """Block until ``path`` answers 200; fail with the output's tail if it never does."""
        try:
            wait_until(lambda: self._answers(path), timeout, what=f"{path} answering 200")
        except TimeoutError as error:
            raise AssertionError(f"{error}:\n{self.output_tail()}") from None

    def _answers(self, path: str) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited early:\n{self.output_tail()}")
        try:
            return request(self.port, "GET", path, timeout=2).status == 200
        except (OSError, http.client.HTTPException):
            return False

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Response:
        """An HTTP request to this instance."""
        return request(self.port, method, path, body, **kwargs)

    def wait_for_job(self, job_id: str, states: set[str], timeout: float = 60.0) -> dict[str, Any]:
        """Poll GET /jobs/<id> until the job is in one of ``states``; return its record."""

        def in_state() -> dict[str, Any] | None:
            response = self.request("GET", f"/jobs/{job_id}")
            if response.status == 200 and response.body["state"] in states:
                return dict(response.body)
            return None

        return wait_until(in_state, timeout, what=f"job {job_id} in {sorted(states)}")

    def signal(self, signum: int) -> None:
        """Send a signal to the master."""
        os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM to the master: the graceful shutdown an orchestrator starts."""
        self.signal(signal.SIGTERM)

    def worker_pids(self) -> list[int]:
        """The pids of the master's live workers (its children, from /proc)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.pid and fields[0] != "Z":
                    pids.append(int(stat.parent.name))
        return sorted(pids)

    def kill_group(self) -> None:
        """SIGKILL the master and every worker at once: no hook runs."""
        os.killpg(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)

    def wait_exit(self, timeout: float) -> int:
        """Wait for the master to exit; return its exit code."""
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Leave nothing of this instance running: SIGTERM, then SIGKILL after ``timeout``."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)

    def output(self) -> str:
        """Everything this run of the process wrote to stdout and stderr, when kept."""
        if self.keep_output and self.stdout_path.exists():
            with self.stdout_path.open("rb") as out:
                out.seek(self.output_offset)
                return out.read().decode(errors="replace")
        return ""

    def output_tail(self, chars: int = 3000) -> str:
        """The end of the output, for a failure's message."""
        return self.output()[-chars:] if self.keep_output else "(output not kept)"

    def json_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines written to stdout, whole lines only.

        The process may be writing while we read: the text after the last newline can be half
        a line, and is left for the next call.
        """
        whole = self.output().rpartition("\n")[0]
        return [json.loads(line) for line in whole.splitlines() if line.startswith("{")]
