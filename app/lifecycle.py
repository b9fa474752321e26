"""Worker lifecycle: start job threads after the fork, stop intake at the signal, drain at exit.

gunicorn.conf.py's hooks are one-line calls into this module, so the draining logic is tested
without gunicorn too. The timeline of a shutdown (see docs/operations.md):
1. SIGTERM/SIGINT/SIGQUIT reaches the worker: ``begin_shutdown`` (our handler, in place of
   gunicorn's) refuses new jobs and makes /ready answer 503 at once, stops the job threads'
   claiming, and records the moment: the drain deadline counts from it.
2. Lame duck: the worker goes on serving every other request, each answered with
   ``Connection: close``, until no request but a probe has reached the instance for
   LAME_DUCK_QUIET_SECONDS (the balancer has taken it out) or SHUTDOWN_LAME_DUCK_SECONDS have
   passed. Then it leaves its request loop: it takes the connections already queued, closes
   its listeners (app/gunicorn_worker.py) and finishes in-flight requests. Skipped when no
   readiness probe came within SHUTDOWN_LAME_DUCK_SECONDS before the signal (nothing routes
   on /ready, so only a refused connection tells a balancer) and on a reload (SIGHUP: the
   master keeps the listeners, new workers serve).
3. gunicorn calls ``worker_exit``: ``drain_worker`` waits for running jobs until the deadline,
   hands back the stragglers, and keeps the worker's heartbeat to the master alive meanwhile.
4. The master's ``on_exit`` hands back, through Redis, any job still running under it
   (``app.master``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from flask import Flask, request

from app.activity import Activity
from app.logging_setup import flush_logs
from app.services import services

logger = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# A lame duck that has had no request but probes for this long is out of its balancer's
# rotation; a balancer that still routes to it sends requests far more often than that.
LAME_DUCK_QUIET_SECONDS = 1.0
# How often the lame duck looks at the time of the last request.
LAME_DUCK_POLL_SECONDS = 0.05
# A draining worker tells the master it is alive this often (seconds), well under gunicorn's
# heartbeat timeout, so a worker recycled by max_requests or SIGHUP is not killed mid-drain.
DRAIN_HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True)
class ServerControl:
    """What the lifecycle needs from the worker's HTTP server (gunicorn's, in production)."""

    stop_serving: Callable[[], None]  # leave the request loop gracefully (gunicorn's SIGTERM)
    refuse_keep_alive: Callable[[], None]  # every response from now on closes its connection
    master_listening: Callable[[], bool]  # the master holds the listeners: a reload, not a stop
    serving: Callable[[], bool]  # the worker is still in its request loop


def start_worker(
    app: Flask,
    *,
    instance_id: str,
    server: ServerControl,
    activity: Activity | None = None,
    master_heartbeat: Callable[[], None] | None = None,
) -> None:
    """Start the job threads of this worker, its lame-duck thread, and the signal handlers.

    ``activity`` is the instance's, shared with the other workers (:func:`instance_activity`);
    ``master_heartbeat`` (see :func:`heartbeat_through`) is kept for the drain at exit.
    """
    shutdown = services(app).shutdown
    shutdown.master_heartbeat = master_heartbeat
    if activity is not None:
        shutdown.activity = activity
    for signum in SHUTDOWN_SIGNALS:  # first: a signal from now on begins a graceful shutdown
        signal.signal(signum, _shutdown_handler(app))
    services(app).runner.start(instance_id)
    threading.Thread(
        target=_serve_as_lame_duck, args=(app, server), name="lame-duck", daemon=True
    ).start()


def _shutdown_handler(app: Flask) -> Callable[[int, FrameType | None], None]:
    """Our handler for SIGTERM, SIGINT and SIGQUIT, in place of gunicorn's.

    It only begins the shutdown; the lame-duck thread tells gunicorn when to stop serving.
    gunicorn's own SIGINT/SIGQUIT handler shuts its thread pool down from inside the signal
    handler, which deadlocks when the signal lands while the main thread is submitting to that
    pool (a Ctrl-C right after a request hung the worker in our tests); and the contract is
    the same drain for all three anyway.
    """

    def handler(received: int, frame: FrameType | None) -> None:
        begin_shutdown(app, reason=signal.Signals(received).name)

    return handler


def init_app(app: Flask) -> None:
    """Note every request's arrival for the lame duck (probes apart from the rest)."""

    def note_request() -> None:
        services(app).shutdown.activity.note(request.path)

    app.before_request(note_request)


