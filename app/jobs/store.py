"""The job store: owns every Redis key of a job and every transition of its state.

Each transition is one Lua script, so it is atomic (no reader ever sees ``complete`` without
its result) and costs one round trip. Every time comes from Redis's own clock (``TIME`` inside
the script), so clock skew between containers can neither recover a live job nor keep a dead one.

Keys (``slatesim:`` prefix):
- ``job:<id>``            hash, the job record; TTL = retention (see below).
- ``queue:pending``        list, FIFO of pending job IDs (LPUSH to submit, RPOP to claim).
- ``leases``               sorted set, running job ID -> lease deadline (ms, Redis clock).
- ``index:<state>``        sorted sets of job IDs per state (and ``index:all``), all scores 0, so
                           members sort by ULID, i.e. by creation time: listing is a range query.
- ``expiry``               sorted set, job ID -> when its record expires (ms); the sweep trims
                           index entries of expired jobs, so no shared structure grows unbounded.
- ``idempotency:<hash>``   string, the job ID a (user, Idempotency-Key) pair created; same TTL
                           as the job.

Retention: a pending or running job is kept JOB_TTL_SECONDS after it was submitted or last
claimed; a finished job JOB_TTL_SECONDS after it finished. Redis deletes the keys itself.
Attempts: ``attempts`` counts claims and is the fencing token of the current attempt; a
finishing write whose token is not the job's current one is refused. ``lost_attempts`` counts
attempts whose worker vanished (lease lapsed), apart from errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

import redis

from app.timestamps import iso_utc

KEY_PREFIX = "slatesim:"
JOB_KEY_PREFIX = f"{KEY_PREFIX}job:"
PENDING_QUEUE_KEY = f"{KEY_PREFIX}queue:pending"
LEASES_KEY = f"{KEY_PREFIX}leases"
EXPIRY_KEY = f"{KEY_PREFIX}expiry"
INDEX_KEY_PREFIX = f"{KEY_PREFIX}index:"
ALL_INDEX_KEY = f"{INDEX_KEY_PREFIX}all"
IDEMPOTENCY_KEY_PREFIX = f"{KEY_PREFIX}idempotency:"
# Jobs examined per sweep call: bounds the time one script holds Redis.
SWEEP_BATCH = 200
# Stale queue entries (jobs that expired while queued) skipped per claim before giving up.
CLAIM_SKIP_LIMIT = 100


class JobState(str, Enum):
    """The five states of a job."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    EXPIRED = "expired"


LISTABLE_STATES = (JobState.PENDING, JobState.RUNNING, JobState.COMPLETE, JobState.FAILED)


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


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _iso(millis: str | None) -> str | None:
    return iso_utc(int(millis) / 1000) if millis else None


