"""Every Redis key of the job store, named in one place: one layout for a single Redis, Sentinel
and a Redis Cluster.

**Shards.** The store is SHARD_COUNT (12) virtual shards. Every key of a shard carries the
shard's hash tag, ``slatesim:{s07.10}:...``, so a shard's keys share one hash slot and every
transition of a job stays one script on one node. The tags were chosen so their slots lie in
the middle of twelve equal intervals of the 16,384 slots (858, 1759, 3696, ... 15535, checked
by tests/jobs/test_keys.py): any even split of the slots over 2, 3, 4, 6 or 12 primaries gives
each the same number of shards, and Redis's own resharding moves shards between nodes whole.
The count and the tags are fixed: a deployment never changes them (changing them would strand
the jobs of the shards left out).

A job lives in one shard, told by its ID (``shard_of_job``); a submission with an
Idempotency-Key goes to the shard of that key (``shard_of_idempotency``), and its ID is minted
for that shard, so the key's record and the job share a slot.

Keys of a shard (``slatesim:{tag}:`` prefix):
- ``job:<id>``            hash, the job record; TTL = retention.
- ``queue``               sorted set, pending job ID -> created_at (ms): FIFO by ZPOPMIN.
- ``leases``              sorted set, running job ID -> lease deadline (ms, Redis clock).
- ``index:<state>``, ``index:all``  sorted sets of job IDs, all scores 0 (by ULID, i.e. age).
- ``expiry``              sorted set, job ID -> when its record expires (ms).
- ``idempotency:<hash>``  string, "<job id> <body fingerprint>"; same TTL as the job.
- ``result:<id>``         string, a complete job's result: a raw deflate stream of it
                          (app/jobs/job.py, ``compressed_result``).
                          ``result:<id>:<token>`` holds it while its finish script runs.
- ``claim:<token>``       string, the job a claim token took in this shard.
- ``handback:<instance>`` list, the jobs a gunicorn master handed back at exit.
- ``finished:<state>``    hash, minute -> jobs that finished in it (the last 60 minutes).
Shard 0 also holds ``sweep:leader`` (string: the sweeper that sweeps every shard this period).

Keys of the layout before 0.5 (one unsharded set, ``slatesim:job:<id>``, ``slatesim:queue``,
...) are named below under LEGACY: only the migration (app/jobs/migration.py) reads them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.jobs.job import JobState

KEY_PREFIX = "slatesim:"
SHARD_COUNT = 12
# Each shard's hash tag; the slot of each lies in the middle of its twelfth of the 16,384.
SHARD_TAGS = (
    "s00.22",
    "s01.32",
    "s02.20",
    "s03.8",
    "s04.27",
    "s05.28",
    "s06.13",
    "s07.10",
    "s08.42",
    "s09.31",
    "s10.23",
    "s11.33",
)
SHARDS = range(SHARD_COUNT)
# The shard that holds what is the fleet's rather than a shard's: the sweep's leader.
FLEET_SHARD = 0
# What the queue's depth counts (ZCARD of each shard's), by name: /ready, `jobs depth`.
QUEUE_DEPTH_NAMES = {"pending": "queue", "running": "leases"}


def shard_prefix(shard: int) -> str:
    """The prefix of every key of ``shard``: ``slatesim:{s07.10}:``."""
    return f"{KEY_PREFIX}{{{SHARD_TAGS[shard]}}}:"


def shard_key(shard: int, name: str) -> str:
    """A key of ``shard`` (``queue``, ``leases``, ``index:pending``...)."""
    return f"{shard_prefix(shard)}{name}"


# Crockford's base32, as ULIDs are written (either case).
_BASE32 = {c: n for n, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}
_BASE32.update({c.lower(): n for c, n in _BASE32.items()})


def shard_of_job(job_id: str) -> int:
    """The shard of a job: the last 32 bits of its ID (random, evenly spread) mod the shard
    count. Read from the last seven characters (35 bits) of the text: every store call
    needs it, and decoding the whole ULID took longer than the rest of the key's making."""
    tail = 0
    for character in job_id[-7:]:
        tail = tail * 32 + _BASE32[character]
    return (tail & 0xFFFFFFFF) % SHARD_COUNT


def idempotency_digest(user_id: str | None, key: str) -> str:
    """What names a user's Idempotency-Key in the store."""
    return hashlib.sha256(f"{user_id or ''}\n{key}".encode()).hexdigest()


def shard_of_idempotency(digest: str) -> int:
    """The shard of an Idempotency-Key's record, and so of the job it makes."""
    return int(digest[:8], 16) % SHARD_COUNT


def submission_shard(user_id: str | None, key: str | None) -> int | None:
    """The shard a submission's job must be minted for: its Idempotency-Key's, when it has
    one (so the key's record and the job share a slot); any otherwise."""
    return None if key is None else shard_of_idempotency(idempotency_digest(user_id, key))


def job_prefix(shard: int) -> str:
    """Where the records of the shard's jobs are: ``job_prefix(shard) + id``."""
    return shard_key(shard, "job:")


def job_key(job_id: str) -> str:
    """The hash holding job ``job_id``, in its shard."""
    return f"{job_prefix(shard_of_job(job_id))}{job_id}"


def index_name(state: JobState | None) -> str:
    """The name of the index of jobs in ``state`` (all jobs when ``None``), in every shard."""
    return "index:all" if state is None else f"index:{state.value}"


def idempotency_key(digest: str) -> str:
    """The key remembering which job a (user, Idempotency-Key) pair created."""
    return shard_key(shard_of_idempotency(digest), f"idempotency:{digest}")


def claim_key(shard: int, token: str) -> str:
    """The key remembering which job a claim token took in ``shard``."""
    return shard_key(shard, f"claim:{token}")


def result_key(job_id: str) -> str:
    """The string holding a complete job's result, in its shard."""
    return shard_key(shard_of_job(job_id), f"result:{job_id}")


def staged_result_key(job_id: str, token: str) -> str:
    """Where the attempt ``token`` puts its result until its finish script takes it."""
    return shard_key(shard_of_job(job_id), f"result:{job_id}:{token}")


def handback_key(shard: int, instance: str) -> str:
    """The list of jobs a gunicorn master handed back in ``shard``."""
    return shard_key(shard, f"handback:{instance}")


# --- the layout before 0.5, read by the migration alone ---------------------------------------
LEGACY_JOB_PREFIX = f"{KEY_PREFIX}job:"
LEGACY_RESULT_PREFIX = f"{KEY_PREFIX}result:"
LEGACY_IDEMPOTENCY_PREFIX = f"{KEY_PREFIX}idempotency:"
LEGACY_QUEUE = f"{KEY_PREFIX}queue"
LEGACY_LIST_QUEUE = f"{KEY_PREFIX}queue:pending"  # before 0.2
LEGACY_LEASES = f"{KEY_PREFIX}leases"
LEGACY_EXPIRY = f"{KEY_PREFIX}expiry"
LEGACY_INDEX_PREFIX = f"{KEY_PREFIX}index:"
LEGACY_FINISHED_PREFIX = f"{KEY_PREFIX}finished:"
