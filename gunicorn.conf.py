"""gunicorn settings for slatesim: plain settings plus short hooks that call into ``app``.

``gunicorn -c gunicorn.conf.py`` with no other argument serves the app. Which process runs each
hook, and when, is written down in docs/operations.md. The master loads the settings, the
logging, the worker class and ``app.master`` only; the hooks that run in a worker import
``app.lifecycle`` when they run, after the worker has loaded the app anyway.
"""

import logging
import math
import os
import signal
from typing import TYPE_CHECKING, cast

from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from app import activity, master
from app.config import Settings
from app.gunicorn_worker import DrainingThreadWorker
from app.logging_setup import build_logging_config

if TYPE_CHECKING:
    from flask import Flask

_settings = Settings.from_env()

wsgi_app = "app.wsgi:app"
bind = [_settings.bind]
workers = _settings.web_concurrency
# gthread finishes in-flight and keep-alive requests on shutdown, and a slow dependency check
# holds one thread, not the whole worker.
worker_class = "app.gunicorn_worker.DrainingThreadWorker"
threads = 8
# Connections a worker holds at once (app/gunicorn_worker.py reads each request in its loop,
# so they cost a descriptor and a buffer each, not a thread).
worker_connections = _settings.worker_connections
# Seconds a worker may go without a heartbeat to the master before it is killed and replaced.
timeout = 30
keepalive = 5
# The master SIGKILLs workers this long after the signal. It bounds the lame duck, the request
# drain and the job drain together, all counted from the signal, so it exceeds the longer of
# SHUTDOWN_TIMEOUT_SECONDS and SHUTDOWN_LAME_DUCK_SECONDS by a margin for hand-back and exit.
graceful_timeout = (
    math.ceil(max(_settings.shutdown_timeout_seconds, _settings.shutdown_lame_duck_seconds)) + 10
)
# gunicorn's control socket sits at one path per user; instances sharing a host would collide,
# and operations go through signals and HTTP.
control_socket_disable = True
# Not preloaded: each worker builds its own app, so no socket or thread crosses a fork.
preload_app = False

logconfig_dict = build_logging_config(_settings)
accesslog = "-"

_log = logging.getLogger("gunicorn.error")


def on_starting(server: Arbiter) -> None:
    """In the master, before the first fork: make what every worker inherits (instance ID,
    the instance's shared request activity)."""
    master.master_instance_id()
    activity.instance_activity()


def post_worker_init(worker: Worker) -> None:
    """In the worker, after the app is loaded: start job threads, chain signal handlers."""
    from app import lifecycle

    cast(DrainingThreadWorker, worker).configure_intake(
        header_timeout_seconds=_settings.request_header_timeout_seconds
    )
    lifecycle.start_worker(
        cast("Flask", worker.wsgi),
        instance_id=master.master_instance_id(),
        master_heartbeat=lifecycle.heartbeat_through(worker.tmp.fileno()),
        activity=activity.instance_activity(),
        server=lifecycle.ServerControl(
            stop_serving=lambda: worker.handle_exit(signal.SIGTERM, None),
            refuse_keep_alive=lambda: worker.cfg.set("keepalive", 0),
            master_listening=lambda: lifecycle.master_holds_listeners(worker.ppid, worker.sockets),
            serving=lambda: bool(worker.alive),
        ),
    )


def worker_exit(server: Arbiter, worker: Worker) -> None:
    """In the worker when it leaves its loop: drain jobs. Also called in the master for a
    worker that is already gone, which has nothing left to drain here."""
    if os.getpid() == server.pid:  # in the master
        _log.info("worker %s already gone; its jobs return through lease recovery", worker.pid)
        return
    if hasattr(worker, "wsgi"):  # not when the app failed to load: nothing ran
        from app import lifecycle

        lifecycle.drain_worker(cast("Flask", worker.wsgi))


def on_exit(server: Arbiter) -> None:
    """In the master, last: hand back any job still running under it and log a summary."""
    instance_id = master.master_instance_id()
    handed_back = master.hand_back_instance_jobs(_settings, instance_id=instance_id)
    _log.info(
        "master exiting",
        extra={
            "instance": instance_id,
            "handed_back_jobs": handed_back,
            "shutdown_timeout_seconds": _settings.shutdown_timeout_seconds,
        },
    )
