"""The job store: owns every Redis key of a job and every transition of its state.

Each transition is one Lua script (``app/jobs/lua/``), so it is atomic (no reader ever sees
``complete`` without its result) and costs one round trip. Every time comes from Redis's own
clock (``TIME`` inside the script), so clock skew between containers can neither recover a live
job nor keep a dead one.

Every script is safe to send twice. redis-py re-sends a command once when its connection drops
or its reply does not come within the timeout, and by then Redis may have run it: a re-sent
submit finds its job and returns it (``resent``); a re-sent claim finds the job its token took;
a re-sent finish or release finds its own token stored (``already_applied``). Attempts are
fenced by a claim token the caller draws for each claim, never by a counter, so no interleaving
can reuse one.

Keys (``slatesim:`` prefix), all built in this module:
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

Retention: a pending or running job is kept JOB_TTL_SECONDS after it was submitted or last
claimed; a finished job JOB_TTL_SECONDS after it finished. Redis deletes the keys itself.
Attempts: ``attempts`` counts claims (the public attempt number); ``claim_token`` names the
current attempt, ``finished_token`` and ``released_token`` the attempts that finished and last
handed back the job. ``lost_attempts`` counts attempts whose worker vanished (lease lapsed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, cast

import orjson
import redis

from app.config import Settings
from app.jobs.scripts import StoreScript, execute_with_scripts
from app.timestamps import iso_utc

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
# An idle hash of finished counts outlives the hour the overview sums.
FINISHED_COUNTS_KEEP_MS = 7_200_000
FINISHED_WINDOW_MINUTES = 60
# Jobs examined per sweep call, for each of its three tasks: bounds the time one script holds
# Redis (well under 10 ms at a million queued jobs).
SWEEP_BATCH = 200
# Entries of expired jobs a claim drops before it returns `busy` (and is called again at once).
CLAIM_SKIP_LIMIT = 50
# A claim token remembers its job this many leases: long enough for any re-send of the claim.
CLAIM_MEMORY_FACTOR = 10
# A master's list of handed-back jobs outlives any re-send of its hand-back.
HANDBACK_MEMORY_MS = 3_600_000
# A staged result that no finish script took (its connection dropped in between) expires.
STAGED_RESULT_MS = 3_600_000
# Running jobs whose worker the overview reads: enough for any fleet the overview lists.
OVERVIEW_WORKER_LIMIT = 1000
WORKER_LOST_MESSAGE = "the worker running this job vanished on every attempt"
# The error code of every cancelled job, whichever way the cancel took effect.
CANCELLED_ERROR_CODE = "cancelled"
# A job asked to stop while it ran, back in the queue before its attempt saw the request.
CANCELLED_AT_CLAIM_MESSAGE = "cancelled by request; it was not run again and stored no result"


class JobState(str, Enum):
    """The five states of a job."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    EXPIRED = "expired"


LISTABLE_STATES = (JobState.PENDING, JobState.RUNNING, JobState.COMPLETE, JobState.FAILED)


class SubmitStatus(str, Enum):
    """What a submission did."""

    CREATED = "created"
    RESENT = "resent"  # this very submission had run: its first reply was lost
    EXISTING = "existing"  # an earlier request with the same Idempotency-Key and body
    CONFLICT = "conflict"  # the same Idempotency-Key with another body

    @property
    def created_now(self) -> bool:
        """Whether this request created the job (a re-sent submit did too)."""
        return self in (SubmitStatus.CREATED, SubmitStatus.RESENT)


class ClaimStatus(str, Enum):
    """What a claim found."""

    CLAIMED = "claimed"
    EMPTY = "empty"
    BUSY = "busy"  # dropped entries of expired jobs and stopped: claim again at once
    LOST = "lost"  # this token's attempt ended before its re-sent claim arrived


class CancelStatus(str, Enum):
    """What a cancel did."""

    CANCELLED = "cancelled"  # it was pending: failed/cancelled now
    REQUESTED = "requested"  # it is running: its attempt stops at its next chunk boundary
    ALREADY = "already"  # cancelled before
    FINISHED = "finished"  # complete, or failed for another reason
    MISSING = "missing"  # no record (never issued, or expired)


