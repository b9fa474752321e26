"""The one polling loop of the tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How often a condition is polled by default: fine enough for sub-second figures, cheap enough
# for Redis and HTTP polls.
POLL_SECONDS = 0.05


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    *,
    what: str = "the condition",
    interval: float = POLL_SECONDS,
) -> T:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Raises ``TimeoutError`` naming ``what`` (and the last value seen) after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:g}s (last: {value!r})")
        time.sleep(interval)
