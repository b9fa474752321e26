"""The soak's faults: one at a time, each kind as often as the others, in an order and with
targets and durations drawn from the seed.

Every fault is applied, held, healed, and then the nemesis waits until HAProxy routes to both
instances again before it draws the next: the soak tests recovery from each fault under steady
load, and a fault that leaves the service unable to recover shows as a timeout here. The seed
fixes the schedule (kinds, targets, durations, pauses), not the exact interleaving with the
clients and the jobs.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tests.soak.stack import INSTANCE_ENV, SoakStack
from tests.support.waiting import wait_until

LEASE_SECONDS = float(INSTANCE_ENV["JOB_LEASE_SECONDS"])
DEADLINE_SECONDS = float(INSTANCE_ENV["DEPENDENCY_TIMEOUT_SECONDS"])
# Quiet time between two faults (seconds, drawn uniformly).
PAUSE_SECONDS = (2.0, 6.0)
# How long an instance may take to exit after SIGTERM: its lame duck, its drain, the margin.
EXIT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Fault:
    """One fault as the nemesis applied it; times in seconds from the start of the soak."""

    kind: str
    target: str
    at: float
    held: float
    recovered_after: float | None  # from healing to both instances in rotation; None: never

    def line(self) -> str:
        """How the report prints it."""
        recovered = "never" if self.recovered_after is None else f"{self.recovered_after:.1f}s"
        return (
            f"{self.at:7.1f}s  {self.kind:<16} {self.target:<6} held {self.held:5.1f}s  "
            f"back in rotation after {recovered}"
        )


@dataclass
class Nemesis:
    """Applies faults to ``stack`` from ``rng`` until told to stop."""

    stack: SoakStack
    rng: random.Random
    faults: list[Fault] = field(default_factory=list)
    # Every worker the nemesis SIGKILLed: what it was about to log may never have been written.
    killed_workers: set[int] = field(default_factory=set)

    def kinds(self) -> dict[str, Callable[[], tuple[str, float]]]:
        """Every kind of fault, by name; each applies, holds and heals one, returning its
        target and how long it held."""
        store: dict[str, Callable[[], tuple[str, float]]] = {
            "redis_reply_hold": self.hold_redis_replies,
            "redis_partition": self.cut_an_instance_off,
            "redis_restart": self.restart_redis,
            "redis_sigkill": self.kill_redis,
        }
        if self.stack.topology == "cluster":
            store = {
                "primary_sigkill": self.kill_a_primary,
                "replica_sigkill": self.kill_a_replica,
                "slots_moved": self.move_slots,
            }
        return {
            "worker_sigkill": self.kill_a_worker,
            "instance_sigkill": self.kill_an_instance,
            "instance_sigterm": self.restart_an_instance,
            "reload_sighup": self.reload_an_instance,
            **store,
            "neo4j_freeze": self.freeze_neo4j,
        }

    def schedule(self) -> Iterator[str]:
        """Kinds in rounds: each round every kind once, in an order drawn from the seed."""
        kinds = list(self.kinds())
        while True:
            self.rng.shuffle(kinds)
            yield from kinds

    def run(self, started: float, until: float, stop: threading.Event) -> None:
        """Apply faults until the monotonic time ``until`` (or ``stop``)."""
        kinds = self.kinds()
        for kind in self.schedule():
            if stop.wait(self.rng.uniform(*PAUSE_SECONDS)) or time.monotonic() >= until:
                return
            at = time.monotonic() - started
            target, held = kinds[kind]()
            healed = time.monotonic()
            recovered: float | None
            try:
                self.stack.wait_in_rotation(*self.stack.instances)
                recovered = time.monotonic() - healed
            except AssertionError:
                recovered = None
            self.faults.append(Fault(kind, target, at, held, recovered))
            print(self.faults[-1].line(), flush=True)
            if recovered is None:
                self.stack.heal()  # a fault the service did not recover from: report, go on

    def _instance(self) -> str:
        return self.rng.choice(sorted(self.stack.instances))

    def _hold(self, low: float, high: float) -> float:
        held = self.rng.uniform(low, high)
        time.sleep(held)
        return held

    # --- processes ---------------------------------------------------------------------------
    def kill_a_worker(self) -> tuple[str, float]:
        """SIGKILL one worker (the OOM killer): no hook runs; the master starts another."""
        name = self._instance()
        workers = self.stack.instances[name].worker_pids()
        if workers:
            victim = self.rng.choice(workers)
            self.killed_workers.add(victim)
            os.kill(victim, signal.SIGKILL)
        return name, 0.0

    def kill_an_instance(self) -> tuple[str, float]:
        """SIGKILL the master and its workers (a host or container gone), then start again."""
        name = self._instance()
        self.killed_workers.update(self.stack.instances[name].worker_pids())
        self.stack.instances[name].kill_group()
        held = self._hold(1, 4)
        self.stack.restart_instance(name)
        return name, held

    def restart_an_instance(self) -> tuple[str, float]:
        """SIGTERM (a rolling restart's step) and a new instance on the same port."""
        name = self._instance()
        instance = self.stack.instances[name]
        started = time.monotonic()
        instance.terminate()
        instance.wait_exit(EXIT_TIMEOUT_SECONDS)
        held = time.monotonic() - started
        self.stack.restart_instance(name)
        return name, held

    def reload_an_instance(self) -> tuple[str, float]:
        """SIGHUP: the master starts new workers, the old ones drain."""
        name = self._instance()
        instance = self.stack.instances[name]
        before = set(instance.worker_pids())
        started = time.monotonic()
        instance.signal(signal.SIGHUP)
        workers = int(INSTANCE_ENV["WEB_CONCURRENCY"])
        wait_until(
            lambda: len(set(instance.worker_pids()) - before) >= workers,
            EXIT_TIMEOUT_SECONDS,
            what=f"{name}'s new workers",
        )
        return name, time.monotonic() - started

    # --- Redis -------------------------------------------------------------------------------
    def hold_redis_replies(self) -> tuple[str, float]:
        """Redis's replies to one instance held past its deadline: its calls time out after
        Redis ran them, and it sends them again."""
        name = self._instance()
        proxy = self.stack.redis_proxies[name]
        with proxy.toxic("latency", latency=int(2500 * DEADLINE_SECONDS)):
            held = self._hold(3, 8)
        return name, held

    def cut_an_instance_off(self) -> tuple[str, float]:
        """Nothing crosses between one instance and Redis, either way, for longer than the
        lease: the other instance recovers its jobs while its attempts go on."""
        name = self._instance()
        proxy = self.stack.redis_proxies[name]
        upstream = proxy.add_toxic("timeout", stream="upstream", timeout=0)
        downstream = proxy.add_toxic("timeout", stream="downstream", timeout=0)
        held = self._hold(LEASE_SECONDS + 2, LEASE_SECONDS + 5)
        proxy.remove_toxic(upstream)
        proxy.remove_toxic(downstream)
        return name, held

    def restart_redis(self) -> tuple[str, float]:
        """Redis stopped (SIGTERM) and started again from its AOF."""
        self.stack.redis.stop()
        held = self._hold(0.5, 3)
        self.stack.redis.start()
        return "redis", held

    def kill_redis(self) -> tuple[str, float]:
        """Redis SIGKILLed and started again from its AOF."""
        self.stack.redis.kill()
        held = self._hold(0.5, 3)
        self.stack.redis.start()
        return "redis", held

    # --- Redis Cluster -----------------------------------------------------------------------
    def kill_a_primary(self) -> tuple[str, float]:
        """A primary SIGKILLed (its host gone): its replica takes over; the node starts again
        and rejoins as the new primary's replica (what an orchestrator's restart does)."""
        cluster = self.stack.cluster
        holders = {port: shards for port, shards in cluster.shards_by_primary().items() if shards}
        victim = self.rng.choice(sorted(holders))
        started = time.monotonic()
        cluster.kill(victim)
        cluster.wait_for_failover(victim, shard=holders[victim][0], timeout=60)
        held = time.monotonic() - started
        cluster.start()
        return f"node {victim}", held

    def kill_a_replica(self) -> tuple[str, float]:
        """A replica SIGKILLed: its primary's shards refuse writes (REDIS_MIN_REPLICAS=1)
        until it is back."""
        cluster = self.stack.cluster
        victim = self.rng.choice(cluster.replicas())
        cluster.kill(victim)
        held = self._hold(0.5, 3)
        cluster.start()
        return f"node {victim}", held

    def move_slots(self) -> tuple[str, float]:
        """A twelfth of the slots (one shard's) moved with `redis-cli --cluster reshard`, from
        the primary holding the most to the one holding the fewest, while jobs flow."""
        cluster = self.stack.cluster
        counts = cluster.slot_counts()
        source = max(counts, key=lambda port: counts[port])
        target = min(counts, key=lambda port: counts[port])
        started = time.monotonic()
        reshard = cluster.reshard(source, target, slots=16384 // 12)
        output, _ = reshard.communicate(timeout=EXIT_TIMEOUT_SECONDS * 5)
        if reshard.returncode != 0:
            raise RuntimeError(f"reshard failed: {output[-2000:]}")
        return f"{source}>{target}", time.monotonic() - started

    # --- Neo4j -------------------------------------------------------------------------------
    def freeze_neo4j(self) -> tuple[str, float]:
        """Neo4j answers logins and nothing more (a long pause behind a balancer)."""
        self.stack.neo4j.freeze()
        try:
            held = self._hold(3, 10)
        finally:
            self.stack.neo4j.thaw()
        return "neo4j", held
