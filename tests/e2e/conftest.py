"""Fixtures for end-to-end tests: gunicorn instances on the real Redis and Neo4j."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
import redis

from tests.support.browser import Browser
from tests.support.gunicorn import Gunicorn
from tests.support.ports import free_port
from tests.support.toxiproxy import Proxy, ToxiproxyServer

# Short timings so crash recovery and drains are observed in seconds, not minutes.
FAST_JOB_TIMINGS = {
    "JOB_LEASE_SECONDS": "9",
    "JOB_HEARTBEAT_SECONDS": "0.5",
    "JOB_SWEEP_SECONDS": "0.5",
}


@pytest.fixture
def gunicorn(
    service_env: dict[str, str], redis_client: redis.Redis, tmp_path, seeded_slates
) -> Iterator[Callable[..., Gunicorn]]:
    """Start gunicorn instances with extra environment; all are stopped after the test.

    ``port`` restarts an instance where a load balancer expects it; by default a free one.
    """
    instances: list[Gunicorn] = []

    def start(wait: bool = True, port: int | None = None, **env: str) -> Gunicorn:
        merged = {**service_env, "WEB_CONCURRENCY": "1", **FAST_JOB_TIMINGS, **env}
        instance = Gunicorn(env=merged, log_dir=tmp_path, port=port or free_port())
        instances.append(instance)  # before start: one that fails to serve is stopped too
        return instance.start(wait=wait)

    yield start
    for instance in instances:
        instance.stop()


@pytest.fixture
def browser() -> Iterator[Callable[[Gunicorn], Browser]]:
    """Open a headless chromium on an instance; closed after the test."""
    sessions: list[Browser] = []

    def open_on(server: Gunicorn) -> Browser:
        sessions.append(Browser(f"http://127.0.0.1:{server.port}"))
        return sessions[-1]

    yield open_on
    for session in sessions:
        session.close()


@pytest.fixture(scope="session")
def toxiproxy(tmp_path_factory) -> Iterator[ToxiproxyServer]:
    """One Toxiproxy server for the session; each test makes its own proxies."""
    server = ToxiproxyServer(tmp_path_factory.mktemp("toxiproxy")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_proxy(toxiproxy: ToxiproxyServer, service_env: dict[str, str]) -> Iterator[Proxy]:
    """A Toxiproxy proxy in front of the test Redis, with no toxic; removed after the test.

    Ask for it before ``gunicorn``, so the instances stop before the proxy goes.
    """
    upstream = urlsplit(service_env["REDIS_URL"])
    assert upstream.port is not None
    proxy = toxiproxy.proxy(f"redis-{uuid.uuid4().hex[:8]}", upstream.port)
    yield proxy
    toxiproxy.call("DELETE", f"/proxies/{proxy.name}")
