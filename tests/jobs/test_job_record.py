"""The job record and its public JSON, and the store's Python side, on fakeredis: no service.

The Lua scripts themselves are tested against the real Redis (tests/jobs/test_store.py); here
the Python around them: how a record reads, how the result is spliced into the JSON, how the
replies of the scripts become outcomes, how keys are named.
"""

from __future__ import annotations

import gzip
import io
import zlib

import orjson

from app.correlation import new_id
from app.jobs.ids import new_job_id
from app.jobs.job import Job, JobState, compressed_result, record_fields
from app.jobs.keys import idempotency_digest, idempotency_key, index_name, shard_of_job
from app.jobs.outcomes import CancelStatus, ClaimStatus, NewJob, SubmitStatus

PARAMS = {"slate_id": "s", "scenario_count": 100, "seed": 1}


def _record(**fields: str) -> dict[str, str]:
    base = {
        "state": "running",
        "params": '{"scenario_count":100,"seed":1,"slate_id":"s"}',
        "scenario_count": "100",
        "created_at": "1764547200000",
        "started_at": "1764547201000",
        "attempts": "2",
        "claim_token": "t2",
    }
    return {**base, **fields}


def test_the_public_json_splices_the_stored_result_as_it_is():
    result = '{"players":[{"id":"p1","mean":12.5}],"seed":1}'
    stored = compressed_result(result)
    assert stored.startswith(b"SZD1") and result.encode() not in stored  # compressed
    job = Job("01KB3Y6ZC4R1V7Q2N9D8W5T0XM", _record(state="complete"), stored)
    document = orjson.loads(job.to_json())
    assert document == {**job.to_dict(include_result=False), "result": orjson.loads(result)}
    assert job.to_json().startswith(b'{"result":' + result.encode() + b',"id":')


def single_member_read(packed: bytes) -> bytes:
    """What curl and other one-member gzip readers get: the first member, and nothing may
    follow it."""
    reader = zlib.decompressobj(zlib.MAX_WBITS | 16)
    plain = reader.decompress(packed)
    assert reader.eof and reader.unused_data == b"", "more than one gzip member"
    return plain


def test_the_gzip_form_is_one_member_carrying_the_stored_stream_unchanged():
    result = '{"players":[{"id":"p1","name":"A \\"quoted\\" name"}],"seed":2}'
    stored = compressed_result(result)
    job = Job("01KB3Y6ZC4R1V7Q2N9D8W5T0XM", _record(state="complete"), stored)
    packed = job.to_gzip()
    assert packed is not None
    assert stored[12:] in packed  # the deflate stream as Redis holds it, never recompressed
    assert single_member_read(packed) == job.to_json()
    assert gzip.decompress(packed) == job.to_json()  # the CRC-32 and length check out
    with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:  # a streaming reader
        assert orjson.loads(stream.read())["result"] == orjson.loads(result)


def test_a_plain_json_result_written_before_0_5_reads_and_is_sent_plain():
    job = Job("01KB3Y6ZC4R1V7Q2N9D8W5T0XM", _record(state="complete"), b'{"old":true}')
    assert job.result() == {"old": True}
    assert job.to_gzip() is None
    assert orjson.loads(job.to_json())["result"] == {"old": True}


def test_a_result_kept_inside_the_record_by_versions_before_0_2_is_served():
    job = Job("01KB3Y6ZC4R1V7Q2N9D8W5T0XM", _record(state="complete", result='{"v":1}'))
    assert job.to_dict()["result"] == {"v": 1}


def test_progress_is_the_current_attempts_own_and_never_past_the_total():
    earlier = _record(progress_done="60", progress_token="t1", progress_at="1764547202000")
    assert Job("j", earlier).to_dict()["progress"]["scenarios_done"] == 0
    own = _record(progress_done="150", progress_token="t2", progress_at="1764547202000")
    progress = Job("j", own).to_dict()["progress"]
    assert (progress["scenarios_done"], progress["fraction"]) == (100, 1.0)
    assert progress["updated_at"] == "2025-12-01T00:00:02.000Z"
    assert Job("j", _record(state="pending")).to_dict()["progress"] is None
    assert "progress" not in Job("j", _record(state="complete")).to_dict()


def test_a_flat_reply_reads_as_fields():
    assert record_fields(["a", "1", "b", "2"]) == {"a": "1", "b": "2"}


def test_keys_of_one_idempotency_key_differ_by_user_and_index_all_is_the_default():
    assert idempotency_digest("alice", "k") != idempotency_digest("bob", "k")
    assert idempotency_digest(None, "k") == idempotency_digest("", "k")
    assert idempotency_key(idempotency_digest("alice", "k")).startswith("slatesim:{s")
    assert index_name(None) == "index:all" != index_name(JobState.PENDING)


def test_an_id_minted_for_a_shard_is_of_that_shard_and_ids_spread_over_all():
    assert all(shard_of_job(new_job_id(shard=shard)) == shard for shard in range(12))
    assert {shard_of_job(new_job_id()) for _ in range(600)} == set(range(12))


def test_script_replies_become_outcomes(fake_store):
    first, second = new_job_id(shard=3), new_job_id(shard=3)
    outcomes = fake_store.submit_many([NewJob(first, PARAMS), NewJob(second, PARAMS)])
    assert [o.status for o in outcomes] == [SubmitStatus.CREATED] * 2
    assert outcomes[0].job.state is JobState.PENDING and outcomes[0].job.params == PARAMS
    claimed = fake_store.claim_next(new_id(), shard=3, worker="w:1", instance="i", lease_seconds=30)
    assert claimed.status is ClaimStatus.CLAIMED and claimed.job is not None
    assert claimed.job.id == first and claimed.cancelled == ()
    cancel = fake_store.cancel(second, user_id="bob", message="m")
    assert cancel.status is CancelStatus.CANCELLED and cancel.job is not None
    assert cancel.job.to_dict()["cancelled_by"] == "bob"
    empty = fake_store.claim_next(new_id(), shard=3, worker="w:1", instance="i", lease_seconds=30)
    assert (empty.status, empty.job) == (ClaimStatus.EMPTY, None)
    jobs, cursor = fake_store.list_jobs(None, limit=1)
    assert [job.id for job in jobs] == [second] and cursor == second
    older, end = fake_store.list_jobs(None, limit=1, after=cursor)
    assert [job.id for job in older] == [first] and end is None
    assert fake_store.queue_depth() == {"pending": 0, "running": 1}
