"""A throwaway redis-server on a free loopback port, for tests that stop and restart Redis."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.ports import free_port
from tests.support.processes import spawn
from tests.support.waiting import wait_until

# Seconds a fresh redis-server may take to accept connections.
START_TIMEOUT_SECONDS = 10.0


@dataclass
class RedisServer:
    """redis-server with its data under ``directory``; ``persistent`` keeps an AOF there,
    written through to the disk before each reply when ``fsync_always``.

    A restart (``stop`` or ``kill``, then ``start``) keeps the port and, when persistent, the
    data.
    """

    directory: Path
    password: str | None = None
    persistent: bool = True
    fsync_always: bool = False
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL the app should use, password included."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None, "redis-server was not started"
        return self.process.pid

    def start(self) -> RedisServer:
        """Start (or restart) the server and wait until it answers."""
        self.port = self.port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.directory), "--save", ""]
        args += ["--appendonly", "yes" if self.persistent else "no"]
        args += ["--appendfsync", "always" if self.fsync_always else "everysec"]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = spawn(args, None)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            wait_until(
                lambda: self._answers(client),
                START_TIMEOUT_SECONDS,
                what=f"redis-server on port {self.port}",
            )
        finally:
            client.close()
        return self

    def _answers(self, client: redis.Redis) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited at start")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM: it flushes its AOF); its data stays in ``directory``."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL the server: nothing is flushed that was not written already."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
