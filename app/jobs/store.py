"""The job store: every transition of a job's state, and the reads of the queue.

One class for every transition: they share the client, the scripts and the replica
acknowledgement (``_confirmed``), which is why it runs a little past 400 lines.

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

Every key is named in ``app/jobs/keys.py``; the record and its public JSON form are
``app/jobs/job.py``'s, what a transition returns ``app/jobs/outcomes.py``'s.

Retention: a pending or running job is kept JOB_TTL_SECONDS after it was submitted or last
claimed; a finished job JOB_TTL_SECONDS after it finished. Redis deletes the keys itself.
Attempts: ``attempts`` counts claims (the public attempt number); ``claim_token`` names the
current attempt, ``finished_token`` and ``released_token`` the attempts that finished and last
handed back the job. ``lost_attempts`` counts attempts whose worker vanished (lease lapsed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import redis

from app.config import Settings
from app.jobs.job import CANCELLED_ERROR_CODE, LISTABLE_STATES, Job, JobState, record_fields
from app.jobs.keys import (
    ALL_INDEX_KEY,
    EXPIRY_KEY,
    FINISHED_KEY_PREFIX,
    JOB_KEY_PREFIX,
    LEASES_KEY,
    LEGACY_QUEUE_KEY,
    QUEUE_DEPTH_KEYS,
    QUEUE_KEY,
    claim_key,
    finished_counts_key,
    handback_key,
    idempotency_key,
    index_key,
    job_key,
    result_key,
    staged_result_key,
)
from app.jobs.outcomes import (
    CancelOutcome,
    CancelStatus,
    ClaimOutcome,
    ClaimStatus,
    NewJob,
    Overview,
    RecoveryOutcome,
    RenewOutcome,
    ReplicationUnconfirmed,
    SubmitOutcome,
    SubmitStatus,
    SweepOutcome,
    Transition,
)
from app.jobs.scripts import StoreScript, execute_with_scripts

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
# A job asked to stop while it ran, back in the queue before its attempt saw the request.
CANCELLED_AT_CLAIM_MESSAGE = "cancelled by request; it was not run again and stored no result"


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
    def client(self) -> redis.Redis:
        """The Redis client the store runs on (for checks of the server's own settings)."""
        return self._redis

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
        return SubmitOutcome(SubmitStatus(status), Job(found_id, record_fields(flat)))

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
        job = Job(job_id, record_fields(flat)) if status == ClaimStatus.CLAIMED.value else None
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

    def cancel(self, job_id: str, *, user_id: str | None, message: str) -> CancelOutcome:
        """Cancel a pending job at once, or mark a running one to stop; safe to send again.

        The outcome carries the record as the same script left it: what the caller shows
        cannot be a later state (a job that completed after the cancel was answered).
        """
        keys = {"job": job_key(job_id)}
        args = {"id": job_id, "user_id": user_id or "", "message": message}
        replies = self._confirmed([self._cancel], lambda pipe: self._cancel.queue(pipe, keys, args))
        status, flat = replies[0]
        job = Job(job_id, record_fields(flat)) if flat else None
        return CancelOutcome(CancelStatus(status), job)

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
        for key in QUEUE_DEPTH_KEYS.values():
            pipe.zcard(key)
        return dict(zip(QUEUE_DEPTH_KEYS, pipe.execute(), strict=True))

    def overview(self) -> Overview:
        """Cluster-wide counts and the workers running jobs, in one round trip."""
        now_s, pending, running, complete, failed, workers = self._overview(
            keys={}, args={"worker_limit": OVERVIEW_WORKER_LIMIT}
        )
        first_minute = int(now_s) // 60 - FINISHED_WINDOW_MINUTES + 1
        complete_last_hour, failed_last_hour = (
            sum(
                int(count)
                for minute, count in record_fields(counts).items()
                if int(minute) >= first_minute
            )
            for counts in (complete, failed)
        )
        jobs_per_worker: dict[str, int] = {}
        for worker in workers:
            jobs_per_worker[worker or "unknown"] = jobs_per_worker.get(worker or "unknown", 0) + 1
        return Overview(pending, running, complete_last_hour, failed_last_hour, jobs_per_worker)


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