class Transition(str, Enum):
    """What a finish or hand-back of one attempt did."""

    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"  # a re-sent call: this attempt's outcome is stored
    SUPERSEDED = "superseded"  # the job moved on without this attempt

    @property
    def stored(self) -> bool:
        """Whether the store holds this attempt's outcome."""
        return self is not Transition.SUPERSEDED


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


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _iso(millis: str | None) -> str | None:
    return iso_utc(int(millis) / 1000) if millis else None


@dataclass(frozen=True)
class Job:
    """A job record as stored; ``to_dict`` gives its public JSON form."""

    id: str
    fields: Mapping[str, str] = field(repr=False)
    # The stored result document (JSON), when it was read with the record.
    result_json: str | None = field(default=None, repr=False)

    @property
    def state(self) -> JobState:
        """The job's current state."""
        return JobState(self.fields["state"])

    @property
    def attempts(self) -> int:
        """Claims so far; the number of the current attempt."""
        return int(self.fields.get("attempts", 0))

    @property
    def claim_token(self) -> str:
        """The token of the current (or last) attempt: what its writes are fenced by."""
        return self.fields.get("claim_token", "")

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

    def _stored_result(self) -> str | None:
        # Versions before 0.2 kept the result inside the record.
        return self.result_json or self.fields.get("result") or None

    def result(self) -> dict[str, Any] | None:
        """The stored result document, parsed; None until the job is complete."""
        stored = self._stored_result()
        if not stored:
            return None
        document: dict[str, Any] = orjson.loads(stored)
        return document

    def to_json(self) -> bytes:
        """The public record with its result, as JSON bytes.

        The result is written into the document as Redis holds it (JSON the runner wrote),
        not parsed and serialised again: for a 90 KB result that is most of the work of a
        ``GET /jobs/<id>``.
        """
        body = orjson.dumps(self.to_dict(include_result=False))
        result_json = self._stored_result()
        if not result_json:
            return body
        return b"".join((body[:-1], b',"result":', result_json.encode(), b"}"))

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
        if include_result and self._stored_result():
            record["result"] = self.result()
        if f.get("error_code"):
            record["error"] = {"code": f["error_code"], "message": f.get("error_message", "")}
        if f["state"] == JobState.RUNNING.value:
            record["progress"] = self._progress()
        elif f["state"] == JobState.PENDING.value:
            record["progress"] = None
        if f.get("cancel_requested_at"):
            record["cancel_requested_at"] = _iso(f["cancel_requested_at"])
            record["cancelled_by"] = f.get("cancelled_by") or None
        return record

    def _progress(self) -> dict[str, Any]:
        """The running attempt's progress (the last heartbeat's; none yet: 0 at its start)."""
        f = self.fields
        total = int(f["scenario_count"])
        own = f.get("progress_token") == f.get("claim_token") and f.get("progress_done")
        done = min(int(f["progress_done"]), total) if own else 0
        return {
            "scenarios_done": done,
            "scenario_count": total,
            "fraction": round(done / total, 4) if total else 0.0,
            "updated_at": _iso(f.get("progress_at") if own else f.get("started_at")),
        }


@dataclass(frozen=True)
class Overview:
    """The queue at a glance: counts across the cluster and where jobs run."""

    pending: int
    running: int
    complete_last_hour: int
    failed_last_hour: int
    # worker (host:pid) -> its running jobs, for the first OVERVIEW_WORKER_LIMIT running jobs
    running_per_worker: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The overview as the dashboard's JSON shows it."""
        return {
            "pending": self.pending,
            "running": self.running,
            "complete_last_hour": self.complete_last_hour,
            "failed_last_hour": self.failed_last_hour,
            "workers": [
                {"worker": worker, "running": count}
                for worker, count in sorted(self.running_per_worker.items())
            ],
        }


