"""Shared fixtures: settings that point at the real local Redis and Neo4j, the app, a client;
and their fakeredis twins for the fast tests that need no service.

`make test` starts the services and exports REDIS_URL / NEO4J_* from .run/services.env, and
runs the suite in several processes (pytest-xdist): each uses a Redis database of its own
(1, 2, ...), so none touches another's or the data of `make run` (database 0). The tests that
reach a service (through ``service_env``) are marked ``services``; `make test-fast` runs the
others, with no service at all.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import fakeredis
import hypothesis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from neo4j import Driver, GraphDatabase

from app import create_app
from app.config import Settings
from app.jobs.store import JobStore
from app.logging_setup import flush_logs
from app.services import EXTENSION_KEY
from app.slates.demo_data import demo_slates
from app.slates.repository import SlateRepository
from tests.support.frozen_bolt import FrozenBolt
from tests.support.ports import free_port
from tests.support.services import ServicesNotConfigured
from tests.support.services import service_env as local_service_env
from tests.support.slates import count_test_nodes, hostile_slate, remove_test_slates

# This process's Redis database: 1 alone, 1 + n for pytest-xdist's worker gw<n>.
TEST_REDIS_DB = 1 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))

# Property tests (tests/test_hostile_input.py): in CI a fixed seed and no example database, so
# a run is reproducible from its log; locally a random seed and .hypothesis/ (not in git).
hypothesis.settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that reaches a real service: `make test-fast` leaves them out."""
    for item in items:
        if "service_env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.services)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Once every process is done (in the one that ran them all, or xdist's controller): take
    the suite's own slates out of Neo4j, which `make run` serves too, and fail if any is left."""
    if hasattr(session.config, "workerinput"):
        return
    try:
        env = local_service_env(TEST_REDIS_DB)
    except ServicesNotConfigured:
        return  # a run without services wrote nothing there
    with _neo4j_driver(env) as driver:
        remove_test_slates(driver)
        left = count_test_nodes(driver)
    if left:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nthe suite left {left} node(s) of its own in Neo4j")  # noqa: T201


def _neo4j_driver(env: dict[str, str]) -> Driver:
    return GraphDatabase.driver(env["NEO4J_URI"], auth=(env["NEO4J_USER"], env["NEO4J_PASSWORD"]))


@pytest.fixture(scope="session")
def service_env() -> dict[str, str]:
    """Environment variables that reach the real local services (this process's database)."""
    try:
        return local_service_env(TEST_REDIS_DB)
    except ServicesNotConfigured as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def seeded_slates(service_env: dict[str, str], tmp_path_factory) -> Iterator[list[dict]]:
    """The demo slates and one named with markup, loaded into the real Neo4j once per process.

    Seeding is idempotent; processes take turns (a file lock in the run's shared temporary
    folder), so two never merge the same nodes at once.
    """
    lock_path = Path(tmp_path_factory.getbasetemp()).parent / "seed-slates.lock"
    driver = _neo4j_driver(service_env)
    repository = SlateRepository(driver, timeout_seconds=30)
    slates = [*demo_slates(), hostile_slate()]
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        repository.ensure_schema()
        repository.seed(slates)
    yield slates
    driver.close()


@pytest.fixture
def settings(service_env: dict[str, str], tmp_path) -> Settings:
    """Settings for an in-process app: real services, job threads off, logs under tmp_path."""
    return Settings.from_env(
        {**service_env, "JOB_CONCURRENCY": "0", "LOG_FILE": str(tmp_path / "app.log")}
    )


@pytest.fixture
def redis_client(service_env: dict[str, str]) -> Iterator[redis.Redis]:
    """A client on this process's test database, emptied before and after the test."""
    client = redis.Redis.from_url(service_env["REDIS_URL"], decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def store(redis_client: redis.Redis) -> JobStore:
    """A job store on the emptied test database of the real Redis."""
    return JobStore(redis_client, ttl_seconds=3600)


def _app_for_a_test(settings: Settings) -> Iterator[Flask]:
    """The app the factory builds from ``settings``, for one test; its clients closed after."""
    application = create_app(settings)
    application.config["TESTING"] = True
    flush_logs()  # the start-up lines are written before the test's own output begins
    yield application
    application.extensions[EXTENSION_KEY].close()


@pytest.fixture
def app(settings: Settings, redis_client: redis.Redis) -> Iterator[Flask]:
    """The app built by the factory with test settings."""
    yield from _app_for_a_test(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()


@pytest.fixture
def fake_redis() -> Iterator[fakeredis.FakeRedis]:
    """An in-process Redis (fakeredis, Lua included) of the test's own: for fast unit tests of
    the Python around the store; the scripts' own tests run against the real Redis."""
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def fake_store(fake_redis: fakeredis.FakeRedis) -> JobStore:
    """A job store on fakeredis."""
    return JobStore(fake_redis, ttl_seconds=3600)


@pytest.fixture
def fake_app(fake_redis: fakeredis.FakeRedis, tmp_path, monkeypatch) -> Iterator[Flask]:
    """The app built by the factory, every Redis client of it on ``fake_redis``'s server and
    Neo4j at a port where nothing listens: the HTTP contract with no service running."""
    server = fake_redis.connection_pool.connection_kwargs["server"]
    monkeypatch.setattr(
        "app.services.create_redis",
        lambda settings, **_: fakeredis.FakeRedis(server=server, decode_responses=True),
    )
    nowhere = free_port()
    yield from _app_for_a_test(
        Settings(
            redis_url=f"redis://127.0.0.1:{nowhere}/0",
            neo4j_uri=f"bolt://127.0.0.1:{nowhere}",
            neo4j_password="unused",
            job_concurrency=0,
            log_file=str(tmp_path / "app.log"),
        )
    )


@pytest.fixture
def fake_client(fake_app: Flask) -> FlaskClient:
    """A test client of the app on fakeredis."""
    return fake_app.test_client()


@pytest.fixture
def freezable_neo4j(service_env: dict[str, str]) -> Iterator[FrozenBolt]:
    """A Bolt proxy in front of the local Neo4j that the test can freeze and thaw.

    Ask for it before ``gunicorn``, so the instances stop before it goes.
    """
    upstream = urlsplit(service_env["NEO4J_URI"]).port
    assert upstream is not None
    proxy = FrozenBolt(upstream).start()
    yield proxy
    proxy.stop()