@dataclass(frozen=True)
class Job:
    """A job record as stored; ``to_dict`` gives its public JSON form."""

    id: str
    fields: Mapping[str, str] = field(repr=False)

    @property
    def state(self) -> JobState:
        """The job's current state."""
        return JobState(self.fields["state"])

    @property
    def attempts(self) -> int:
        """Claims so far; also the number, and fencing token, of the current attempt."""
        return int(self.fields.get("attempts", 0))

    @property
    def params(self) -> dict[str, Any]:
        """The full input parameters, seed included."""
        params: dict[str, Any] = json.loads(self.fields["params"])
        return params

    @property
    def request_id(self) -> str | None:
        """The request that created the job."""
        return self.fields.get("request_id") or None

    @property
    def user_id(self) -> str | None:
        """The user that created the job, when known."""
        return self.fields.get("user_id") or None

    def to_dict(self, *, include_result: bool = True) -> dict[str, Any]:
        """The public record, timestamps in ISO 8601 UTC."""
        f = self.fields
        duration = f.get("duration_ms")
        record: dict[str, Any] = {
            "id": self.id,
            "state": f["state"],
            "params": self.params,
            "created_at": _iso(f.get("created_at")),
            "started_at": _iso(f.get("started_at")),
            "finished_at": _iso(f.get("finished_at")),
            "expires_at": _iso(f.get("expires_at")),
            "attempts": self.attempts,
            "lost_attempts": int(f.get("lost_attempts", 0)),
            "metadata": {
                "slate_id": f.get("slate_id"),
                "scenario_count": int(f["scenario_count"]),
                "duration_ms": float(duration) if duration else None,
                "worker": f.get("worker") or None,
            },
            "request_id": self.request_id,
            "user_id": self.user_id,
        }
        if include_result and f.get("result"):
            record["result"] = json.loads(f["result"])
        if f.get("error_code"):
            record["error"] = {"code": f["error_code"], "message": f.get("error_message", "")}
        return record


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submission did: ``created`` a job, found an ``existing`` one, or a ``conflict``.

    ``job`` is the created or the earlier job, as stored.
    """

    status: str
    job: Job


@dataclass(frozen=True)
class RecoveryOutcome:
    """A job the sweep found with a lapsed lease, and what became of it."""

    job_id: str
    outcome: str  # "requeued" or "failed"


# --- Lua -----------------------------------------------------------------------------------
# Shared prologue: the Redis clock in milliseconds, and the idempotency key's TTL follower.
_LUA_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function keep_until(job_key, id, until_ms, expiry_key)
  redis.call('HSET', job_key, 'expires_at', until_ms)
  redis.call('PEXPIREAT', job_key, until_ms)
  redis.call('ZADD', expiry_key, until_ms, id)
  local idem = redis.call('HGET', job_key, 'idempotency_key')
  if idem and idem ~= '' then redis.call('PEXPIREAT', idem, until_ms) end
end
"""

# KEYS: job, queue, index:all, index:pending, expiry[, idempotency]
# ARGV: id, ttl_ms, fingerprint, job key prefix, then field/value pairs of the record
_SUBMIT = (
    _LUA_COMMON
    + """
if KEYS[6] then
  local existing = redis.call('GET', KEYS[6])
  if existing then
    local earlier = ARGV[4] .. existing
    local fingerprint = redis.call('HGET', earlier, 'idempotency_fingerprint')
    if fingerprint then
      local status = fingerprint == ARGV[3] and 'existing' or 'conflict'
      return {status, existing, redis.call('HGETALL', earlier)}
    end
  end
end
local now = now_ms()
redis.call('HSET', KEYS[1], 'created_at', now, unpack(ARGV, 5))
if KEYS[6] then
  redis.call('HSET', KEYS[1], 'idempotency_key', KEYS[6])
  redis.call('SET', KEYS[6], ARGV[1])
end
keep_until(KEYS[1], ARGV[1], now + tonumber(ARGV[2]), KEYS[5])
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
return {'created', ARGV[1], redis.call('HGETALL', KEYS[1])}
"""
)

# KEYS: queue, leases, index:pending, index:running, expiry
# ARGV: job key prefix, lease_ms, worker, instance, ttl_ms
_CLAIM = (
    _LUA_COMMON
    + f"""
local now = now_ms()
for _ = 1, {CLAIM_SKIP_LIMIT} do
  local id = redis.call('RPOP', KEYS[1])
  if not id then return false end
  local key = ARGV[1] .. id
  if redis.call('HGET', key, 'state') == 'pending' then
    redis.call('HINCRBY', key, 'attempts', 1)
    redis.call('HSET', key, 'state', 'running', 'started_at', now,
               'worker', ARGV[3], 'instance', ARGV[4])
    keep_until(key, id, now + tonumber(ARGV[5]), KEYS[5])
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[4], 0, id)
    local record = redis.call('HGETALL', key)
    table.insert(record, 1, id)
    return record
  end
end
return false
"""
)