def _serve_as_lame_duck(app: Flask, server: ServerControl) -> None:
    """From the shutdown signal until the balancer stops routing here, then stop serving.

    Skipped when nothing would take the instance out on its /ready: no readiness probe came
    within SHUTDOWN_LAME_DUCK_SECONDS before the signal (nginx without active checks, a
    client calling directly), where closing the listener at once is what tells a balancer
    (its connection is refused and it retries elsewhere); or on a reload.
    """
    svc = services(app)
    shutdown = svc.shutdown
    shutdown.began.wait()
    began = shutdown.began_at or time.monotonic()
    limit = svc.settings.shutdown_lame_duck_seconds
    activity = shutdown.activity
    if not server.serving():  # e.g. a SIGTERM while it booted: gunicorn's handler ended the loop
        ended_by = "not serving"
    elif limit <= 0:
        ended_by = "disabled"
    elif began - activity.last_readiness_probe_at > limit:
        ended_by = "no readiness probes"
    elif server.master_listening():
        ended_by = "reload"
    else:
        server.refuse_keep_alive()
        while True:
            now = time.monotonic()
            if now - activity.last_request_at >= LAME_DUCK_QUIET_SECONDS:
                ended_by = "quiet"
                break
            if now - began >= limit:
                ended_by = "maximum"
                break
            time.sleep(LAME_DUCK_POLL_SECONDS)
    shutdown.lame_duck_seconds = round(time.monotonic() - began, 3)
    shutdown.lame_duck_ended_by = ended_by
    if ended_by != "not serving":
        server.stop_serving()


def master_holds_listeners(master_pid: int, listeners: Iterable[Any]) -> bool:
    """Whether the master still has our listening sockets open (Linux /proc; else False).

    gunicorn's master closes its listeners before it signals the workers to stop, and keeps
    them on a reload; so a worker that finds them at the master's is being replaced, not
    stopped, and needs no lame duck.
    """
    inodes = {os.fstat(listener.fileno()).st_ino for listener in listeners}
    try:
        for fd in os.listdir(f"/proc/{master_pid}/fd"):
            target = os.readlink(f"/proc/{master_pid}/fd/{fd}")
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                return True
    except (OSError, ValueError):
        return False
    return False


def begin_shutdown(app: Flask, *, reason: str) -> None:
    """Refuse new jobs and stop claiming at once; remember when and why, for the drain.

    Called from signal handlers, so it only sets flags: no logging, which could deadlock on a
    lock the interrupted code holds. ``drain_worker`` logs the shutdown.
    """
    svc = services(app)
    if svc.shutdown.begin(reason):
        svc.runner.stop_claiming()


def drain_worker(app: Flask) -> list[str]:
    """Wait for running jobs until the deadline, hand back stragglers; return their IDs.

    The deadline is SHUTDOWN_TIMEOUT_SECONDS after the shutdown signal, or after now when the
    worker exits without one (max_requests recycling).
    """
    begin_shutdown(app, reason="worker exit")
    svc = services(app)
    shutdown = svc.shutdown
    heartbeat = shutdown.master_heartbeat
    remaining = shutdown.seconds_left(svc.settings.shutdown_timeout_seconds)
    running = svc.runner.running_job_ids()
    logger.info(
        "draining jobs",
        extra={
            "running_jobs": len(running),
            "remaining_seconds": round(max(remaining, 0), 3),
            "lame_duck_seconds": shutdown.lame_duck_seconds,
            "lame_duck_ended_by": shutdown.lame_duck_ended_by,
        },
    )
    stop_beating = threading.Event()
    if heartbeat is not None:
        threading.Thread(
            target=_beat, args=(heartbeat, stop_beating), name="drain-heartbeat", daemon=True
        ).start()
    try:
        stragglers = svc.runner.drain(remaining)
    finally:
        stop_beating.set()
    logger.info(
        "worker drained",
        extra={"finished_jobs": len(running) - len(stragglers), "handed_back": len(stragglers)},
    )
    svc.close()
    flush_logs()
    return stragglers


def heartbeat_through(fileno: int) -> Callable[[], None]:
    """A heartbeat for the master that still works inside ``worker_exit``.

    gunicorn closes the worker's heartbeat file just before it calls ``worker_exit``, so a
    draining worker could not tell the master it is alive and would be killed after ``timeout``
    (seen with max_requests recycling and SIGHUP). A duplicate of the descriptor, taken after
    the fork, keeps the file reachable; the beat is the update gunicorn itself makes: the
    file's times set to the monotonic clock.
    """
    duplicate = os.dup(fileno)

    def beat() -> None:
        now = time.monotonic()
        os.utime(duplicate, (now, now))

    return beat


def _beat(heartbeat: Callable[[], Any], stop: threading.Event) -> None:
    while not stop.wait(DRAIN_HEARTBEAT_SECONDS):
        heartbeat()
