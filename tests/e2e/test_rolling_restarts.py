"""Rolling restarts behind stock balancers cost clients nothing but ``503 shutting_down``.

Two instances behind a balancer configured as a new user would write it (HAProxy with the
ordinary health-checked backend, nginx with a plain ``upstream``), four clients posting jobs
steadily without an Idempotency-Key and one polling GETs, then each instance in turn sent
SIGTERM and replaced on the same port, twice over. The invariant: no answer is a 5xx other
than ``503`` with ``Retry-After``, no request fails to connect or is cut off, and every
accepted job ends ``complete``. Also, from the instance's side: a lame duck keeps serving
while traffic comes and leaves once it stops, or at SHUTDOWN_LAME_DUCK_SECONDS.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.balancers import HAProxy, Nginx
from tests.support.gunicorn import Gunicorn
from tests.support.http import request
from tests.support.load import ClientThreads
from tests.support.ports import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e
logger = logging.getLogger(__name__)

JOB = {"slate_id": "nba-2026-11-28-showdown-bos-nyk", "scenario_count": 500}
# A job on the 500-player slate that runs for a few seconds here.
SLOW_JOB = {"slate_id": "nfl-2026-11-29-main", "scenario_count": 300_000}
CLIENTS = 4
SERVERS = ("app1", "app2")

# What a user writes: a health-checked backend and nothing more (no retry-on, no drain).
STOCK_HAPROXY = """
global
    stats socket {admin_socket} mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    retries 2
    option redispatch
frontend web
    bind 127.0.0.1:%(port)d
    default_backend slatesim
backend slatesim
    option httpchk
    http-check send meth GET uri /ready
    default-server inter 500ms fall 2 rise 2
    server app1 127.0.0.1:%(app1)d check
    server app2 127.0.0.1:%(app2)d check
"""

# A plain upstream, every proxy setting at nginx's defaults; or with the usual upstream
# keep-alive added (as in deploy/nginx.conf).
STOCK_NGINX = """
pid nginx.pid;
events {}
http {
    access_log logs/access.log;
    upstream slatesim {
        server 127.0.0.1:%(app1)d;
        server 127.0.0.1:%(app2)d;
        %(upstream_extra)s
    }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://slatesim;
            %(location_extra)s
        }
    }
}
"""
NGINX_VARIANTS = {
    "defaults": {"upstream_extra": "", "location_extra": ""},
    "upstream keep-alive": {
        "upstream_extra": "keepalive 16; keepalive_timeout 4s;",
        "location_extra": 'proxy_http_version 1.1; proxy_set_header Connection "";',
    },
}


@dataclass
class Traffic(ClientThreads):
    """Clients posting jobs steadily and one polling GETs, through the balancer."""

    port: int
    accepted: list[str] = field(default_factory=list)
    refused: int = 0  # 503 with Retry-After: allowed
    errors: list[Any] = field(default_factory=list)
    sent: int = 0

    def targets(self) -> list[Callable[[], None]]:
        return [self._post] * CLIENTS + [self._poll]

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        self.sent += 1
        try:
            response = request(self.port, method, path, body, timeout=30)
        except (OSError, http.client.HTTPException) as error:
            self.errors.append(f"{method} {path}: {error!r}")
            return None
        if response.status == 503 and "retry-after" in response.headers:
            self.refused += 1
        elif response.status >= 500:
            self.errors.append((method, path, response.status, response.body))
        return response

    def _post(self) -> None:
        while not self.stop.is_set():
            response = self._send("POST", "/jobs", JOB)
            if response is not None and response.status == 202:
                self.accepted.append(response.body["id"])
            time.sleep(0.05)

    def _poll(self) -> None:
        while not self.stop.is_set():
            self._send("GET", "/jobs?limit=5")
            time.sleep(0.05)


@pytest.fixture
def pair(gunicorn) -> Callable[..., dict[str, Gunicorn]]:
    """Two instances on free ports, restartable on the same port."""

    def start(**env: str) -> dict[str, Gunicorn]:
        return {name: gunicorn(**env) for name in SERVERS}

    return start


def lame_duck_endings(server: Gunicorn) -> list[str]:
    """What ended the lame duck of each of the instance's workers ("draining jobs" lines)."""
    return [
        line["context"]["lame_duck_ended_by"]
        for line in server.json_lines()
        if line.get("message") == "draining jobs"
    ]


