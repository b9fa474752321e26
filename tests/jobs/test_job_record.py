"""The job record and its public JSON, and the store's Python side, on fakeredis: no service.

The Lua scripts themselves are tested against the real Redis (tests/jobs/test_store.py); here
the Python around them: how a record reads, how the result is spliced into the JSON, how the
replies of the scripts become outcomes, how keys are named.
"""

from __future__ import annotations

import orjson

from app.correlation import new_id
from app.jobs.ids import new_job_id
from app.jobs.job import Job, JobState, record_fields
from app.jobs.keys import ALL_INDEX_KEY, idempotency_key, index_key
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
    stored = '{"players":[{"id":"p1","mean":12.5}],"seed":1}'
    job = Job("01KB3Y6ZC4R1V7Q2N9D8W5T0XM", _record(state="complete"), stored)
    document = orjson.loads(job.to_json())
    assert document == {**job.to_dict(include_result=False), "result": orjson.loads(stored)}
    assert job.to_json().endswith(b',"result":' + stored.encode() + b"}")


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
    assert idempotency_key("alice", "k") != idempotency_key("bob", "k")
    assert idempotency_key(None, "k") == idempotency_key("", "k")
    assert index_key(None) == ALL_INDEX_KEY != index_key(JobState.PENDING)


def test_script_replies_become_outcomes(fake_store):
    first, second = new_job_id(), new_job_id()
    outcomes = fake_store.submit_many([NewJob(first, PARAMS), NewJob(second, PARAMS)])
    assert [o.status for o in outcomes] == [SubmitStatus.CREATED] * 2
    assert outcomes[0].job.state is JobState.PENDING and outcomes[0].job.params == PARAMS
    claimed = fake_store.claim_next(new_id(), worker="w:1", instance="i", lease_seconds=30)
    assert claimed.status is ClaimStatus.CLAIMED and claimed.job is not None
    assert claimed.job.id == first and claimed.cancelled == ()
    cancel = fake_store.cancel(second, user_id="bob", message="m")
    assert cancel.status is CancelStatus.CANCELLED and cancel.job is not None
    assert cancel.job.to_dict()["cancelled_by"] == "bob"
    empty = fake_store.claim_next(new_id(), worker="w:1", instance="i", lease_seconds=30)
    assert (empty.status, empty.job) == (ClaimStatus.EMPTY, None)
    jobs, cursor = fake_store.list_jobs(None, limit=1)
    assert [job.id for job in jobs] == [second] and cursor == second
    older, end = fake_store.list_jobs(None, limit=1, after=cursor)
    assert [job.id for job in older] == [first] and end is None
    assert fake_store.queue_depth() == {"pending": 0, "running": 1}
