"""The shard layout of the store's keys: pure functions, no Redis."""

from __future__ import annotations

from collections import Counter

import pytest
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from ulid import ULID

from app.jobs.ids import new_job_id
from app.jobs.keys import (
    SHARD_COUNT,
    SHARD_TAGS,
    SHARDS,
    claim_key,
    handback_key,
    idempotency_digest,
    idempotency_key,
    job_key,
    result_key,
    shard_key,
    shard_of_job,
    staged_result_key,
    submission_shard,
)

TWELFTH = REDIS_CLUSTER_HASH_SLOTS / SHARD_COUNT


def slot_of(shard: int) -> int:
    return key_slot(shard_key(shard, "queue").encode())


def test_each_shard_tag_lies_in_the_middle_half_of_its_twelfth_of_the_slots():
    for shard in SHARDS:
        middle = (shard + 0.5) * TWELFTH
        assert abs(slot_of(shard) - middle) < TWELFTH / 4, (SHARD_TAGS[shard], slot_of(shard))


@pytest.mark.parametrize("primaries", [2, 3, 4, 6, 12])
def test_an_even_split_of_the_slots_gives_every_primary_as_many_shards(primaries):
    """As `redis-cli --cluster create` splits them: contiguous ranges of equal size."""
    size = REDIS_CLUSTER_HASH_SLOTS / primaries
    held = Counter(int(slot_of(shard) // size) for shard in SHARDS)
    assert sorted(held.values()) == [SHARD_COUNT // primaries] * primaries


def test_every_key_of_a_job_lies_in_its_shards_slot():
    for shard in SHARDS:
        job_id = new_job_id(shard=shard)
        assert shard_of_job(job_id) == shard
        keys = [
            job_key(job_id),
            result_key(job_id),
            staged_result_key(job_id, "token"),
            claim_key(shard, "token"),
            handback_key(shard, "instance"),
        ]
        assert {key_slot(key.encode()) for key in keys} == {slot_of(shard)}


def test_an_idempotency_keys_record_and_its_job_share_a_slot():
    for n in range(50):
        digest = idempotency_digest("alice", f"key-{n}")
        shard = submission_shard("alice", f"key-{n}")
        assert shard is not None
        job_id = new_job_id(shard=shard)
        assert key_slot(idempotency_key(digest).encode()) == key_slot(job_key(job_id).encode())
    assert submission_shard("alice", None) is None


def test_jobs_without_a_key_spread_over_every_shard():
    counts = Counter(shard_of_job(new_job_id()) for _ in range(12_000))
    assert set(counts) == set(SHARDS)
    assert max(counts.values()) < 1.2 * min(counts.values()), counts


def test_the_shard_read_from_the_ids_text_is_the_last_32_bits_of_the_ulid():
    for _ in range(2000):
        ulid = ULID()
        expected = int.from_bytes(bytes(ulid)[-4:], "big") % SHARD_COUNT
        assert shard_of_job(str(ulid)) == expected == shard_of_job(str(ulid).lower())