@dataclass(frozen=True)
class CancelOutcome:
    """What a cancel did, and the job as the cancel left it (None when there is no record)."""

    status: CancelStatus
    job: Job | None


@dataclass(frozen=True)
class SubmitOutcome:
    """What a submission did, and the created (or earlier) job as stored."""

    status: SubmitStatus
    job: Job


@dataclass(frozen=True)
class ClaimOutcome:
    """What a claim found; ``job`` is the claimed job when ``status`` is CLAIMED.

    ``cancelled`` names the jobs the claim failed as cancelled instead of running them.
    """

    status: ClaimStatus
    job: Job | None = None
    cancelled: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecoveryOutcome:
    """A job the sweep found with a lapsed lease, and what became of it."""

    job_id: str
    outcome: str  # "requeued" or "failed"


@dataclass(frozen=True)
class RenewOutcome:
    """What a heartbeat learned: attempts that lost their job, attempts asked to stop."""

    lost: list[str]  # claim tokens
    cancel_requested: list[str]  # claim tokens


@dataclass(frozen=True)
class SweepOutcome:
    """One sweep call: the jobs it recovered, and whether a batch was full (call again)."""

    recovered: list[RecoveryOutcome]
    more: bool


@dataclass(frozen=True)
class NewJob:
    """A job to submit: its ID (minted by the caller), params and correlation IDs."""

    job_id: str
    params: Mapping[str, Any]
    request_id: str | None = None
    user_id: str | None = None
    idempotency: tuple[str, str] | None = None  # (Idempotency-Key, body fingerprint)


class ReplicationUnconfirmed(redis.RedisError):
    """Fewer replicas than REDIS_MIN_REPLICAS confirmed a write (``WAIT``) in time.

    The write may still be on the primary: callers treat it like a lost reply (a submission
    may exist, a finish is sent again).
    """


