"""Worker lifecycle: start job threads after the fork, stop intake at the signal, drain at exit.

gunicorn.conf.py's hooks are one-line calls into this module, so the draining logic is tested
without gunicorn too. The timeline of a shutdown (see docs/operations.md):
1. SIGTERM/SIGINT/SIGQUIT reaches the worker: ``begin_shutdown`` (chained in front of gunicorn's
   own handler, which only sets a flag) refuses new jobs and stops the job threads' claiming
   at once, and records the moment: the drain deadline counts from it.
2. gunicorn finishes in-flight requests, leaves its loop and calls ``worker_exit``:
   ``drain_worker`` waits for running jobs until the deadline, hands back the stragglers, and
   keeps the worker's heartbeat to the master alive meanwhile.
3. The master's ``on_exit`` hands back, through Redis, any job still running under it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, cast

import redis
from flask import Flask

from app.config import Settings
from app.connections import create_redis
from app.correlation import new_id
from app.jobs.store import JobStore
from app.logging_setup import flush_logs
from app.services import EXTENSION_KEY, Services

logger = logging.getLogger(__name__)

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# A draining worker tells the master it is alive this often (seconds), well under gunicorn's
# heartbeat timeout, so a worker recycled by max_requests or SIGHUP is not killed mid-drain.
DRAIN_HEARTBEAT_SECONDS = 1.0


_master_instance_id: str | None = None


def master_instance_id() -> str:
    """The gunicorn master's identity in job records: a ULID made once, in the master.

    gunicorn.conf.py asks for it in ``on_starting``, before the first fork, so every worker
    inherits the same value and the master's ``on_exit`` hands back exactly their jobs. It is
    unique across hosts, containers and restarts, unlike ``host:pid``: containers that share a
    host name (host networking) all run their master as pid 1. A SIGHUP reload keeps it (this
    module stays imported in the master); a new master process makes its own.
    """
    global _master_instance_id
    if _master_instance_id is None:
        _master_instance_id = new_id()
    return _master_instance_id


def _services(app: Flask) -> Services:
    return cast(Services, app.extensions[EXTENSION_KEY])


def start_worker(
    app: Flask, *, instance_id: str, master_heartbeat: Callable[[], None] | None = None
) -> None:
    """Start the job threads of this worker and chain the shutdown signal handlers.

    ``master_heartbeat`` (see :func:`heartbeat_through`) is kept for the drain at exit.
    """
    svc = _services(app)
    svc.master_heartbeat = master_heartbeat
    svc.runner.start(instance_id)
    _chain_signals(app)


def _chain_signals(app: Flask) -> None:
    """Put our handler in front of gunicorn's for SIGTERM, SIGINT and SIGQUIT.

    All three lead to gunicorn's graceful SIGTERM handler (which only flags the loop to stop).
    gunicorn's own SIGINT/SIGQUIT handler shuts its thread pool down from inside the signal
    handler, which deadlocks when the signal lands while the main thread is submitting to that
    pool (a Ctrl-C right after a request hung the worker in our tests); and the contract is
    the same drain for all three anyway.
    """
    graceful = signal.getsignal(signal.SIGTERM)

    def handler(received: int, frame: FrameType | None) -> None:
        begin_shutdown(app, reason=signal.Signals(received).name)
        if callable(graceful):
            graceful(received, frame)

    for signum in SHUTDOWN_SIGNALS:
        signal.signal(signum, handler)


def begin_shutdown(app: Flask, *, reason: str) -> None:
    """Refuse new jobs and stop claiming at once; remember when and why, for the drain.

    Called from signal handlers, so it only sets flags: no logging, which could deadlock on a
    lock the interrupted code holds. ``drain_worker`` logs the shutdown.
    """
    svc = _services(app)
    if svc.shutting_down.is_set():
        return
    svc.shutdown_began_at = time.monotonic()
    svc.shutdown_reason = reason
    svc.shutting_down.set()
    svc.runner.stop_claiming()


def drain_worker(app: Flask) -> list[str]:
    """Wait for running jobs until the deadline, hand back stragglers; return their IDs.

    The deadline is SHUTDOWN_TIMEOUT_SECONDS after the shutdown signal, or after now when the
    worker exits without one (max_requests recycling).
    """
    begin_shutdown(app, reason="worker exit")
    svc = _services(app)
    heartbeat = svc.master_heartbeat
    elapsed = time.monotonic() - (svc.shutdown_began_at or time.monotonic())
    remaining = svc.settings.shutdown_timeout_seconds - elapsed
    running = svc.runner.running_job_ids()
    logger.info(
        "draining jobs",
        extra={"running_jobs": len(running), "remaining_seconds": round(max(remaining, 0), 3)},
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


def hand_back_instance_jobs(settings: Settings, *, instance_id: str) -> list[str]:
    """From the master at exit: requeue jobs still marked running by any of its workers."""
    client = create_redis(settings)
    try:
        return JobStore(client, ttl_seconds=settings.job_ttl_seconds).release_instance(instance_id)
    except redis.RedisError as error:
        logger.error("cannot hand back jobs at exit; lease recovery will: %s", type(error).__name__)
        return []
    finally:
        client.close()
