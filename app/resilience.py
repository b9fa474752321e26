"""Deadlines, bulkheads and circuit breakers: a dependency that freezes cannot freeze us.

Redis's client bounds every call by its socket timeout. Neo4j's driver does not: its query
timeout is the server's, and the client waits on the socket as long as the server says nothing.
So a Neo4j call runs in a thread of its own, the caller waits at most the deadline, and on
expiry an ``abort`` hook kills the call's connection, which ends the stuck read (see
``SlateRepository``). Around each dependency:

- a **bulkhead**: at most ``DEPENDENCY_CONCURRENCY`` calls of a worker at once; a call that
  finds every slot taken waits while the calls in them are quick (a busy host), and fails at
  once when one has been running for BULKHEAD_SLOW_CALL_SECONDS (a slow dependency), so a
  frozen dependency holds a share of the request threads and never all of them (``/health``
  always has one);
- a **circuit breaker**: after ``BREAKER_FAILURE_THRESHOLD`` failures in a row it opens and
  calls fail at once for ``BREAKER_RESET_SECONDS``; then one trial call is let through (half
  open): its success closes the breaker, its failure opens it again. Opening and closing are
  logged once each. Only the outcomes of calls let through since the last change of state
  count: a call that was slow when the breaker opened cannot close it by returning late.

A small state machine of ours rather than pybreaker: pybreaker 1.4's ``CircuitBreaker.call``
holds the breaker's lock for the whole guarded call, which would serialise every call to the
dependency in a threaded server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any, TypeVar, cast

from app.timestamps import iso_utc

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A call in a bulkhead slot this old means the dependency is slow: callers without a slot fail
# at once. Healthy calls take milliseconds, and under full CPU load tens of milliseconds.
BULKHEAD_SLOW_CALL_SECONDS = 0.5
# No caller waits longer than this for a slot, whatever the ages of the calls in them.
BULKHEAD_MAX_WAIT_SECONDS = 1.0
# How often a waiting caller looks at the ages of the calls in the slots.
BULKHEAD_POLL_SECONDS = 0.01


class DependencyUnavailableError(Exception):
    """A dependency cannot take this call now; ``reason`` says why, without any address."""

    def __init__(self, dependency: str, reason: str) -> None:
        super().__init__(f"{dependency}: {reason}")
        self.dependency = dependency
        self.reason = reason


class BulkheadFullError(DependencyUnavailableError):
    """Every slot of the dependency's share is taken."""


class CircuitOpenError(DependencyUnavailableError):
    """The dependency's breaker is open."""


class DeadlineExceededError(DependencyUnavailableError):
    """The call did not return within its deadline; it was abandoned."""


class Bulkhead:
    """At most ``permits`` calls at once; a caller waits for a slot while the calls in them move.

    A full bulkhead with young calls is a busy, healthy dependency (on a loaded host a call can
    lose the CPU for tens of milliseconds): the caller waits. Once the oldest call in a slot has
    run for ``slow_call_seconds`` the dependency is slow, and a caller without a slot fails at
    once rather than queue behind it; no caller waits more than ``max_wait_seconds``.
    """

    def __init__(
        self,
        name: str,
        permits: int,
        slow_call_seconds: float = BULKHEAD_SLOW_CALL_SECONDS,
        max_wait_seconds: float = BULKHEAD_MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.permits = permits
        self._slow_call = slow_call_seconds
        self._max_wait = max_wait_seconds
        self._clock = clock
        self._slots = threading.BoundedSemaphore(permits)
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}  # slot ticket -> when its call took it
        self._tickets = 0

    @property
    def in_use(self) -> int:
        """Slots taken now."""
        return len(self._started)

    def _oldest_call_age(self) -> float:
        with self._lock:
            oldest = min(self._started.values(), default=None)
        return 0.0 if oldest is None else self._clock() - oldest

    def acquire(self) -> int:
        """Take a slot and return its ticket, or raise :class:`BulkheadFullError`."""
        waited_from = self._clock()
        while not self._slots.acquire(timeout=BULKHEAD_POLL_SECONDS):
            if self._oldest_call_age() >= self._slow_call:
                raise BulkheadFullError(
                    self.name, f"all {self.permits} call slots are held by slow calls"
                )
            if self._clock() - waited_from >= self._max_wait:
                raise BulkheadFullError(self.name, f"all {self.permits} call slots are busy")
        with self._lock:
            self._tickets += 1
            self._started[self._tickets] = self._clock()
            return self._tickets

    def release(self, ticket: int) -> None:
        """Give the slot of ``ticket`` back."""
        with self._lock:
            del self._started[ticket]
        self._slots.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """A slot for the duration of a block."""
        ticket = self.acquire()
        try:
            yield
        finally:
            self.release(ticket)


