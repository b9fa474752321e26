"""Client threads that load an instance until the test stops them (one copy of the plumbing)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

# How long stopping waits for a client's last request (a submission may be retried a while).
JOIN_TIMEOUT_SECONDS = 120


@dataclass(kw_only=True)
class ClientThreads:
    """A context manager that runs :meth:`targets` in threads until it exits.

    Subclasses are dataclasses with their own fields and counters; their loops check
    ``self.stop``.
    """

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def targets(self) -> list[Callable[[], None]]:
        """The loop of each client thread."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.threads = [threading.Thread(target=target) for target in self.targets()]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(JOIN_TIMEOUT_SECONDS)
