"""Every Redis key of the job store, named in one place.

Keys (``slatesim:`` prefix):
- ``job:<id>``            hash, the job record; TTL = retention (see below).
- ``queue``               sorted set, pending job ID -> created_at (ms): FIFO by ZPOPMIN, and a
                          job handed back returns to its place. Every operation is O(log n).
- ``leases``              sorted set, running job ID -> lease deadline (ms, Redis clock).
- ``index:<state>``       sorted sets of job IDs per state (and ``index:all``), all scores 0, so
                          members sort by ULID, i.e. by creation time: listing is a range query.
- ``expiry``              sorted set, job ID -> when its record expires (ms); the sweep trims
                          the entries of expired jobs, so no shared structure grows unbounded.
- ``idempotency:<hash>``  string, the job ID a (user, Idempotency-Key) pair created; same TTL
                          as the job.
- ``result:<id>``         string, a complete job's result document; same TTL as the record.
                          ``result:<id>:<token>`` holds it while its finish script runs.
- ``claim:<token>``       string, the job a claim token took, kept CLAIM_MEMORY_FACTOR leases
                          (never longer than the job itself).
- ``handback:<instance>`` list, the jobs a gunicorn master handed back at exit, kept an hour
                          (never longer than a job).
- ``finished:<state>``    hash, minute (Unix time / 60 s) -> jobs that became complete (or
                          failed) in it, the last 60 minutes only: the dashboard's last hour.
                          Expires FINISHED_COUNTS_KEEP_MS after the last finish.
- ``queue:pending``       list, the queue of versions before 0.2 (LPUSH/RPOP): no longer
                          written; the sweep moves what an older instance still pushes there.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.jobs.job import JobState

KEY_PREFIX = "slatesim:"
JOB_KEY_PREFIX = f"{KEY_PREFIX}job:"
QUEUE_KEY = f"{KEY_PREFIX}queue"
LEGACY_QUEUE_KEY = f"{KEY_PREFIX}queue:pending"
LEASES_KEY = f"{KEY_PREFIX}leases"
EXPIRY_KEY = f"{KEY_PREFIX}expiry"
INDEX_KEY_PREFIX = f"{KEY_PREFIX}index:"
ALL_INDEX_KEY = f"{INDEX_KEY_PREFIX}all"
IDEMPOTENCY_KEY_PREFIX = f"{KEY_PREFIX}idempotency:"
CLAIM_KEY_PREFIX = f"{KEY_PREFIX}claim:"
RESULT_KEY_PREFIX = f"{KEY_PREFIX}result:"
HANDBACK_KEY_PREFIX = f"{KEY_PREFIX}handback:"
FINISHED_KEY_PREFIX = f"{KEY_PREFIX}finished:"
# What the queue's depth counts (ZCARD of each), by name: /ready and `jobs depth` show them.
QUEUE_DEPTH_KEYS = {"pending": QUEUE_KEY, "running": LEASES_KEY}


def job_key(job_id: str) -> str:
    """The hash holding job ``job_id``."""
    return f"{JOB_KEY_PREFIX}{job_id}"


def index_key(state: JobState | None) -> str:
    """The index of jobs in ``state`` (all jobs when ``None``)."""
    return ALL_INDEX_KEY if state is None else f"{INDEX_KEY_PREFIX}{state.value}"


def idempotency_key(user_id: str | None, key: str) -> str:
    """The key remembering which job a user's Idempotency-Key created."""
    digest = hashlib.sha256(f"{user_id or ''}\n{key}".encode()).hexdigest()
    return f"{IDEMPOTENCY_KEY_PREFIX}{digest}"


def finished_counts_key(state: JobState) -> str:
    """The per-minute counts of jobs that finished in ``state``."""
    return f"{FINISHED_KEY_PREFIX}{state.value}"


def claim_key(token: str) -> str:
    """The key remembering which job a claim token took."""
    return f"{CLAIM_KEY_PREFIX}{token}"


def result_key(job_id: str) -> str:
    """The string holding a complete job's result document (JSON)."""
    return f"{RESULT_KEY_PREFIX}{job_id}"


def staged_result_key(job_id: str, token: str) -> str:
    """Where the attempt ``token`` puts its result until its finish script takes it."""
    return f"{RESULT_KEY_PREFIX}{job_id}:{token}"


def handback_key(instance: str) -> str:
    """The list of jobs a gunicorn master handed back."""
    return f"{HANDBACK_KEY_PREFIX}{instance}"
