"""The job store: every transition of a job's state, and the reads of the queue, over shards.

Each transition is one Lua script (``app/jobs/lua/``) on the job's shard, so it is atomic (no
reader ever sees ``complete`` without its result) and costs one round trip, on a single Redis
as on a cluster (app/jobs/keys.py, app/jobs/shards.py). Every time comes from Redis's own clock
(``TIME`` inside the script), so clock skew between containers can neither recover a live job
nor keep a dead one.

Every script is safe to send twice. redis-py re-sends a command once when its connection drops
or its reply does not come within the timeout, and by then Redis may have run it; a cluster's
redirections send a shard's commands again: a re-sent submit finds its job and returns it
(``resent``); a re-sent claim finds the job its token took; a re-sent finish or release finds
its own token stored (``already_applied``). Attempts are fenced by a claim token the caller
draws for each claim, never by a counter, so no interleaving can reuse one.

Reads across shards (a page of the job list, the counts, the overview) send one pipeline per
node. Every key is named in ``app/jobs/keys.py``; the record and its public JSON form are
``app/jobs/job.py``'s, what a transition returns ``app/jobs/outcomes.py``'s.

One class for every transition: they share the shards' client, the scripts and the replica
acknowledgement, which is why it runs past 400 lines.

Retention: a pending or running job is kept JOB_TTL_SECONDS after it was submitted or last
claimed; a finished job JOB_TTL_SECONDS after it finished. Redis deletes the keys itself.
Attempts: ``attempts`` counts claims (the public attempt number); ``claim_token`` names the
current attempt, ``finished_token`` and ``released_token`` the attempts that finished and last
handed back the job. ``lost_attempts`` counts attempts whose worker vanished (lease lapsed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster

from app.config import Settings
from app.jobs.job import (
    CANCELLED_ERROR_CODE,
    LISTABLE_STATES,
    Job,
    JobState,
    compressed_result,
    record_fields,
)
from app.jobs.keys import (
    FLEET_SHARD,
    QUEUE_DEPTH_NAMES,
    SHARDS,
    claim_key,
    handback_key,
    idempotency_digest,
    idempotency_key,
    index_name,
    job_key,
    job_prefix,
    result_key,
    shard_key,
    shard_of_job,
    staged_result_key,
    submission_shard,
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
    SubmitOutcome,
    SubmitStatus,
    SweepOutcome,
    Transition,
)
from app.jobs.scripts import StoreScript
from app.jobs.shards import ShardedRedis

# An idle hash of finished counts outlives the hour the overview sums.
FINISHED_COUNTS_KEEP_MS = 7_200_000
FINISHED_WINDOW_MINUTES = 60
# Jobs examined per sweep call, for each of its tasks: bounds the time one script holds Redis
# (well under 10 ms at a million queued jobs).
SWEEP_BATCH = 200
# Entries of expired or cancelled jobs a claim goes through before it returns `busy`.
CLAIM_SKIP_LIMIT = 50
# A claim token remembers its job this many leases: long enough for any re-send of the claim.
CLAIM_MEMORY_FACTOR = 10
# A master's list of handed-back jobs outlives any re-send of its hand-back.
HANDBACK_MEMORY_MS = 3_600_000
# A staged result that no finish script took (its connection dropped in between) expires.
STAGED_RESULT_MS = 3_600_000
# Running jobs whose worker the overview reads per shard: enough for any fleet it lists.
OVERVIEW_WORKER_LIMIT = 1000
WORKER_LOST_MESSAGE = "the worker running this job vanished on every attempt"
# A job asked to stop while it ran, back in the queue before its attempt saw the request.
CANCELLED_AT_CLAIM_MESSAGE = "cancelled by request; it was not run again and stored no result"
SCRIPT_NAMES = (
    "submit",
    "claim",
    "renew",
    "finish",
    "release",
    "sweep",
    "release_instance",
    "cancel",
    "overview",
    "lead",
)


class JobStore:
    """Every read and write of jobs in Redis. Thread-safe: share one per process.

    ``client`` is a Redis client (a single Redis, or Sentinel's primary) or a RedisCluster.
    With ``min_replicas`` >= 1, every transition the service acknowledges (a submission, a
    finish, a hand-back, a cancel) is followed by ``WAIT min_replicas wait_timeout_ms`` on the
    node that took it, in the same round trip, and raises ReplicationUnconfirmed unless enough
    replicas have it.
    """

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        ttl_seconds: int,
        min_replicas: int = 0,
        wait_timeout_ms: int = 0,
    ) -> None:
        self._ttl_ms = ttl_seconds * 1000
        self._scripts = {name: StoreScript(name) for name in SCRIPT_NAMES}
        self._shards = ShardedRedis(
            client,
            self._scripts.values(),
            min_replicas=min_replicas,
            wait_timeout_ms=wait_timeout_ms,
        )
        # What every script of a shard that declares these names gets.
        self._shared = [self._shard_names(shard) for shard in SHARDS]

    def _shard_names(self, shard: int) -> dict[str, Any]:
        return {
            "queue": shard_key(shard, "queue"),
            "leases": shard_key(shard, "leases"),
            "expiry": shard_key(shard, "expiry"),
            "all_index": shard_key(shard, index_name(None)),
            **{f"{s.value}_index": shard_key(shard, index_name(s)) for s in LISTABLE_STATES},
            "job_prefix": job_prefix(shard),
            "finished_prefix": shard_key(shard, "finished:"),
            "finished_keep_ms": FINISHED_COUNTS_KEEP_MS,
            "complete_counts": shard_key(shard, f"finished:{JobState.COMPLETE.value}"),
            "failed_counts": shard_key(shard, f"finished:{JobState.FAILED.value}"),
            "ttl_ms": self._ttl_ms,
            "cancelled_code": CANCELLED_ERROR_CODE,
            "cancelled_message": CANCELLED_AT_CLAIM_MESSAGE,
        }

    def _queue(
        self,
        pipe: redis.client.Pipeline,
        name: str,
        shard: int,
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        rest: Sequence[Any] = (),
    ) -> None:
        self._scripts[name].queue(pipe, self._shared[shard], keys, args, rest)

    def _script(
        self,
        name: str,
        shard: int,
        keys: Mapping[str, str],
        args: Mapping[str, Any],
        *,
        confirm: bool = False,
    ) -> Any:
        """One script on one shard; its reply."""
        return self._shards.one(
            shard, lambda pipe: self._queue(pipe, name, shard, keys, args), confirm=confirm
        )[-1]

    def script_sha(self, name: str) -> str:
        """The SHA1 Redis knows a script by (``submit``, ``claim``, ...): for SLOWLOG readers."""
        return self._scripts[name].sha

    @property
    def client(self) -> redis.Redis | RedisCluster:
        """The Redis client the store runs on."""
        return self._shards.client

    def primaries(self) -> list[redis.Redis]:
        """A client of each primary (one for a single Redis): for checks of their settings."""
        return self._shards.nodes()

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
        earlier job is returned (``existing``) or, for a different body, a ``conflict``. The
        job's ID must be of the key's shard (``new_job_id(shard=submission_shard(...))``).
        """
        return self.submit_many([NewJob(job_id, params, request_id, user_id, idempotency)])[0]

    def submit_many(self, jobs: Iterable[NewJob]) -> list[SubmitOutcome]:
        """Submit ``jobs``, one pipeline per node (bulk loads, benchmarks)."""
        batch = list(jobs)
        by_shard: dict[int, list[int]] = {}
        for position, new in enumerate(batch):
            by_shard.setdefault(shard_of_job(new.job_id), []).append(position)

        def fill_for(shard: int) -> Any:
            def fill(pipe: redis.client.Pipeline) -> None:
                for position in by_shard[shard]:
                    self._queue(pipe, "submit", shard, *self._submit_call(batch[position]))

            return fill

        replies = self._shards.run({s: fill_for(s) for s in by_shard}, confirm=True)
        outcomes: list[SubmitOutcome | None] = [None] * len(batch)
        for shard, positions in by_shard.items():
            for position, reply in zip(positions, replies[shard], strict=True):
                outcomes[position] = self._submit_outcome(reply)
        return [self._completed(outcome) for outcome in outcomes if outcome is not None]

    def _submit_call(self, new: NewJob) -> tuple[dict[str, str], dict[str, Any], list[Any]]:
        # Without an Idempotency-Key the script is given the job's own key in its place (it
        # does not read it): every key of a script must lie in the job's slot on a cluster.
        idempotency, fingerprint = job_key(new.job_id), ""
        if new.idempotency is not None:
            if submission_shard(new.user_id, new.idempotency[0]) != shard_of_job(new.job_id):
                raise ValueError(
                    "a job with an Idempotency-Key must be minted for the key's shard: "
                    "new_job_id(shard=submission_shard(user_id, key))"
                )
            idempotency = idempotency_key(idempotency_digest(new.user_id, new.idempotency[0]))
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
        args = {
            "id": new.job_id,
            "fingerprint": fingerprint,
            "keyed": int(new.idempotency is not None),
        }
        return keys, args, [item for pair in record.items() for item in pair]

    @staticmethod
    def _submit_outcome(reply: Sequence[Any]) -> SubmitOutcome:
        status, found_id, flat = reply
        return SubmitOutcome(SubmitStatus(status), Job(found_id, record_fields(flat)))

    def _completed(self, outcome: SubmitOutcome) -> SubmitOutcome:
        """An earlier job found by its Idempotency-Key in another shard (one migrated from the
        layout before 0.5) comes without its record: read it from its own shard."""
        if outcome.job.fields:
            return outcome
        earlier = self.get(outcome.job.id)
        return SubmitOutcome(outcome.status, earlier or outcome.job)

    # --- reading -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """The job with its stored result, or ``None`` when Redis holds no record; one round
        trip. The result comes as Redis holds it (compressed), not decoded."""

        def fill(pipe: redis.client.Pipeline) -> None:
            pipe.hgetall(job_key(job_id))
            pipe.execute_command(  # type: ignore[no-untyped-call]
                "GET", result_key(job_id), NEVER_DECODE=True
            )

        fields, stored = self._shards.one(shard_of_job(job_id), fill)
        return Job(job_id, fields, stored) if fields else None

    def list_jobs(
        self, state: JobState | None, *, limit: int, after: str | None = None
    ) -> tuple[list[Job], str | None]:
        """Jobs newest first, ``limit`` at most, older than job ``after``; and the next cursor.

        Every shard's index is read from ``after`` on, and the newest ``limit`` of them all
        taken: job IDs sort by creation across shards, so pages cover every job once.
        """
        upper = f"({after}" if after else "+"
        name = index_name(state)

        def newest(shard: int) -> Any:
            return lambda pipe: pipe.zrevrangebylex(
                shard_key(shard, name), upper, "-", start=0, num=limit + 1
            )

        pages = self._shards.run({shard: newest(shard) for shard in SHARDS})
        ids = sorted((i for page in pages.values() for i in page[0]), reverse=True)
        more = len(ids) > limit
        ids = ids[:limit]
        by_shard: dict[int, list[str]] = {}
        for job_id in ids:
            by_shard.setdefault(shard_of_job(job_id), []).append(job_id)

        def records(shard: int) -> Any:
            def fill(pipe: redis.client.Pipeline) -> None:
                for job_id in by_shard[shard]:
                    pipe.hgetall(job_key(job_id))

            return fill

        replies = self._shards.run({shard: records(shard) for shard in by_shard})
        found = {
            job_id: fields
            for shard, shard_ids in by_shard.items()
            for job_id, fields in zip(shard_ids, replies[shard], strict=True)
        }
        jobs = [Job(job_id, found[job_id]) for job_id in ids if found[job_id]]
        return jobs, (ids[-1] if more and ids else None)

    # --- attempts ------------------------------------------------------------------------------
    def claim_next(
        self, token: str, *, shard: int, worker: str, instance: str, lease_seconds: float
    ) -> ClaimOutcome:
        """Take the oldest pending job of ``shard`` under ``token`` and lease it; one round trip.

        Call again with the same token and shard after a lost reply: it returns the job that
        token took.
        """
        lease_ms = int(lease_seconds * 1000)
        reply = self._script(
            "claim",
            shard,
            keys={"claim": claim_key(shard, token)},
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
        progress, one script per shard, one pipeline per node; say which attempts lost their job
        and which were asked to stop (``scenarios_done`` is None before the first chunk)."""
        triples: dict[int, list[Any]] = {}
        for job_id, token, done in held:
            triples.setdefault(shard_of_job(job_id), []).extend(
                (job_id, token, "" if done is None else done)
            )
        args = {"lease_ms": int(lease_seconds * 1000)}

        def renew(shard: int) -> Any:
            return lambda pipe: self._queue(pipe, "renew", shard, {}, args, triples[shard])

        replies = self._shards.run({shard: renew(shard) for shard in triples})
        lost = [token for reply in replies.values() for token in reply[0][0]]
        cancel = [token for reply in replies.values() for token in reply[0][1]]
        return RenewOutcome(lost, cancel)

    def mark_complete(
        self, job_id: str, token: str, result_json: str, *, duration_ms: float
    ) -> Transition:
        """Store the result (compressed: ``compressed_result``) and finish the attempt ``token``, in
        one round trip.

        The result goes in with a plain SET pipelined before the finish script: Redis keeps the
        bytes it read, where an argument of the script would be copied into Lua and out again.
        """
        fields = {"duration_ms": round(duration_ms, 3)}
        keys, args, rest = self._finish_call(job_id, token, JobState.COMPLETE, fields)
        stored = compressed_result(result_json)

        def fill(pipe: redis.client.Pipeline) -> None:
            pipe.set(keys["staged_result"], stored, px=min(STAGED_RESULT_MS, self._ttl_ms))
            self._queue(pipe, "finish", shard_of_job(job_id), keys, args, rest)

        return Transition(self._shards.one(shard_of_job(job_id), fill, confirm=True)[-1])

    def mark_failed(
        self, job_id: str, token: str, code: str, message: str, *, duration_ms: float
    ) -> Transition:
        """Record a failure of the attempt ``token`` with a stable code."""
        fields = {
            "error_code": code,
            "error_message": message,
            "duration_ms": round(duration_ms, 3),
        }
        keys, args, rest = self._finish_call(job_id, token, JobState.FAILED, fields)
        shard = shard_of_job(job_id)
        return Transition(
            self._shards.one(
                shard, lambda p: self._queue(p, "finish", shard, keys, args, rest), confirm=True
            )[-1]
        )

    def _finish_call(
        self, job_id: str, token: str, state: JobState, fields: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, Any], list[Any]]:
        keys = {
            "job": job_key(job_id),
            "final_index": shard_key(shard_of_job(job_id), index_name(state)),
            "staged_result": staged_result_key(job_id, token),
            "result": result_key(job_id),
        }
        args = {"id": job_id, "token": token, "final_state": state.value}
        return keys, args, [item for pair in fields.items() for item in pair]

    def release(self, job_id: str, token: str) -> Transition:
        """Hand the attempt ``token`` back: the job is pending again at its place in the queue."""
        keys, args = {"job": job_key(job_id)}, {"id": job_id, "token": token}
        return Transition(self._script("release", shard_of_job(job_id), keys, args, confirm=True))

    def release_instance(self, instance: str) -> list[str]:
        """Hand back every job still running under ``instance`` (a gunicorn master that exits),
        in every shard."""
        args = {"instance": instance, "handback_ttl_ms": min(HANDBACK_MEMORY_MS, self._ttl_ms)}

        def hand_back(shard: int) -> Any:
            keys = {"handback": handback_key(shard, instance)}
            return lambda pipe: self._queue(pipe, "release_instance", shard, keys, args)

        replies = self._shards.run({s: hand_back(s) for s in SHARDS}, confirm=True)
        return [job_id for shard in SHARDS for job_id in replies[shard][0]]

    def cancel(self, job_id: str, *, user_id: str | None, message: str) -> CancelOutcome:
        """Cancel a pending job at once, or mark a running one to stop; safe to send again.

        The outcome carries the record as the same script left it: what the caller shows
        cannot be a later state (a job that completed after the cancel was answered).
        """
        keys = {"job": job_key(job_id)}
        args = {"id": job_id, "user_id": user_id or "", "message": message}
        status, flat = self._script("cancel", shard_of_job(job_id), keys, args, confirm=True)
        job = Job(job_id, record_fields(flat)) if flat else None
        return CancelOutcome(CancelStatus(status), job)

    # --- upkeep --------------------------------------------------------------------------------
    def lead_sweeps(self, holder: str, *, lease_ms: int, renew: bool) -> bool:
        """Whether ``holder`` sweeps every shard this period: it holds the fleet's sweep lease.

        ``renew`` (the holder of the last period): renew it if it is still ours, take it if
        it is free (a script). Otherwise only take it when free: one SET NX, the one command a
        sweeper that does not lead sends.
        """
        leader = shard_key(FLEET_SHARD, "sweep:leader")
        if not renew:

            def take(pipe: redis.client.Pipeline) -> None:
                pipe.set(leader, holder, nx=True, px=lease_ms)

            return bool(self._shards.one(FLEET_SHARD, take)[-1])
        args = {"holder": holder, "lease_ms": lease_ms}
        return bool(self._script("lead", FLEET_SHARD, {"leader": leader}, args))

    def sweep(self, shards: Iterable[int], *, max_lost_attempts: int) -> SweepOutcome:
        """Recover lapsed leases and trim expired jobs' entries in ``shards``, one batch each,
        one pipeline per node; the shards whose batch was full (sweep them again at once)."""
        args = {
            "max_lost": max_lost_attempts,
            "batch": SWEEP_BATCH,
            "worker_lost_message": WORKER_LOST_MESSAGE,
        }

        def sweep_one(shard: int) -> Any:
            return lambda pipe: self._queue(pipe, "sweep", shard, {}, args)

        replies = self._shards.run({shard: sweep_one(shard) for shard in shards})
        recovered = [
            RecoveryOutcome(reply[0][i], reply[0][i + 1])
            for reply in replies.values()
            for i in range(1, len(reply[0]), 2)
        ]
        more = tuple(shard for shard, reply in replies.items() if reply[0][0])
        return SweepOutcome(recovered, more)

    def queue_depth(self) -> dict[str, int]:
        """Pending and running counts across every shard, one pipeline per node."""

        def count(shard: int) -> Any:
            def fill(pipe: redis.client.Pipeline) -> None:
                for name in QUEUE_DEPTH_NAMES.values():
                    pipe.zcard(shard_key(shard, name))

            return fill

        replies = self._shards.run({shard: count(shard) for shard in SHARDS})
        return {
            name: sum(replies[shard][i] for shard in SHARDS)
            for i, name in enumerate(QUEUE_DEPTH_NAMES)
        }

    def overview(self) -> Overview:
        """Counts across every shard and the workers running jobs, one pipeline per node."""
        args = {"worker_limit": OVERVIEW_WORKER_LIMIT}

        def read(shard: int) -> Any:
            return lambda pipe: self._queue(pipe, "overview", shard, {}, args)

        replies = [reply[0] for reply in self._shards.run({s: read(s) for s in SHARDS}).values()]
        first_minute = max(int(reply[0]) for reply in replies) // 60 - FINISHED_WINDOW_MINUTES + 1

        def last_hour(counts: Sequence[str]) -> int:
            return sum(
                int(count)
                for minute, count in record_fields(counts).items()
                if int(minute) >= first_minute
            )

        jobs_per_worker: dict[str, int] = {}
        for worker in (worker or "unknown" for reply in replies for worker in reply[5]):
            jobs_per_worker[worker] = jobs_per_worker.get(worker, 0) + 1
        return Overview(
            pending=sum(reply[1] for reply in replies),
            running=sum(reply[2] for reply in replies),
            complete_last_hour=sum(last_hour(reply[3]) for reply in replies),
            failed_last_hour=sum(last_hour(reply[4]) for reply in replies),
            running_per_worker=jobs_per_worker,
        )


def create_store(settings: Settings, client: redis.Redis | RedisCluster) -> JobStore:
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
