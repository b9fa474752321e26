"""The lame duck between the shutdown signal and the listener's close, without gunicorn.

The server is a recorder of what the lifecycle asks of it; the app is the real one. The
invariants: nothing stops serving before the signal, requests other than probes keep the
duck alive, probes do not, the maximum ends it, and a reload, a zero maximum or an instance
nobody probes on /ready skips it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask

from app import lifecycle
from app.activity import Activity
from app.services import EXTENSION_KEY

pytestmark = pytest.mark.usefixtures("redis_client")


@dataclasses.dataclass
class RecordingServer:
    """What the lifecycle asked of the HTTP server, and when."""

    master_listens: bool = False
    serving: bool = True
    stopped_at: float | None = None
    keep_alive_refused: bool = False
    stopped: threading.Event = dataclasses.field(default_factory=threading.Event)

    def control(self) -> lifecycle.ServerControl:
        def stop() -> None:
            self.stopped_at = time.monotonic()
            self.stopped.set()

        return lifecycle.ServerControl(
            stop_serving=stop,
            refuse_keep_alive=lambda: setattr(self, "keep_alive_refused", True),
            master_listening=lambda: self.master_listens,
            serving=lambda: self.serving,
        )


def lame_duck(app: Flask, server: RecordingServer) -> threading.Thread:
    """The lame-duck thread as start_worker runs it."""
    thread = threading.Thread(target=lifecycle._serve_as_lame_duck, args=(app, server.control()))
    thread.start()
    return thread


def while_requests(app: Flask, path: str, seconds: float) -> Callable[[], None]:
    """Send GETs to ``path`` every 50 ms for ``seconds`` in a thread; returns its join."""
    client = app.test_client()

    def run() -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            client.get(path)
            time.sleep(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    return thread.join


def probed(app: Flask) -> None:
    """A balancer's readiness probe: what makes a lame duck worth having."""
    app.test_client().get("/ready")


def set_maximum(app: Flask, seconds: float) -> None:
    services = app.extensions[EXTENSION_KEY]
    services.settings = dataclasses.replace(services.settings, shutdown_lame_duck_seconds=seconds)


def test_nothing_stops_before_the_signal(app):
    server = RecordingServer()
    thread = lame_duck(app, server)
    assert not server.stopped.wait(0.3)
    lifecycle.begin_shutdown(app, reason="test")
    thread.join(5)
    assert server.stopped.is_set()


def test_an_idle_instance_stops_after_the_quiet_interval(app):
    server = RecordingServer()
    probed(app)
    thread = lame_duck(app, server)
    signalled = time.monotonic()
    lifecycle.begin_shutdown(app, reason="test")
    thread.join(5)
    assert server.keep_alive_refused
    assert server.stopped_at is not None
    assert app.extensions[EXTENSION_KEY].shutdown.lame_duck_ended_by == "quiet"
    # No request but the probe ever came, so the quiet interval has passed at once.
    assert server.stopped_at - signalled < lifecycle.LAME_DUCK_QUIET_SECONDS


def test_requests_keep_the_duck_serving_and_probes_do_not(app):
    server = RecordingServer()
    set_maximum(app, 30)
    thread = lame_duck(app, server)
    join_probes = while_requests(app, "/ready", 3.0)
    join_requests = while_requests(app, "/jobs?limit=1", 1.5)
    time.sleep(0.2)
    signalled = time.monotonic()
    lifecycle.begin_shutdown(app, reason="test")
    join_requests()
    requests_ended = time.monotonic()
    thread.join(5)
    join_probes()
    assert server.stopped_at is not None
    assert server.stopped_at > requests_ended  # served while requests came
    # then left one quiet interval after the last one, though probes went on
    assert server.stopped_at - requests_ended < lifecycle.LAME_DUCK_QUIET_SECONDS + 0.5
    assert server.stopped_at - signalled >= 1.0


def test_the_maximum_ends_the_duck_under_steady_traffic(app):
    server = RecordingServer()
    set_maximum(app, 1.0)
    probed(app)
    thread = lame_duck(app, server)
    join_requests = while_requests(app, "/jobs?limit=1", 3.0)
    time.sleep(0.2)
    signalled = time.monotonic()
    lifecycle.begin_shutdown(app, reason="test")
    thread.join(5)
    assert server.stopped_at is not None
    assert 1.0 <= server.stopped_at - signalled < 1.5
    join_requests()
    assert app.extensions[EXTENSION_KEY].shutdown.lame_duck_seconds >= 1.0
    assert app.extensions[EXTENSION_KEY].shutdown.lame_duck_ended_by == "maximum"


@pytest.mark.parametrize("case", ["reload", "disabled", "no readiness probes"])
def test_a_reload_a_zero_maximum_or_no_probes_stop_at_once(app, case):
    server = RecordingServer(master_listens=case == "reload")
    if case == "disabled":
        set_maximum(app, 0)
    if case != "no readiness probes":
        probed(app)
    join_requests = while_requests(app, "/jobs?limit=1", 1.0)
    thread = lame_duck(app, server)
    time.sleep(0.2)
    signalled = time.monotonic()
    lifecycle.begin_shutdown(app, reason="test")
    thread.join(5)
    join_requests()
    assert server.stopped_at is not None and server.stopped_at - signalled < 0.3
    assert not server.keep_alive_refused
    assert app.extensions[EXTENSION_KEY].shutdown.lame_duck_ended_by == case


def test_a_probe_older_than_the_maximum_does_not_count(app):
    server = RecordingServer()
    set_maximum(app, 0.5)
    probed(app)
    time.sleep(0.7)
    thread = lame_duck(app, server)
    lifecycle.begin_shutdown(app, reason="test")
    thread.join(5)
    assert app.extensions[EXTENSION_KEY].shutdown.lame_duck_ended_by == "no readiness probes"


def test_workers_forked_from_one_master_share_the_activity():
    activity = Activity()
    child = os.fork()
    if child == 0:  # a worker that serves a request and a probe
        activity.note("/jobs")
        activity.note("/ready")
        os._exit(0)
    os.waitpid(child, 0)
    assert activity.last_request_at > float("-inf")
    assert activity.last_readiness_probe_at > float("-inf")
    seen = activity.last_request_at
    activity.note("/health")  # liveness is no traffic
    assert activity.last_request_at == seen


def test_a_master_is_seen_holding_our_listener_only_when_it_does():
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        # This process holds it, as the master does on a reload.
        assert lifecycle.master_holds_listeners(os.getpid(), [listener])
        # The parent (pytest's launcher) never had it, as a master that closed its listeners.
        assert not lifecycle.master_holds_listeners(os.getppid(), [listener])
        assert not lifecycle.master_holds_listeners(2**22 + 1, [listener])  # no such process
    finally:
        listener.close()


def test_a_worker_that_left_its_loop_already_is_not_asked_to_again(app):
    # A SIGTERM while the worker booted reaches gunicorn's own handler, which ends the loop
    # (and closes the listeners) before the lame duck starts: nothing is left to do.
    server = RecordingServer(serving=False)
    probed(app)
    thread = lame_duck(app, server)
    lifecycle.begin_shutdown(app, reason="test")
    thread.join(5)
    assert not thread.is_alive() and server.stopped_at is None
    assert app.extensions[EXTENSION_KEY].shutdown.lame_duck_ended_by == "not serving"