# KEYS: leases.  ARGV: job key prefix, lease_ms, then id/attempt pairs.  Returns the lost IDs.
_RENEW = (
    _LUA_COMMON
    + """
local deadline = now_ms() + tonumber(ARGV[2])
local lost = {}
for i = 3, #ARGV, 2 do
  local id = ARGV[i]
  local held = redis.call('HMGET', ARGV[1] .. id, 'state', 'attempts')
  if held[1] == 'running' and held[2] == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], deadline, id)
  else
    table.insert(lost, id)
  end
end
return lost
"""
)

# KEYS: job, leases, index:running, index:<final state>, expiry
# ARGV: id, attempt, final state, ttl_ms, then field/value pairs
_FINISH = (
    _LUA_COMMON
    + """
local held = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if held[1] ~= 'running' or held[2] ~= ARGV[2] then return 0 end
local now = now_ms()
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'finished_at', now, unpack(ARGV, 5))
keep_until(KEYS[1], ARGV[1], now + tonumber(ARGV[4]), KEYS[5])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], 0, ARGV[1])
return 1
"""
)

# KEYS: job, leases, queue, index:running, index:pending.  ARGV: id, attempt
_RELEASE = """
local held = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if held[1] ~= 'running' or held[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'pending')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('ZADD', KEYS[5], 0, ARGV[1])
return 1
"""

# KEYS: leases, queue, index:running, index:pending, index:failed, expiry, index:complete,
#       index:all
# ARGV: job key prefix, max lost attempts, ttl_ms, batch size, worker_lost message
_SWEEP = (
    _LUA_COMMON
    + """
local now = now_ms()
local out = {}
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(lapsed) do
  local key = ARGV[1] .. id
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[3], id)
  if redis.call('HGET', key, 'state') == 'running' then
    local lost = redis.call('HINCRBY', key, 'lost_attempts', 1)
    if lost >= tonumber(ARGV[2]) then
      redis.call('HSET', key, 'state', 'failed', 'finished_at', now,
                 'error_code', 'worker_lost', 'error_message', ARGV[5])
      keep_until(key, id, now + tonumber(ARGV[3]), KEYS[6])
      redis.call('ZADD', KEYS[5], 0, id)
      table.insert(out, id)
      table.insert(out, 'failed')
    else
      redis.call('HSET', key, 'state', 'pending')
      redis.call('RPUSH', KEYS[2], id)
      redis.call('ZADD', KEYS[4], 0, id)
      table.insert(out, id)
      table.insert(out, 'requeued')
    end
  end
end
local gone = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
for _, id in ipairs(gone) do
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('ZADD', KEYS[6], redis.call('HGET', key, 'expires_at'), id)
  else
    if redis.call('ZSCORE', KEYS[4], id) then redis.call('LREM', KEYS[2], 0, id) end
    for i = 3, 5 do redis.call('ZREM', KEYS[i], id) end
    redis.call('ZREM', KEYS[7], id)
    redis.call('ZREM', KEYS[8], id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[6], id)
  end
end
return out
"""
)

# KEYS: leases, queue, index:running, index:pending.  ARGV: job key prefix, instance
_RELEASE_INSTANCE = """
local released = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local held = redis.call('HMGET', key, 'state', 'instance')
  if held[1] == 'running' and held[2] == ARGV[2] then
    redis.call('HSET', key, 'state', 'pending')
    redis.call('ZREM', KEYS[1], id)
    redis.call('RPUSH', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[4], 0, id)
    table.insert(released, id)
  end
end
return released
"""

WORKER_LOST_MESSAGE = "the worker running this job vanished on every attempt"