class BreakerState(str, Enum):
    """The states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive failures open it; after a cool-down one trial call decides.

    Every call is admitted in a *generation* of the breaker, which changes with each change of
    state; only an outcome of the current generation moves it. A call admitted while the
    breaker was closed that returns after it opened says nothing about the dependency now: its
    late success cannot close the breaker (only the trial does) and its late failure cannot
    re-open or count against a breaker that has closed since.
    """

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0  # clock()
        self._opened_at_wall = 0.0  # time.time(), for /ready
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker past its cool-down reads as half open)."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                return BreakerState.HALF_OPEN
            return self._state

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self._reset

    def _become(self, state: BreakerState) -> None:
        """Change state (under the lock): a new generation begins."""
        self._state = state
        self._generation += 1
        self._trial_in_flight = False

    def before_call(self) -> int:
        """Let a call through and return its generation, or raise :class:`CircuitOpenError`.

        Pass the generation to :meth:`record_success`, :meth:`record_failure` or
        :meth:`release_trial` when the call ends.
        """
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return self._generation
            if self._state is BreakerState.OPEN and self._cooled_down():
                self._become(BreakerState.HALF_OPEN)
            if self._state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True  # this call is the trial
                return self._generation
            raise CircuitOpenError(self.name, "circuit open after repeated failures")

    def record_success(self, generation: int) -> None:
        """A call succeeded: the count starts over; the trial's success closes the breaker."""
        with self._lock:
            if generation != self._generation:
                return
            self._failures = 0
            if self._state is BreakerState.CLOSED:
                return
            self._become(BreakerState.CLOSED)
        logger.info("circuit closed: %s answers again", self.name, extra={"dependency": self.name})

    def record_failure(self, generation: int) -> None:
        """A call failed: the threshold-th failure in a row, or a failed trial, opens it."""
        with self._lock:
            if generation != self._generation:
                return
            self._failures += 1
            was = self._state
            if was is BreakerState.CLOSED and self._failures < self._threshold:
                return
            self._become(BreakerState.OPEN)
            self._opened_at = self._clock()
            self._opened_at_wall = time.time()
        if was is BreakerState.CLOSED:  # a failed trial leaves it open: nothing new to say
            logger.warning(
                "circuit opened: %s failed %d times in a row; calls fail at once for %gs",
                self.name,
                self._threshold,
                self._reset,
                extra={"dependency": self.name},
            )

    def release_trial(self, generation: int) -> None:
        """A call ended without telling anything (it never reached the dependency): when it
        was the trial, the next call may be the trial instead."""
        with self._lock:
            if generation == self._generation and self._state is BreakerState.HALF_OPEN:
                self._trial_in_flight = False

    def to_dict(self) -> dict[str, Any]:
        """The breaker as ``/ready`` shows it."""
        state = self.state
        shown: dict[str, Any] = {"state": state.value, "consecutive_failures": self._failures}
        if state is not BreakerState.CLOSED:
            shown["opened_at"] = iso_utc(self._opened_at_wall)
        return shown


def call_with_deadline(
    call: Callable[[], T], *, dependency: str, deadline: float, abort: Callable[[], None]
) -> T:
    """Run ``call`` in a daemon thread and wait at most ``deadline`` seconds for it.

    Past the deadline ``abort`` is called (it should make the call return, e.g. by killing its
    connection) and :class:`DeadlineExceededError` is raised; the thread, a daemon, never holds
    up the process's exit.
    """
    outcome: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:  # handed to the caller, who decides
            outcome.append((False, error))
        finally:
            done.set()

    threading.Thread(target=run, name=f"{dependency}-call", daemon=True).start()
    if not done.wait(deadline):
        abort()
        raise DeadlineExceededError(dependency, f"no answer within {deadline:g}s")
    succeeded, value = outcome[0]
    if succeeded:
        return cast(T, value)
    raise value


class Dependency:
    """A dependency's bulkhead and breaker, applied to every call a request or job makes."""

    def __init__(self, name: str, bulkhead: Bulkhead, breaker: CircuitBreaker) -> None:
        self.name = name
        self.bulkhead = bulkhead
        self.breaker = breaker

    def call(self, call: Callable[[], T], *, failures: tuple[type[BaseException], ...]) -> T:
        """Run ``call`` through the breaker and a bulkhead slot.

        Exceptions of the ``failures`` types count against the breaker; a full bulkhead does
        not (it says we are busy, not that the dependency failed).
        """
        generation = self.breaker.before_call()
        try:
            with self.bulkhead.slot():
                result = call()
        except failures:
            self.breaker.record_failure(generation)
            raise
        except BaseException:  # a full bulkhead, or a bug of ours: nothing learnt
            self.breaker.release_trial(generation)
            raise
        self.breaker.record_success(generation)
        return result

    def accepting(self) -> bool:
        """Whether a call would be let through now (the breaker is not open)."""
        return self.breaker.state is not BreakerState.OPEN

    def to_dict(self) -> dict[str, Any]:
        """Breaker and bulkhead as ``/ready`` shows them."""
        return {
            **self.breaker.to_dict(),
            "calls_in_flight": self.bulkhead.in_use,
            "call_slots": self.bulkhead.permits,
        }
