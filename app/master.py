"""What the gunicorn master does for the app: name the instance, hand its jobs back at exit.

The master loads this module, the settings, the logging and the worker class, and nothing of
the web app: no Flask, no numpy, no Neo4j driver (tests/test_gunicorn_conf.py checks). Its one
dependency is Redis, through which it hands back the jobs its workers left running.
"""

from __future__ import annotations

import logging

import redis

from app.config import Settings
from app.connections import create_redis
from app.correlation import new_id
from app.jobs.store import create_store

logger = logging.getLogger(__name__)

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


def hand_back_instance_jobs(settings: Settings, *, instance_id: str) -> list[str]:
    """From the master at exit: requeue jobs still marked running by any of its workers."""
    client = create_redis(settings)
    try:
        return create_store(settings, client).release_instance(instance_id)
    except redis.RedisError as error:
        logger.error("cannot hand back jobs at exit; lease recovery will: %s", type(error).__name__)
        return []
    finally:
        client.close()
