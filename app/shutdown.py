"""A worker's shutdown as it unfolds: begun when and why, its lame duck, its drain's heartbeat.

One object per process, held by the services and written by ``app.lifecycle`` alone, which runs
the shutdown; the rest of the app only asks whether it has begun (``underway``): intake refuses
new jobs and /ready answers 503 from that moment.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.activity import Activity


@dataclass
class Shutdown:
    """The shutdown of this worker; nothing has begun until :meth:`begin`."""

    began: threading.Event = field(default_factory=threading.Event)
    began_at: float | None = None  # time.monotonic() of the signal
    reason: str | None = None  # the signal's name, or "worker exit"
    # When requests and readiness probes last came (the instance's, under gunicorn): what the
    # lame duck watches.
    activity: Activity = field(default_factory=Activity)
    lame_duck_seconds: float | None = None
    lame_duck_ended_by: str | None = None
    # Tells the gunicorn master this worker is alive while it drains.
    master_heartbeat: Callable[[], None] | None = None

    @property
    def underway(self) -> bool:
        """Whether the shutdown has begun."""
        return self.began.is_set()

    def begin(self, reason: str) -> bool:
        """Record the start of the shutdown; False when it had begun already.

        Safe in a signal handler: it only sets fields and an event.
        """
        if self.began.is_set():
            return False
        self.began_at = time.monotonic()
        self.reason = reason
        self.began.set()
        return True

    def seconds_left(self, timeout: float) -> float:
        """What remains of ``timeout`` seconds counted from the start of the shutdown."""
        began = self.began_at if self.began_at is not None else time.monotonic()
        return timeout - (time.monotonic() - began)
