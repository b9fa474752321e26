"""How a process names itself in job records, logs and its connections to Redis."""

from __future__ import annotations

import os
import socket

# Redis's CLIENT LIST shows every connection of the service under this prefix.
CONNECTION_NAME_PREFIX = "slatesim"


def process_id(pid: int) -> str:
    """How a process is named in job records and logs: ``host:pid``."""
    return f"{socket.gethostname()}:{pid}"


def connection_name() -> str:
    """The name this process gives its Redis connections (``CLIENT SETNAME``), so that an
    operator can tell which worker holds which connection."""
    return f"{CONNECTION_NAME_PREFIX}:{process_id(os.getpid())}"
