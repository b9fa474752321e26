"""The ops CLI against the real Redis: JSON out, exit codes scripts can rely on."""

from __future__ import annotations

import json

import pytest
from ulid import ULID

from tests.support.results import claim_any


@pytest.fixture
def cli(app):
    """Invoke ``flask jobs ...`` in-process."""
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["jobs", *args])


def test_list_prints_jobs_newest_first(cli, store, submit_to_store):
    ids = [submit_to_store(seed=n) for n in range(3)]
    result = cli("list", "--limit", "2")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert [job["id"] for job in page["jobs"]] == ids[::-1][:2]
    rest = json.loads(cli("list", "--cursor", page["next_cursor"]).stdout)
    assert [job["id"] for job in rest["jobs"]] == ids[:1]
    assert json.loads(cli("list", "--state", "complete").stdout)["jobs"] == []


def test_show_prints_one_job_and_exits_1_when_unknown(cli, store, submit_to_store):
    job_id = submit_to_store()
    result = cli("show", job_id)
    assert result.exit_code == 0 and json.loads(result.stdout)["id"] == job_id
    assert cli("show", str(ULID())).exit_code == 1


def test_bad_arguments_exit_2(cli):
    assert cli("show", "not-a-job-id").exit_code == 2
    assert cli("list", "--limit", "0").exit_code == 2
    assert cli("list", "--state", "lost").exit_code == 2
    assert cli("list", "--cursor", "zzz").exit_code == 2
    assert cli("frobnicate").exit_code == 2


def test_requeue_submits_a_failed_job_again_with_the_same_params(cli, store, submit_to_store):
    job_id = submit_to_store(seed=42, scenario_count=77, user_id="ops")
    claimed = claim_any(store, worker="w", instance="i", lease_seconds=30).job
    assert claimed is not None
    store.mark_failed(job_id, claimed.claim_token, "simulation_error", "boom", duration_ms=1)
    result = cli("requeue", job_id)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["requeued_from"] == job_id
    assert document["job"]["id"] != job_id and document["job"]["state"] == "pending"
    assert document["job"]["params"] == store.get(job_id).params
    assert document["job"]["user_id"] == "ops"


def test_requeue_of_a_job_that_did_not_fail_is_a_usage_error(cli, store, submit_to_store):
    job_id = submit_to_store()
    result = cli("requeue", job_id)
    assert result.exit_code == 2 and "only failed jobs" in result.output
    assert store.queue_depth()["pending"] == 1


def test_depth_prints_the_queue_counts(cli, store, submit_to_store):
    submit_to_store()
    submit_to_store()
    claim_any(store, worker="w", instance="i", lease_seconds=30)
    assert json.loads(cli("depth").stdout) == {"pending": 1, "running": 1}
