"""Toxiproxy, Shopify's TCP fault injector, run as a real process and driven over its HTTP API.

A proxy sits between the service and a dependency; toxics on it change what crosses: held
replies (``latency`` downstream), replies dropped on a connection that stays open (``timeout``
with ``timeout=0``: the connections are closed when the toxic is removed), resets, and so on.
`make tools` builds the server into the cache (scripts/install-tools.sh).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.support.http import request
from tests.support.ports import free_port
from tests.support.processes import spawn
from tests.support.waiting import wait_until

# Where `make tools` puts the server, unless SLATESIM_CACHE_DIR moves the cache.
CACHE_BIN = (
    Path(
        os.environ.get("SLATESIM_CACHE_DIR")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slatesim"
    )
    / "bin"
)
START_TIMEOUT_SECONDS = 10.0


class ToxiproxyNotInstalled(RuntimeError):
    """The server binary is missing: `make tools` builds it."""


def server_binary() -> str:
    """The toxiproxy-server executable: the cache's, else one on PATH."""
    cached = CACHE_BIN / "toxiproxy-server"
    if cached.exists():
        return str(cached)
    found = shutil.which("toxiproxy-server")
    if found is None:
        raise ToxiproxyNotInstalled("toxiproxy-server is not installed: `make tools` builds it")
    return found


@dataclass
class Proxy:
    """One proxy of a running server: clients connect to ``port``, it forwards to upstream."""

    server: ToxiproxyServer
    name: str
    port: int

    def url_for(self, url: str) -> str:
        """``url`` (a redis:// or bolt:// URL of the upstream) pointed at this proxy instead."""
        parts = urlsplit(url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{self.port}" if auth else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def add_toxic(
        self, kind: str, *, stream: str = "downstream", name: str | None = None, **attributes: Any
    ) -> str:
        """Add a toxic (``latency``, ``timeout``, ``reset_peer``, ...); return its name."""
        toxic = {
            "name": name or f"{kind}_{stream}",
            "type": kind,
            "stream": stream,
            "toxicity": 1.0,
            "attributes": attributes,
        }
        self.server.call("POST", f"/proxies/{self.name}/toxics", toxic)
        return str(toxic["name"])

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic; data it held goes on (latency) or its connections close (timeout)."""
        self.server.call("DELETE", f"/proxies/{self.name}/toxics/{name}")

    @contextlib.contextmanager
    def toxic(self, kind: str, *, stream: str = "downstream", **attributes: Any) -> Iterator[str]:
        """A toxic for the duration of a block."""
        name = self.add_toxic(kind, stream=stream, **attributes)
        try:
            yield name
        finally:
            self.remove_toxic(name)

    def clear(self) -> None:
        """Remove every toxic."""
        for toxic in self.server.call("GET", f"/proxies/{self.name}/toxics"):
            self.remove_toxic(toxic["name"])


@dataclass
class ToxiproxyServer:
    """toxiproxy-server on a free loopback port; its output in ``directory``."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ToxiproxyServer:
        """Start the server and wait until its API answers."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = spawn(
            [server_binary(), "-host", "127.0.0.1", "-port", str(self.port)],
            self.directory / "toxiproxy.out",
        )
        wait_until(self._answers, START_TIMEOUT_SECONDS, what="Toxiproxy's API")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("toxiproxy-server exited at start")
        try:
            return request(self.port, "GET", "/version", timeout=1).status == 200
        except OSError:
            return False

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call; its decoded JSON answer (raises on an HTTP error)."""
        response = request(self.port, method, path, body, timeout=5)
        if response.status >= 300:
            raise RuntimeError(f"Toxiproxy {method} {path}: {response.status} {response.body!r}")
        if isinstance(response.body, bytes):
            return json.loads(response.body) if response.body else None
        return response.body

    def proxy(self, name: str, upstream_port: int) -> Proxy:
        """A new proxy on a free loopback port in front of 127.0.0.1:``upstream_port``."""
        port = free_port()
        self.call(
            "POST",
            "/proxies",
            {
                "name": name,
                "listen": f"127.0.0.1:{port}",
                "upstream": f"127.0.0.1:{upstream_port}",
                "enabled": True,
            },
        )
        return Proxy(self, name, port)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.call("POST", "/reset")

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