class JobStore:
    """Every read and write of jobs in Redis. Thread-safe: share one per process.

    With ``min_replicas`` >= 1, every transition the service acknowledges (a submission, a
    finish, a hand-back) is followed by ``WAIT min_replicas wait_timeout_ms`` in the same
    round trip, and raises :class:`ReplicationUnconfirmed` unless enough replicas have it.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl_seconds: int,
        min_replicas: int = 0,
        wait_timeout_ms: int = 0,
    ) -> None:
        self._redis = client
        self._ttl_ms = ttl_seconds * 1000
        self._min_replicas = min_replicas
        self._wait_timeout_ms = wait_timeout_ms
        # What every script that declares these names gets: the keys shared by all jobs.
        shared = {
            "queue": QUEUE_KEY,
            "leases": LEASES_KEY,
            "expiry": EXPIRY_KEY,
            "all_index": ALL_INDEX_KEY,
            **{f"{state.value}_index": index_key(state) for state in LISTABLE_STATES},
            "legacy_queue": LEGACY_QUEUE_KEY,
            "job_prefix": JOB_KEY_PREFIX,
            "finished_prefix": FINISHED_KEY_PREFIX,
            "finished_keep_ms": FINISHED_COUNTS_KEEP_MS,
            "complete_counts": finished_counts_key(JobState.COMPLETE),
            "failed_counts": finished_counts_key(JobState.FAILED),
            "ttl_ms": self._ttl_ms,
            "cancelled_code": CANCELLED_ERROR_CODE,
            "cancelled_message": CANCELLED_AT_CLAIM_MESSAGE,
        }
        self._submit = StoreScript(client, "submit", shared)
        self._claim = StoreScript(client, "claim", shared)
        self._renew = StoreScript(client, "renew", shared)
        self._finish = StoreScript(client, "finish", shared)
        self._release = StoreScript(client, "release", shared)
        self._sweep = StoreScript(client, "sweep", shared)
        self._release_instance = StoreScript(client, "release_instance", shared)
        self._cancel = StoreScript(client, "cancel", shared)
        self._overview = StoreScript(client, "overview", shared)

    def script_sha(self, name: str) -> str:
        """The SHA1 Redis knows a script by (``submit``, ``claim``, ...): for SLOWLOG readers."""
        script: StoreScript = getattr(self, f"_{name}")
        return script.sha

    @property
    def ttl_seconds(self) -> int:
        """Retention of a job's records."""
        return self._ttl_ms // 1000

    # --- submission ----------------------------------------------------------------------------
    def submit(
        self,
        job_id: str,
        params: Mapping[str, Any],
        *,
        request_id: str | None,
        user_id: str | None,
        idempotency: tuple[str, str] | None = None,
    ) -> SubmitOutcome:
        """Store a new pending job and queue it, in one round trip; safe to send again.

        ``idempotency`` is ``(key, fingerprint)``: when the same user already used ``key``, the
        earlier job is returned (``existing``) or, for a different body, a ``conflict``.
        """
        new = NewJob(job_id, params, request_id, user_id, idempotency)
        if not self._min_replicas:
            return self._submit_outcome(self._submit(*self._submit_call(new)))
        return self.submit_many([new])[0]

    def submit_many(self, jobs: Iterable[NewJob]) -> list[SubmitOutcome]:
        """Submit ``jobs`` in one pipelined round trip (bulk loads, benchmarks)."""
        batch = list(jobs)

        def fill(pipe: redis.client.Pipeline) -> None:
            for new in batch:
                self._submit.queue(pipe, *self._submit_call(new))

        replies = self._confirmed([self._submit], fill)
        return [self._submit_outcome(reply) for reply in replies]

    def _submit_call(self, new: NewJob) -> tuple[dict[str, str], dict[str, Any], list[Any]]:
        idempotency, fingerprint = "", ""
        if new.idempotency is not None:
            idempotency = idempotency_key(new.user_id, new.idempotency[0])
            fingerprint = new.idempotency[1]
        record = {
            "state": JobState.PENDING.value,
            "params": json.dumps(new.params, sort_keys=True, separators=(",", ":")),
            "slate_id": new.params["slate_id"],
            "scenario_count": new.params["scenario_count"],
            "attempts": 0,
            "lost_attempts": 0,
            "request_id": new.request_id or "",
            "user_id": new.user_id or "",
            "idempotency_fingerprint": fingerprint,
        }
        keys = {"job": job_key(new.job_id), "idempotency": idempotency}
        args = {"id": new.job_id, "fingerprint": fingerprint}
        return keys, args, [item for pair in record.items() for item in pair]

    @staticmethod
    def _submit_outcome(reply: Sequence[Any]) -> SubmitOutcome:
        status, found_id, flat = reply
        return SubmitOutcome(SubmitStatus(status), Job(found_id, _pairs(flat)))

    # --- reading -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """The job with its result, or ``None`` when Redis holds no record; one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(job_key(job_id))
        pipe.get(result_key(job_id))
        fields, result_json = pipe.execute()
        return Job(job_id, fields, result_json) if fields else None

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

    # --- attempts ------------------------------------------------------------------------------
    def claim_next(
        self, token: str, *, worker: str, instance: str, lease_seconds: float
    ) -> ClaimOutcome:
        """Take the oldest pending job under ``token`` and lease it; one round trip.

        Call again with the same token after a lost reply: it returns the job that token took.
        """
        lease_ms = int(lease_seconds * 1000)
        reply = self._claim(
            keys={"claim": claim_key(token)},
            args={
                "token": token,
                "lease_ms": lease_ms,
                "worker": worker,
                "instance": instance,
                "claim_ttl_ms": min(lease_ms * CLAIM_MEMORY_FACTOR, self._ttl_ms),
                "skip_limit": CLAIM_SKIP_LIMIT,
            },
        )
        status, job_id, flat, cancelled = reply
        job = Job(job_id, _pairs(flat)) if status == ClaimStatus.CLAIMED.value else None
        return ClaimOutcome(ClaimStatus(status), job, tuple(cancelled))

    def renew_leases(
        self, held: Iterable[tuple[str, str, int | None]], *, lease_seconds: float
    ) -> RenewOutcome:
        """Extend the leases of ``(job_id, claim_token, scenarios_done)`` and record their
        progress, in one round trip; say which attempts lost their job and which were asked to
        stop (``scenarios_done`` is None before the first chunk)."""
        triples = [
            item
            for job_id, token, done in held
            for item in (job_id, token, "" if done is None else done)
        ]
        if not triples:
            return RenewOutcome([], [])
        lost, cancel = self._renew(
            keys={}, args={"lease_ms": int(lease_seconds * 1000)}, rest=triples
        )
        return RenewOutcome(list(lost), list(cancel))

    def mark_complete(
        self, job_id: str, token: str, result_json: str, *, duration_ms: float
    ) -> Transition:
        """Store the result and finish the attempt ``token``, in one round trip.

        The result goes in with a plain SET pipelined before the finish script: Redis keeps the
        bytes it read, where an argument of the script would be copied into Lua and out again
        (a tenth of a millisecond for a 90 KB result, more on a large dataset).
        """
        fields = {"duration_ms": round(duration_ms, 3)}
        keys, args, rest = self._finish_call(job_id, token, JobState.COMPLETE, fields)

        def fill(pipe: redis.client.Pipeline) -> None:
            pipe.set(keys["staged_result"], result_json, px=min(STAGED_RESULT_MS, self._ttl_ms))
            self._finish.queue(pipe, keys, args, rest)

        return Transition(self._confirmed([self._finish], fill)[-1])

    def mark_failed(
        self, job_id: str, token: str, code: str, message: str, *, duration_ms: float
    ) -> Transition:
        """Record a failure of the attempt ``token`` with a stable code."""
        fields = {
            "error_code": code,
            "error_message": message,
            "duration_ms": round(duration_ms, 3),
        }
        return self._finish_attempt(job_id, token, JobState.FAILED, fields)

    def _finish_attempt(
        self, job_id: str, token: str, state: JobState, fields: Mapping[str, Any]
    ) -> Transition:
        call = self._finish_call(job_id, token, state, fields)
        replies = self._confirmed([self._finish], lambda pipe: self._finish.queue(pipe, *call))
        return Transition(replies[0])

    def _finish_call(
        self, job_id: str, token: str, state: JobState, fields: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any], list[Any]]:
        keys = {
            "job": job_key(job_id),
            "final_index": index_key(state),
            "staged_result": staged_result_key(job_id, token),
            "result": result_key(job_id),
        }
        args = {"id": job_id, "token": token, "final_state": state.value}
        return keys, args, [item for pair in fields.items() for item in pair]

    def release(self, job_id: str, token: str) -> Transition:
        """Hand the attempt ``token`` back: the job is pending again at its place in the queue."""
        keys, args = {"job": job_key(job_id)}, {"id": job_id, "token": token}
        return Transition(
            self._confirmed([self._release], lambda p: self._release.queue(p, keys, args))[0]
        )

    def release_instance(self, instance: str) -> list[str]:
        """Hand back every job still running under ``instance`` (a gunicorn master that exits)."""
        keys = {"handback": handback_key(instance)}
        args = {"instance": instance, "handback_ttl_ms": min(HANDBACK_MEMORY_MS, self._ttl_ms)}
        return list(
            self._confirmed(
                [self._release_instance], lambda p: self._release_instance.queue(p, keys, args)
            )[0]
        )

    def _confirmed(
        self, scripts: Sequence[StoreScript], fill: Callable[[redis.client.Pipeline], None]
    ) -> list[Any]:
        """Run what ``fill`` queues in one round trip; with ``min_replicas``, WAIT for them in
        the same round trip and raise ReplicationUnconfirmed when too few confirm in time."""
        if not self._min_replicas:
            return execute_with_scripts(self._redis, scripts, fill)

        def fill_and_wait(pipe: redis.client.Pipeline) -> None:
            fill(pipe)
            pipe.wait(self._min_replicas, self._wait_timeout_ms)

        *replies, confirmed = execute_with_scripts(self._redis, scripts, fill_and_wait)
        if int(confirmed) < self._min_replicas:
            raise ReplicationUnconfirmed(
                f"{confirmed} of {self._min_replicas} replicas confirmed the write within "
                f"{self._wait_timeout_ms} ms"
            )
        return replies

    @staticmethod
    def replication_commands(
        pipe: redis.client.Pipeline, required: int
    ) -> Callable[[Any], dict[str, Any]]:
        """Queue ``INFO replication``; return the parser of its reply, for /ready: the role of
        the server in use, an identity of the primary that holds no address (the first
        characters of its replication ID, new after each failover), connected replicas, and
        whether they meet ``required``."""
        pipe.info("replication")

        def parse(info: Any) -> dict[str, Any]:
            connected = int(info.get("connected_slaves", 0))
            return {
                "role": "primary" if info.get("role") == "master" else "replica",
                "primary_id": str(info.get("master_replid", ""))[:12],
                "replicas_connected": connected,
                "replicas_required": required,
                "met": connected >= required,
            }

        return parse

    def cancel(self, job_id: str, *, user_id: str | None, message: str) -> CancelOutcome:
        """Cancel a pending job at once, or mark a running one to stop; safe to send again.

        The outcome carries the record as the same script left it: what the caller shows
        cannot be a later state (a job that completed after the cancel was answered).
        """
        keys = {"job": job_key(job_id)}
        args = {"id": job_id, "user_id": user_id or "", "message": message}
        replies = self._confirmed([self._cancel], lambda pipe: self._cancel.queue(pipe, keys, args))
        status, flat = replies[0]
        return CancelOutcome(CancelStatus(status), Job(job_id, _pairs(flat)) if flat else None)

    # --- upkeep --------------------------------------------------------------------------------
    def sweep(self, *, max_lost_attempts: int) -> SweepOutcome:
        """Recover lapsed leases, trim expired jobs' entries, move legacy-queued jobs; one batch."""
        reply = self._sweep(
            keys={},
            args={
                "max_lost": max_lost_attempts,
                "batch": SWEEP_BATCH,
                "worker_lost_message": WORKER_LOST_MESSAGE,
            },
        )
        recovered = [RecoveryOutcome(reply[i], reply[i + 1]) for i in range(1, len(reply), 2)]
        return SweepOutcome(recovered, more=bool(reply[0]))

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
        pipe.zcard(QUEUE_KEY)
        pipe.zcard(LEASES_KEY)
        return lambda replies: {"pending": replies[0], "running": replies[1]}

    def overview(self) -> Overview:
        """Cluster-wide counts and the workers running jobs, in one round trip."""
        now_s, pending, running, complete, failed, workers = self._overview(
            keys={}, args={"worker_limit": OVERVIEW_WORKER_LIMIT}
        )
        first_minute = int(now_s) // 60 - FINISHED_WINDOW_MINUTES + 1
        complete_last_hour, failed_last_hour = (
            sum(
                int(count)
                for minute, count in _pairs(counts).items()
                if int(minute) >= first_minute
            )
            for counts in (complete, failed)
        )
        jobs_per_worker: dict[str, int] = {}
        for worker in workers:
            jobs_per_worker[worker or "unknown"] = jobs_per_worker.get(worker or "unknown", 0) + 1
        return Overview(pending, running, complete_last_hour, failed_last_hour, jobs_per_worker)

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


def create_store(settings: Settings, client: redis.Redis) -> JobStore:
    """The job store on ``client``, with the retention and replica acknowledgement configured.

    WAIT gets half of DEPENDENCY_TIMEOUT_SECONDS, so that its answer arrives well within the
    call's own socket timeout.
    """
    return JobStore(
        client,
        ttl_seconds=settings.job_ttl_seconds,
        min_replicas=settings.redis_min_replicas,
        wait_timeout_ms=int(settings.dependency_timeout_seconds * 500),
    )
