"""nginx and HAProxy as real processes in the foreground, each with its files in one folder.

The callers render the configuration (a stock configuration a user would write, or the
repository's example with its ports moved by ``render_example_haproxy``); these classes only
run it, check it and stop it.
"""

from __future__ import annotations

import csv
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.gunicorn import REPO_ROOT
from tests.support.ports import free_port
from tests.support.processes import spawn
from tests.support.waiting import wait_until

EXAMPLE_HAPROXY_CFG = REPO_ROOT / "deploy" / "haproxy.cfg"
# The example's backend, its server addresses and its frontend's bind line.
EXAMPLE_HAPROXY_BACKEND = "slatesim"
EXAMPLE_HAPROXY_SERVERS = {"app1": "127.0.0.1:8001", "app2": "127.0.0.1:8002"}
_EXAMPLE_BIND = "bind :8080"
# Seconds a balancer may take to start, and to stop before it is killed.
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0
# How long a server's state change may take to show: `fall` failed checks at `inter`, each
# up to `timeout check`, with room for a slow machine.
STATE_TIMEOUT_SECONDS = 15.0


class BalancerNotInstalled(RuntimeError):
    """The balancer's binary is missing: `make tools` installs it."""


def binary(name: str) -> str:
    """The path of ``name`` (Debian puts nginx and haproxy in /usr/sbin)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise BalancerNotInstalled(f"{name} is not installed: `make tools` installs it")
    return found


def _stop(process: subprocess.Popen[bytes] | None, signum: int) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signum)
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@dataclass
class Nginx:
    """An nginx master running ``config`` with everything it writes under ``prefix``."""

    prefix: Path
    config: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def access_log(self) -> Path:
        """The access log, when the configuration writes one to logs/access.log."""
        return self.prefix / "logs" / "access.log"

    def start(self) -> Nginx:
        """Write the configuration, start nginx and wait until it accepts connections."""
        (self.prefix / "logs").mkdir(parents=True, exist_ok=True)
        config = self.prefix / "nginx.conf"
        config.write_text(self.config)
        self.process = spawn(
            [
                *(binary("nginx"), "-p", f"{self.prefix}/", "-c", str(config)),
                *("-e", str(self.prefix / "logs" / "error.log"), "-g", "daemon off;"),
            ],
            self.prefix / "nginx.out",
        )
        wait_until(self._started, START_TIMEOUT_SECONDS, what=f"nginx on port {self.port}")
        return self

    def _started(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"nginx exited early:\n{self.output()}")
        return _accepts(self.port)

    def output(self) -> str:
        """nginx's own output and error log."""
        paths = (self.prefix / "nginx.out", self.prefix / "logs" / "error.log")
        return "\n".join(p.read_text(errors="replace") for p in paths if p.exists())

    def stop(self) -> None:
        """Graceful stop (SIGQUIT), SIGKILL if it lingers."""
        _stop(self.process, signal.SIGQUIT)


# `show stat` rows that describe a proxy as a whole rather than one of its servers.
_AGGREGATE_ROWS = frozenset({"FRONTEND", "BACKEND"})


@dataclass
class HAProxy:
    """HAProxy in the foreground (-db) running ``config``, with an admin socket, in ``directory``.

    ``config`` may hold ``{admin_socket}``, replaced by the socket's path, which the runtime API
    helpers (``command``, ``servers``) use.
    """

    directory: Path
    config: str
    backend: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def admin_socket(self) -> Path:
        """The runtime API socket."""
        return self.directory / "haproxy.sock"

    @property
    def config_path(self) -> Path:
        """Where the rendered configuration is written."""
        return self.directory / "haproxy.cfg"

    def start(self) -> HAProxy:
        """Write and validate the configuration (-c), run HAProxy, wait for its socket."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config.replace("{admin_socket}", str(self.admin_socket)))
        checked = check_haproxy_config(self.config_path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.process = spawn(
            [
                *(binary("haproxy"), "-db", "-f", str(self.config_path)),
                *("-p", str(self.directory / "haproxy.pid")),
            ],
            self.directory / "haproxy.out",
        )
        wait_until(self._started, START_TIMEOUT_SECONDS, what="HAProxy's admin socket")
        return self

    def _started(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"HAProxy exited early:\n{self.output()}")
        return self.admin_socket.exists()

    def output(self) -> str:
        """What HAProxy wrote: warnings, and one line per request."""
        path = self.directory / "haproxy.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def command(self, line: str) -> str:
        """One runtime API command; its whole answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.admin_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self) -> dict[str, dict[str, str]]:
        """`show stat` of the backend's servers, by server name."""
        lines = self.command("show stat").lstrip("# ").splitlines()
        return {
            row["svname"]: row
            for row in csv.DictReader(line for line in lines if line)
            if row["pxname"] == self.backend and row["svname"] not in _AGGREGATE_ROWS
        }

    def wait_for_servers(
        self,
        condition: Callable[[dict[str, dict[str, str]]], bool],
        what: str,
        timeout: float = STATE_TIMEOUT_SECONDS,
    ) -> None:
        """Block until ``condition`` holds for the backend's `show stat` rows."""
        try:
            wait_until(lambda: condition(self.servers()), timeout, what=what, interval=0.1)
        except TimeoutError as error:
            states = {name: row["status"] for name, row in self.servers().items()}
            raise AssertionError(f"{error}: {states}") from None

    def wait_for_status(
        self, expected: dict[str, str], timeout: float = STATE_TIMEOUT_SECONDS
    ) -> None:
        """Block until the named servers have the given status (UP, DOWN, DRAIN)."""
        self.wait_for_servers(
            lambda rows: all(rows[name]["status"] == status for name, status in expected.items()),
            f"status {expected}",
            timeout,
        )

    def stop(self) -> None:
        """Stop HAProxy (SIGTERM), SIGKILL if it lingers."""
        _stop(self.process, signal.SIGTERM)


def check_haproxy_config(path: Path) -> subprocess.CompletedProcess[str]:
    """``haproxy -c``: whether HAProxy accepts the configuration file, and what it said."""
    return subprocess.run(
        [binary("haproxy"), "-c", "-f", str(path)], capture_output=True, text=True
    )


def render_example_haproxy(port: int, server_ports: dict[str, int]) -> str:
    """deploy/haproxy.cfg on the given loopback ports, with the admin socket it describes (for
    :class:`HAProxy`, which fills in its path)."""
    text = EXAMPLE_HAPROXY_CFG.read_text()
    assert text.count(_EXAMPLE_BIND) == 1, f"{EXAMPLE_HAPROXY_CFG} no longer has `{_EXAMPLE_BIND}`"
    text = text.replace(_EXAMPLE_BIND, f"bind 127.0.0.1:{port}")
    for name, address in EXAMPLE_HAPROXY_SERVERS.items():
        line = f"server {name} {address}"
        assert text.count(line) == 1, f"{EXAMPLE_HAPROXY_CFG} no longer has `{line}`"
        text = text.replace(line, f"server {name} 127.0.0.1:{server_ports[name]}")
    assert text.count("\nglobal\n") == 1
    socket_line = "    stats socket {admin_socket} mode 600 level admin\n"
    return text.replace("\nglobal\n", f"\nglobal\n{socket_line}")
