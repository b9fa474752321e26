"""Bulkheads, breakers and deadlines: alone with a fake clock, then around a frozen Neo4j."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.logging_setup import flush_logs
from app.resilience import (
    BreakerState,
    Bulkhead,
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceededError,
    Dependency,
    call_with_deadline,
)
from app.services import EXTENSION_KEY


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    """The breaker's state now (a call, so that each assertion reads it afresh)."""
    return breaker.state


def _breaker(clock: FakeClock, threshold: int = 3) -> CircuitBreaker:
    return CircuitBreaker("dep", failure_threshold=threshold, reset_seconds=5, clock=clock)


def test_a_breaker_opens_at_the_threshold_of_failures_in_a_row():
    breaker = _breaker(FakeClock())
    for _ in range(2):
        breaker.record_failure(breaker.before_call())
    breaker.record_success(breaker.before_call())  # a success in between starts the count over
    for _ in range(3):
        assert state(breaker) is BreakerState.CLOSED
        breaker.record_failure(breaker.before_call())
    assert state(breaker) is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def test_after_its_cool_down_a_breaker_lets_one_trial_through_and_its_outcome_decides():
    clock = FakeClock()
    breaker = _breaker(clock, threshold=1)
    breaker.record_failure(breaker.before_call())
    clock.now = 5.0
    assert state(breaker) is BreakerState.HALF_OPEN
    trial = breaker.before_call()
    with pytest.raises(CircuitOpenError):
        breaker.before_call()  # only one at a time
    breaker.record_failure(trial)
    assert state(breaker) is BreakerState.OPEN  # the trial failed: another cool-down
    clock.now = 10.0
    breaker.record_success(breaker.before_call())
    assert state(breaker) is BreakerState.CLOSED
    breaker.before_call()


def test_with_a_flapping_dependency_only_calls_of_the_current_generation_move_the_breaker(
    caplog,
):
    """Invariant: only the trial closes an open breaker; one log line per real transition."""
    clock = FakeClock()
    breaker = _breaker(clock, threshold=2)
    with caplog.at_level(logging.INFO, logger="app.resilience"):
        slow_success, slow_failure = breaker.before_call(), breaker.before_call()
        for _ in range(2):  # the dependency fails meanwhile: the breaker opens
            breaker.record_failure(breaker.before_call())
        assert state(breaker) is BreakerState.OPEN
        breaker.record_success(slow_success)  # admitted while closed, back late
        assert state(breaker) is BreakerState.OPEN
        with pytest.raises(CircuitOpenError):
            breaker.before_call()  # the cool-down still runs
        clock.now = 5.0
        trial = breaker.before_call()
        breaker.record_failure(slow_failure)  # late too: the trial alone decides
        assert state(breaker) is BreakerState.HALF_OPEN
        breaker.record_success(trial)
        assert state(breaker) is BreakerState.CLOSED
        late = breaker.before_call()
        breaker.record_failure(breaker.before_call())  # one failure of this generation
        breaker.record_success(late)  # a success of this generation starts the count over
        breaker.record_failure(breaker.before_call())
        assert state(breaker) is BreakerState.CLOSED
    messages = [record.getMessage() for record in caplog.records]
    assert [m.split(":")[0] for m in messages] == ["circuit opened", "circuit closed"], messages


def test_opening_and_closing_are_logged_once_each(caplog):
    clock = FakeClock()
    breaker = _breaker(clock, threshold=2)
    with caplog.at_level(logging.INFO, logger="app.resilience"):
        for _ in range(6):
            with pytest.raises((CircuitOpenError, RuntimeError)):
                Dependency("dep", Bulkhead("dep", 2), breaker).call(_fail, failures=(RuntimeError,))
        clock.now = 5.0
        for _ in range(3):
            Dependency("dep", Bulkhead("dep", 2), breaker).call(lambda: 1, failures=(RuntimeError,))
    messages = [record.getMessage() for record in caplog.records]
    assert sum("circuit opened" in m for m in messages) == 1, messages
    assert sum("circuit closed" in m for m in messages) == 1, messages


def _fail() -> None:
    raise RuntimeError("down")


def _hold_a_slot(dependency: Dependency) -> tuple[threading.Thread, threading.Event]:
    """A thread in one of the dependency's slots until the returned event is set."""
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        release.wait(10)

    holder = threading.Thread(target=lambda: dependency.call(hold, failures=(RuntimeError,)))
    holder.start()
    assert inside.wait(5)
    return holder, release


