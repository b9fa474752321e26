"""Job IDs: ULIDs that carry a checksum, so an ID we never issued is told apart without storage.

A job ID is a standard ULID (48-bit millisecond timestamp, 80 bits of randomness) whose last
32 bits are a BLAKE2b tag of the first 96. An expired job leaves nothing in Redis, so on a miss:
- the tag does not match: the ID was never issued by this service -> 404;
- the tag matches and the timestamp is older than the retention period: the job existed and
  expired, since every job is kept at least JOB_TTL_SECONDS after its creation -> 410;
- the tag matches and the ID is recent: it is unknown to this store -> 404.
The tag is a checksum, not a signature: it catches mistyped and made-up IDs, not forgeries.
"""

from __future__ import annotations

import hashlib
import random as _random
import threading
import time

from ulid import ULID

from app.jobs.keys import SHARD_COUNT

_TAG_BYTES = 4
_RANDOM_BYTES = 6
_TAG_PERSON = b"slatesim-job-id"


class JobIdSyntaxError(ValueError):
    """The text is not a job ID (a 26-character ULID); the API answers ``invalid_job_id``."""


def _tag(prefix: bytes) -> bytes:
    return hashlib.blake2b(prefix, digest_size=_TAG_BYTES, person=_TAG_PERSON).digest()


class _MonotonicClock:
    """Random part for each ID; within one millisecond it counts up, so IDs sort in mint order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = (0, 0)

    def next(self, millis: int) -> tuple[int, int]:
        with self._lock:
            last_millis, last_random = self._last
            if millis <= last_millis:
                millis, random = last_millis, last_random + 1
            else:
                # The stdlib generator, reseeded in every forked process: IDs must be
                # unique, not secret, and a system call per ID is not free.
                random = _random.getrandbits(_RANDOM_BYTES * 8 - 1)
            self._last = (millis, random)
            return self._last


_clock = _MonotonicClock()


def new_job_id(now_ms: int | None = None, *, shard: int | None = None) -> str:
    """Mint a job ID for the current time (or ``now_ms``); IDs of one process sort in mint order.

    With ``shard``, the ID is one of that shard's (app/jobs/keys.py): IDs are minted until one
    falls there, one in SHARD_COUNT of them, so a few microseconds.
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    while True:
        millis, random = _clock.next(now)
        prefix = millis.to_bytes(6, "big") + random.to_bytes(_RANDOM_BYTES, "big")
        tag = _tag(prefix)
        if shard is None or int.from_bytes(tag, "big") % SHARD_COUNT == shard:
            return str(ULID.from_bytes(prefix + tag))


def parse_job_id(text: str) -> ULID:
    """Parse a job ID, raising JobIdSyntaxError when it is not a ULID."""
    if len(text) != 26 or not text.isascii():  # upper() maps some non-ASCII letters to ASCII
        raise JobIdSyntaxError(text)
    try:
        return ULID.from_str(text.upper())
    except ValueError:
        raise JobIdSyntaxError(text) from None


def was_issued_here(job_id: ULID) -> bool:
    """Whether the ID carries our checksum, i.e. this service could have minted it."""
    raw = bytes(job_id)
    return _tag(raw[:12]) == raw[12:]