class JobStore:
    """Every read and write of jobs in Redis. Thread-safe: share one per process."""

    def __init__(self, client: redis.Redis, *, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl_ms = ttl_seconds * 1000
        self._submit = client.register_script(_SUBMIT)
        self._claim = client.register_script(_CLAIM)
        self._renew = client.register_script(_RENEW)
        self._finish = client.register_script(_FINISH)
        self._release = client.register_script(_RELEASE)
        self._sweep = client.register_script(_SWEEP)
        self._release_instance = client.register_script(_RELEASE_INSTANCE)

    @property
    def ttl_seconds(self) -> int:
        """Retention of a job's records."""
        return self._ttl_ms // 1000

    def submit(
        self,
        job_id: str,
        params: Mapping[str, Any],
        *,
        request_id: str | None,
        user_id: str | None,
        idempotency: tuple[str, str] | None = None,
    ) -> SubmitOutcome:
        """Store a new pending job and queue it, in one round trip.

        ``idempotency`` is ``(key, fingerprint)``: when the same user already used ``key``, the
        earlier job is returned (``existing``) or, for a different body, a ``conflict``.
        """
        keys = [
            job_key(job_id),
            PENDING_QUEUE_KEY,
            ALL_INDEX_KEY,
            index_key(JobState.PENDING),
            EXPIRY_KEY,
        ]
        fingerprint = ""
        if idempotency is not None:
            keys.append(idempotency_key(user_id, idempotency[0]))
            fingerprint = idempotency[1]
        record = {
            "state": JobState.PENDING.value,
            "params": json.dumps(params, sort_keys=True, separators=(",", ":")),
            "slate_id": params["slate_id"],
            "scenario_count": params["scenario_count"],
            "attempts": 0,
            "lost_attempts": 0,
            "request_id": request_id or "",
            "user_id": user_id or "",
            "idempotency_fingerprint": fingerprint,
        }
        args: list[Any] = [job_id, self._ttl_ms, fingerprint, JOB_KEY_PREFIX]
        for name, value in record.items():
            args += [name, value]
        status, found_id, flat = self._submit(keys=keys, args=args)
        return SubmitOutcome(status=status, job=Job(found_id, _pairs(flat)))

    def get(self, job_id: str) -> Job | None:
        """The job, or ``None`` when Redis holds no record of it."""
        fields = cast("dict[str, str]", self._redis.hgetall(job_key(job_id)))
        return Job(job_id, fields) if fields else None

    def list_jobs(
        self, state: JobState | None, *, limit: int, after: str | None = None
    ) -> tuple[list[Job], str | None]:
        """Jobs newest first, ``limit`` at most, older than job ``after``; and the next cursor."""
        upper = f"({after}" if after else "+"
        ids = cast(
            "list[str]",
            self._redis.zrevrangebylex(index_key(state), upper, "-", start=0, num=limit + 1),
        )
        more = len(ids) > limit
        ids = ids[:limit]
        pipe = self._redis.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(job_key(job_id))
        jobs = [Job(i, f) for i, f in zip(ids, pipe.execute(), strict=True) if f]
        return jobs, (ids[-1] if more and ids else None)

    def claim_next(self, *, worker: str, instance: str, lease_seconds: float) -> Job | None:
        """Atomically take the oldest pending job, start an attempt and lease it; one round trip."""
        reply = self._claim(
            keys=[
                PENDING_QUEUE_KEY,
                LEASES_KEY,
                index_key(JobState.PENDING),
                index_key(JobState.RUNNING),
                EXPIRY_KEY,
            ],
            args=[JOB_KEY_PREFIX, int(lease_seconds * 1000), worker, instance, self._ttl_ms],
        )
        if not reply:
            return None
        return Job(reply[0], _pairs(reply[1:]))

    def renew_leases(self, held: Iterable[tuple[str, int]], *, lease_seconds: float) -> list[str]:
        """Extend the leases of ``(job_id, attempt)`` pairs; return the IDs whose lease was lost."""
        args: list[Any] = [JOB_KEY_PREFIX, int(lease_seconds * 1000)]
        for job_id, attempt in held:
            args += [job_id, attempt]
        if len(args) == 2:
            return []
        return list(self._renew(keys=[LEASES_KEY], args=args))

    def mark_complete(
        self, job_id: str, attempt: int, result_json: str, *, duration_ms: float
    ) -> bool:
        """Store the result and finish the attempt; False when the attempt was fenced off."""
        return self._finish_attempt(
            job_id,
            attempt,
            JobState.COMPLETE,
            {"result": result_json, "duration_ms": round(duration_ms, 3)},
        )

    def mark_failed(
        self, job_id: str, attempt: int, code: str, message: str, *, duration_ms: float
    ) -> bool:
        """Record a failure with a stable code; False when the attempt was fenced off."""
        return self._finish_attempt(
            job_id,
            attempt,
            JobState.FAILED,
            {"error_code": code, "error_message": message, "duration_ms": round(duration_ms, 3)},
        )

    def _finish_attempt(
        self, job_id: str, attempt: int, state: JobState, fields: Mapping[str, Any]
    ) -> bool:
        args: list[Any] = [job_id, attempt, state.value, self._ttl_ms]
        for name, value in fields.items():
            args += [name, value]
        keys = [job_key(job_id), LEASES_KEY, index_key(JobState.RUNNING), index_key(state)]
        return bool(self._finish(keys=[*keys, EXPIRY_KEY], args=args))

    def release(self, job_id: str, attempt: int) -> bool:
        """Hand a running attempt back to the front of the queue; False if it was not ours."""
        keys = [
            job_key(job_id),
            LEASES_KEY,
            PENDING_QUEUE_KEY,
            index_key(JobState.RUNNING),
            index_key(JobState.PENDING),
        ]
        return bool(self._release(keys=keys, args=[job_id, attempt]))

    def release_instance(self, instance: str) -> list[str]:
        """Hand back every job still running under ``instance`` (a gunicorn master that exits)."""
        keys = [
            LEASES_KEY,
            PENDING_QUEUE_KEY,
            index_key(JobState.RUNNING),
            index_key(JobState.PENDING),
        ]
        return list(self._release_instance(keys=keys, args=[JOB_KEY_PREFIX, instance]))

    def sweep(self, *, max_lost_attempts: int) -> list[RecoveryOutcome]:
        """Recover jobs whose lease lapsed and trim index entries of expired jobs."""
        reply = self._sweep(
            keys=[
                LEASES_KEY,
                PENDING_QUEUE_KEY,
                index_key(JobState.RUNNING),
                index_key(JobState.PENDING),
                index_key(JobState.FAILED),
                EXPIRY_KEY,
                index_key(JobState.COMPLETE),
                ALL_INDEX_KEY,
            ],
            args=[
                JOB_KEY_PREFIX,
                max_lost_attempts,
                self._ttl_ms,
                SWEEP_BATCH,
                WORKER_LOST_MESSAGE,
            ],
        )
        return [RecoveryOutcome(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]

    def queue_depth(self) -> dict[str, int]:
        """Cluster-wide pending and running counts, in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        parse = self.queue_depth_commands(pipe)
        return parse(pipe.execute())

    @staticmethod
    def queue_depth_commands(
        pipe: redis.client.Pipeline,
    ) -> Callable[[list[Any]], dict[str, int]]:
        """Queue the two counting commands on ``pipe``; return the parser of their replies."""
        pipe.llen(PENDING_QUEUE_KEY)
        pipe.zcard(LEASES_KEY)
        return lambda replies: {"pending": replies[0], "running": replies[1]}

    def durability_warnings(self) -> list[str]:
        """Redis settings that can silently lose jobs (eviction, no persistence)."""
        warnings = []
        policy = self._redis.config_get("maxmemory-policy").get("maxmemory-policy")
        if policy and policy != "noeviction":
            warnings.append(f"maxmemory-policy is {policy!r}: Redis may evict jobs; use noeviction")
        persistence = self._redis.config_get("appendonly")
        save = self._redis.config_get("save").get("save", "")
        if persistence.get("appendonly") != "yes" and not save:
            warnings.append("neither AOF (appendonly) nor RDB (save) is on: a restart loses jobs")
        return warnings