def test_a_full_bulkhead_of_quick_calls_makes_a_caller_wait_not_fail():
    # A busy, healthy dependency: the slot frees within the slow-call age, so the caller gets it.
    dependency = Dependency(
        "dep", Bulkhead("dep", 1, slow_call_seconds=2.0), _breaker(FakeClock(), 1)
    )
    holder, release = _hold_a_slot(dependency)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    assert dependency.call(lambda: 1, failures=(RuntimeError,)) == 1
    assert 0.25 <= time.monotonic() - started < 1.5
    holder.join(5)


def test_a_bulkhead_held_by_a_slow_call_refuses_at_once_and_does_not_count_as_a_failure():
    dependency = Dependency(
        "dep", Bulkhead("dep", 1, slow_call_seconds=0.2), _breaker(FakeClock(), 1)
    )
    holder, release = _hold_a_slot(dependency)
    time.sleep(0.3)  # the call in the slot is now a slow one
    started = time.monotonic()
    with pytest.raises(BulkheadFullError, match="slow calls"):
        dependency.call(lambda: 1, failures=(RuntimeError,))
    assert time.monotonic() - started < 0.1
    release.set()
    holder.join(5)
    assert state(dependency.breaker) is BreakerState.CLOSED
    assert dependency.call(lambda: 2, failures=(RuntimeError,)) == 2
    assert dependency.bulkhead.in_use == 0


def test_no_caller_waits_for_a_slot_longer_than_the_maximum():
    bulkhead = Bulkhead("dep", 1, slow_call_seconds=60, max_wait_seconds=0.3)
    dependency = Dependency("dep", bulkhead, _breaker(FakeClock(), 1))
    holder, release = _hold_a_slot(dependency)
    started = time.monotonic()
    with pytest.raises(BulkheadFullError, match="busy"):
        dependency.call(lambda: 1, failures=(RuntimeError,))
    assert 0.3 <= time.monotonic() - started < 1.0
    release.set()
    holder.join(5)


def test_a_call_past_its_deadline_is_aborted_and_the_caller_is_free_at_the_deadline():
    unblock = threading.Event()
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        call_with_deadline(
            lambda: unblock.wait(30), dependency="dep", deadline=0.3, abort=unblock.set
        )
    assert 0.3 <= time.monotonic() - started < 1.0
    assert unblock.is_set()


def test_a_frozen_neo4j_opens_the_breaker_then_refused_reads_are_fast_until_it_answers(
    settings, freezable_neo4j, seeded_slates
):
    application = create_app(
        Settings(
            **{
                **vars(settings),
                "neo4j_uri": freezable_neo4j.url(),
                "dependency_timeout_seconds": 0.5,
                "breaker_failure_threshold": 3,
                "breaker_reset_seconds": 1.0,
            }
        )
    )
    client = application.test_client()
    slate = "/slates/nba-2026-11-28-showdown-bos-nyk"
    assert client.get(slate).status_code == 200
    freezable_neo4j.freeze()
    for _ in range(3):  # each waits the deadline out, and counts
        response = client.get(slate)
        assert response.get_json()["error"]["code"] == "slate_store_unavailable"
    refused = []
    for _ in range(5):
        started = time.monotonic()
        response = client.get(slate)
        refused.append(time.monotonic() - started)
        assert response.status_code == 503 and response.headers["Retry-After"]
        assert response.get_json()["error"]["code"] == "dependency_unavailable"
    assert max(refused) < 0.05, refused  # fail fast: no wait on the frozen peer
    ready = client.get("/ready").get_json()
    assert ready["checks"]["neo4j"]["breaker"]["state"] == "open"
    freezable_neo4j.thaw()
    time.sleep(1.1)  # the cool-down: the next read is the trial
    for _ in range(3):
        assert client.get(slate).status_code == 200
    assert client.get("/ready").get_json()["checks"]["neo4j"]["breaker"]["state"] == "closed"
    flush_logs()
    lines = map(json.loads, Path(settings.log_file).read_text().splitlines())
    messages = [line["message"] for line in lines if line["logger"] == "app.resilience"]
    assert sum("circuit opened" in m for m in messages) == 1, messages
    assert sum("circuit closed" in m for m in messages) == 1, messages
    application.extensions[EXTENSION_KEY].close()
