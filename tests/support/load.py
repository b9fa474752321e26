"""Client threads that load an instance until the test stops them (one copy of the plumbing),
and the submitters every fault test and the soak drive."""

from __future__ import annotations

import http.client
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from tests.support.http import Response, request

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


def answer_name(response: Response) -> str:
    """How an answer is counted: its status, and the API's error code when it has one
    (``"503 store_unavailable"``; a balancer's own page has none: ``"503"``), marked when a
    503 of the API's lacks the Retry-After its contract promises."""
    body = response.body
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if not code:
        return str(response.status)
    if response.status == 503 and "retry-after" not in response.headers:
        return f"503 {code} (no Retry-After)"
    return f"{response.status} {code}"


@dataclass(kw_only=True)
class Submitters(ClientThreads):
    """Clients posting ``body`` at a steady pace, each logical submission under an
    Idempotency-Key of its own, sent again under the same key until it is acknowledged (202,
    or 200 for a replay): the way a careful client submits, and what makes a retry safe.

    An answer is sent again when it is a 503 with Retry-After, or its status is one of
    ``retry_statuses`` (a balancer's 502 or 504, for the soak); a connection error is too when
    ``retry_connection_errors``. Anything else is recorded in ``errors`` and ends that
    submission. A submission still refused after ``max_attempts`` is an error too. A client
    finishes the submission it has begun after ``stop`` is set.
    """

    port: int
    body: Mapping[str, Any]
    clients: int = 3
    pause: float = 0.1  # between one client's submissions
    retry_pause: float = 0.2
    max_attempts: int = 60
    timeout: float = 15.0
    retry_statuses: frozenset[int] = frozenset()
    retry_connection_errors: bool = True
    slow_after: float | None = None  # answers slower than this count in ``held``
    key_prefix: str = "steady"
    acknowledged: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> job id
    answers: Counter[str] = field(default_factory=Counter)  # every answer, by answer_name
    refusals: list[tuple[float, int]] = field(default_factory=list)  # retried: (when, status)
    accepted_at: list[float] = field(default_factory=list)
    held: int = 0
    errors: list[Any] = field(default_factory=list)

    def targets(self) -> list[Callable[[], None]]:
        """One submitting loop per client."""
        return [self._run] * self.clients

    def _run(self) -> None:
        while not self.stop.is_set():
            self.submit(f"{self.key_prefix}-{uuid.uuid4().hex}")
            time.sleep(self.pause)

    def submit(self, key: str) -> None:
        """One logical submission, sent until it is acknowledged or fails for good."""
        for _ in range(self.max_attempts):
            started = time.monotonic()
            try:
                response = request(
                    self.port,
                    "POST",
                    "/jobs",
                    self.body,
                    headers={"Idempotency-Key": key},
                    timeout=self.timeout,
                )
            except (OSError, http.client.HTTPException) as error:
                self.answers[type(error).__name__] += 1
                if not self.retry_connection_errors:
                    self.errors.append(f"{key}: {error!r}")
                    return
                time.sleep(self.retry_pause)
                continue
            self.answers[answer_name(response)] += 1
            if self.slow_after is not None:
                self.held += time.monotonic() - started > self.slow_after
            if response.status in (200, 202):
                self.acknowledged[key] = response.body["id"]
                self.accepted_at.append(time.monotonic())
                return
            retry_later = response.status == 503 and "retry-after" in response.headers
            if not retry_later and response.status not in self.retry_statuses:
                self.errors.append((response.status, response.headers, response.body))
                return
            self.refusals.append((time.monotonic(), response.status))
            time.sleep(self.retry_pause)
        self.errors.append(f"{key}: still refused after {self.max_attempts} attempts")

    def unavailable_after(self, moment: float) -> float:
        """Seconds from ``moment`` to the first acknowledgement after the first refusal."""
        refused = [when for when, _ in self.refusals if when >= moment]
        if not refused:
            return 0.0
        return min(when for when in self.accepted_at if when > refused[0]) - moment
