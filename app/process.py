"""How a process names itself in job records and logs."""

from __future__ import annotations

import socket


def process_id(pid: int) -> str:
    """How a process is named in job records and logs: ``host:pid``."""
    return f"{socket.gethostname()}:{pid}"
