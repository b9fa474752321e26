"""IDs from the stdlib generator: unique across forked workers, which Python reseeds."""

from __future__ import annotations

import multiprocessing

from ulid import ULID

from app.correlation import new_id
from app.jobs.ids import new_job_id, parse_job_id, was_issued_here


def _mint(queue) -> None:
    queue.put([new_id() for _ in range(50)] + [new_job_id() for _ in range(50)])


def test_ids_minted_in_forked_workers_at_once_never_collide():
    new_id(), new_job_id()  # the parent has used its generator before forking, as a master may
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_mint, args=(queue,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    minted = [queue.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(30)
    everything = [identifier for batch in minted for identifier in batch]
    assert len(set(everything)) == len(everything) == 400
    # Not only the clock: the random parts differ too (each child's generator was reseeded).
    random_parts = [bytes(ULID.from_str(identifier))[6:] for identifier in everything]
    assert len(set(random_parts)) == 400
    job_ids = [identifier for batch in minted for identifier in batch[50:]]
    assert all(was_issued_here(parse_job_id(job_id)) for job_id in job_ids)
