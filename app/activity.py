"""When an instance last had traffic and a readiness probe, shared by its gunicorn workers.

The lame duck (app.lifecycle) ends once the instance has been quiet for a moment, and is
worth having only when something probes /ready; both are the instance's facts, not one
worker's, so they live in memory the master shares with every worker it forks.
"""

from __future__ import annotations

import mmap
import struct
import time

from app.probes import PROBE_PATHS, READINESS_PATH


class Activity:
    """When the instance last had a request other than a probe, and a readiness probe.

    The lame duck asks both. Made in the gunicorn master before the first fork, in shared
    memory, so every worker sees what all of them served: one worker's quiet is not the
    instance's, and a balancer's probe reaches one worker of many.
    """

    _LAYOUT = struct.Struct("dd")  # last request, last readiness probe (time.monotonic())

    def __init__(self) -> None:
        self._shared = mmap.mmap(-1, self._LAYOUT.size)  # anonymous and shared across fork
        self._LAYOUT.pack_into(self._shared, 0, float("-inf"), float("-inf"))

    def note(self, path: str) -> None:
        """Record a request to ``path`` now."""
        if path == READINESS_PATH:
            offset = 8
        elif path in PROBE_PATHS:
            return  # liveness: a kubelet's, which routes nothing
        else:
            offset = 0
        struct.pack_into("d", self._shared, offset, time.monotonic())

    @property
    def last_request_at(self) -> float:
        """time.monotonic() of the last request other than a probe."""
        return float(self._LAYOUT.unpack_from(self._shared)[0])

    @property
    def last_readiness_probe_at(self) -> float:
        """time.monotonic() of the last GET /ready."""
        return float(self._LAYOUT.unpack_from(self._shared)[1])


_instance_activity: Activity | None = None


def instance_activity() -> Activity:
    """This instance's Activity: call it in the master before forking, so workers share it."""
    global _instance_activity
    if _instance_activity is None:
        _instance_activity = Activity()
    return _instance_activity