def roll(
    instances: dict[str, Gunicorn],
    start: Callable[[int], Gunicorn],
    back_in_rotation: Callable[[str], None],
    rounds: int = 2,
) -> list[str]:
    """Restart each instance in turn, ``rounds`` times: SIGTERM, exit, a new one, back in.

    Returns what ended each stopped worker's lame duck, in order.
    """
    ended_by = []
    for _ in range(rounds):
        for name in SERVERS:
            old = instances[name]
            old.terminate()
            assert old.wait_exit(120) == 0
            ended_by += lame_duck_endings(old)  # before its replacement appends to the output
            instances[name] = start(old.port)
            back_in_rotation(name)
    return ended_by


def assert_clean(traffic: Traffic, instances: dict[str, Gunicorn]) -> None:
    """Nothing but 503 with Retry-After, no connection error, every accepted job complete."""
    logger.warning(  # the counts, for a report: pytest -rP shows them
        "sent %d, accepted %d, 503 with Retry-After %d, errors %d",
        traffic.sent,
        len(traffic.accepted),
        traffic.refused,
        len(traffic.errors),
    )
    assert not traffic.errors, traffic.errors[:10]
    assert len(traffic.accepted) > 50, traffic
    survivor = instances[SERVERS[-1]]
    for job_id in traffic.accepted:
        record = survivor.wait_for_job(job_id, {"complete", "failed"}, timeout=120)
        assert record["state"] == "complete", record


@pytest.fixture
def stock_haproxy(tmp_path) -> Iterator[Callable[[dict[str, Gunicorn]], HAProxy]]:
    """HAProxy with the stock configuration in front of two instances."""
    started: list[HAProxy] = []

    def start(instances: dict[str, Gunicorn]) -> HAProxy:
        port = free_port()
        ports = {name: instance.port for name, instance in instances.items()}
        config = STOCK_HAPROXY % {"port": port, **ports}
        haproxy = HAProxy(tmp_path / "haproxy", config, "slatesim", port)
        started.append(haproxy.start())
        haproxy.wait_for_status(dict.fromkeys(SERVERS, "UP"))
        return haproxy

    yield start
    for haproxy in started:
        haproxy.stop()


def test_a_rolling_restart_behind_stock_haproxy_costs_clients_nothing(
    gunicorn, pair, stock_haproxy
):
    instances = pair()
    haproxy = stock_haproxy(instances)
    with Traffic(haproxy.port) as traffic:
        time.sleep(1)
        ended_by = roll(
            instances,
            lambda port: gunicorn(port=port),
            lambda name: haproxy.wait_for_status({name: "UP"}),
        )
        time.sleep(1)
    assert_clean(traffic, instances)
    # HAProxy's checks took each instance out, then its traffic stopped.
    assert ended_by == ["quiet"] * 4


def receives_submissions(instance: Gunicorn) -> bool:
    """Whether a balancer routes submissions to this instance (its log is its own run's)."""
    return any(line.get("message") == "job submitted" for line in instance.json_lines())


@pytest.mark.parametrize("variant", NGINX_VARIANTS)
def test_a_rolling_restart_behind_stock_nginx_costs_clients_nothing(
    gunicorn, pair, tmp_path, variant
):
    # nginx has no active checks, so nothing probes /ready and an instance skips its lame
    # duck: it closes its port at the signal, nginx's connection is refused and it takes the
    # other server, leaving this one out for fail_timeout (10 s). An operator rolls on once
    # nginx routes to the replacement again, as the roll does here.
    instances = pair()
    port = free_port()
    ports = {name: instance.port for name, instance in instances.items()}
    config = STOCK_NGINX % {"port": port, **ports, **NGINX_VARIANTS[variant]}
    nginx = Nginx(tmp_path / "nginx", config, port).start()

    def back_in_rotation(name: str) -> None:
        wait_until(lambda: receives_submissions(instances[name]), 30, what=f"nginx sends to {name}")

    try:
        with Traffic(port) as traffic:
            time.sleep(1)
            ended_by = roll(instances, lambda p: gunicorn(port=p), back_in_rotation)
            time.sleep(1)
    finally:
        nginx.stop()
    assert_clean(traffic, instances)
    assert ended_by == ["no readiness probes"] * 4


@dataclass
class Requests:
    """GETs of one path straight to an instance, one after another, with what they got."""

    server: Gunicorn
    path: str = "/jobs?limit=1"
    interval: float = 0.05
    # (when, status, Connection header) of each answer
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def __enter__(self) -> Requests:
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()

    def end(self) -> None:
        """Stop sending and wait for the last request."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                response = self.server.request("GET", self.path, timeout=5)
            except (OSError, http.client.HTTPException):
                return  # the instance has closed its port
            self.answers.append(
                (time.monotonic(), response.status, response.headers.get("connection", ""))
            )
            time.sleep(self.interval)


def balancer_probes(server: Gunicorn) -> Requests:
    """A balancer's readiness checks, twice a second."""
    return Requests(server, "/ready", 0.5)


def test_an_idle_instance_behind_a_probing_balancer_exits_within_two_seconds(gunicorn):
    server = gunicorn(WEB_CONCURRENCY="2")
    with balancer_probes(server):
        time.sleep(1.2)
        signalled = time.monotonic()
        server.terminate()
        assert server.wait_exit(10) == 0
    assert time.monotonic() - signalled < 2.0
    assert lame_duck_endings(server) == ["quiet", "quiet"]


def test_a_lame_duck_serves_while_traffic_comes_and_leaves_once_it_stops(gunicorn):
    server = gunicorn(SHUTDOWN_LAME_DUCK_SECONDS="30")
    with balancer_probes(server), Requests(server) as client:
        time.sleep(1)
        signalled = time.monotonic()
        server.terminate()
        time.sleep(2.5)
        ready = server.request("GET", "/ready")
        submitted = server.request("POST", "/jobs", JOB)
        assert ready.status == 503 and ready.body["status"] == "shutting_down"
        assert submitted.status == 503 and submitted.body["error"]["code"] == "shutting_down"
        assert "retry-after" in submitted.headers
        assert server.process is not None and server.process.poll() is None  # still serving
        client.end()
        stopped = time.monotonic()
        assert server.wait_exit(10) == 0
        assert time.monotonic() - stopped < 2.5  # the quiet second, then an idle exit
    during = [answer for answer in client.answers if answer[0] > signalled + 0.1]
    assert len(during) > 20 and all(status == 200 for _, status, _ in during)
    assert all(connection == "close" for _, _, connection in during)
    assert lame_duck_endings(server) == ["quiet"]


def test_a_lame_duck_under_steady_traffic_leaves_at_its_maximum_and_its_job_completes(
    gunicorn, store
):
    server = gunicorn(SHUTDOWN_LAME_DUCK_SECONDS="3")
    job = server.request("POST", "/jobs", SLOW_JOB)
    assert job.status == 202, job.body
    with balancer_probes(server), Requests(server) as client:
        server.wait_for_job(job.body["id"], {"running"}, timeout=20)
        signalled = time.monotonic()
        server.terminate()
        assert server.wait_exit(60) == 0
        elapsed = time.monotonic() - signalled
    assert elapsed >= 3.0, elapsed
    last_answer = max(when for when, _, _ in client.answers)
    assert last_answer - signalled >= 2.5  # served until near the maximum
    (line,) = [line for line in server.json_lines() if line.get("message") == "draining jobs"]
    assert line["context"]["lame_duck_ended_by"] == "maximum"
    assert line["context"]["lame_duck_seconds"] >= 3.0
    assert store.get(job.body["id"]).to_dict()["state"] == "complete"  # drained, not handed back


def test_a_reload_replaces_workers_without_a_lame_duck(gunicorn):
    server = gunicorn(WEB_CONCURRENCY="2", SHUTDOWN_LAME_DUCK_SECONDS="30")
    with balancer_probes(server), Requests(server) as client:
        time.sleep(1)
        server.signal(1)  # SIGHUP

        def drained() -> list[dict[str, Any]]:
            return [line for line in server.json_lines() if line.get("message") == "worker drained"]

        wait_until(lambda: len(drained()) >= 2, 10, what="both old workers drained")
    assert client.answers and all(status == 200 for _, status, _ in client.answers)
    assert lame_duck_endings(server) == ["reload", "reload"]
