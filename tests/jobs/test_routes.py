"""The jobs HTTP contract: submission, validation, idempotency, fetch, listing, outages."""

from __future__ import annotations

import json
import threading
import time

import pytest
from flask import Flask
from ulid import ULID

from app import create_app
from app.config import Settings
from app.jobs.ids import new_job_id
from app.jobs.keys import SHARDS
from app.services import EXTENSION_KEY
from tests.support.answers import assert_error
from tests.support.invariants import all_job_ids
from tests.support.ports import free_port
from tests.support.results import claim_any

VALID = {"slate_id": "nba-2026-11-28-main", "scenario_count": 1000}


def _post(client, body, headers=None, **kwargs):
    return client.post("/jobs", json=body, headers=headers or {}, **kwargs)


def test_submit_accepts_the_job_and_draws_a_seed(fake_client):
    response = _post(fake_client, VALID)
    assert response.status_code == 202
    record = response.get_json()
    assert response.headers["Location"] == f"/jobs/{record['id']}"
    assert record["state"] == "pending"
    assert record["params"]["slate_id"] == VALID["slate_id"]
    assert record["params"]["scenario_count"] == 1000
    assert 0 <= record["params"]["seed"] <= 2**63 - 1
    assert record["request_id"] == response.headers["X-Request-ID"]
    stored = fake_client.get(response.headers["Location"]).get_json()
    assert stored["params"] == record["params"]


def test_a_given_seed_and_user_are_recorded(fake_client):
    response = _post(fake_client, {**VALID, "seed": 42}, {"X-User-ID": "alice"})
    record = response.get_json()
    assert record["params"]["seed"] == 42
    assert record["user_id"] == "alice"


def test_same_idempotency_key_returns_the_original_job(fake_client):
    headers = {"Idempotency-Key": "order-17", "X-User-ID": "alice"}
    first = _post(fake_client, VALID, headers)
    again = _post(fake_client, VALID, headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]


def test_same_idempotency_key_with_another_body_is_a_conflict(fake_client):
    headers = {"Idempotency-Key": "order-18"}
    _post(fake_client, VALID, headers)
    assert_error(
        _post(fake_client, {**VALID, "scenario_count": 5}, headers),
        409,
        "idempotency_conflict",
        "Idempotency-Key",
    )


def test_racing_identical_requests_create_one_job(app: Flask, redis_client):
    results = []
    barrier = threading.Barrier(8)

    def post_once() -> None:
        client = app.test_client()
        barrier.wait()
        results.append(_post(client, VALID, {"Idempotency-Key": "race-1", "X-User-ID": "bob"}))

    threads = [threading.Thread(target=post_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [200] * 7 + [202]
    assert len({r.get_json()["id"] for r in results}) == 1
    assert redis_client.keys("slatesim:*:queue") and len(all_job_ids(redis_client)) == 1


BAD_BODIES = [
    ({"scenario_count": 10}, "slate_id"),
    ({"slate_id": "x"}, "scenario_count"),
    ({**VALID, "extra": 1}, "extra"),
    ({**VALID, "scenario_count": True}, "scenario_count"),
    ({**VALID, "scenario_count": 10.0}, "scenario_count"),
    ({**VALID, "scenario_count": "10"}, "scenario_count"),
    ({**VALID, "scenario_count": 0}, "scenario_count"),
    ({**VALID, "scenario_count": 1_000_001}, "scenario_count"),
    ({**VALID, "scenario_count": 10**400}, "scenario_count"),
    ({**VALID, "seed": -1}, "seed"),
    ({**VALID, "seed": 2**63}, "seed"),
    ({**VALID, "seed": False}, "seed"),
    ({**VALID, "seed": None}, "seed"),
    ({**VALID, "slate_id": 7}, "slate_id"),
    ({**VALID, "slate_id": ""}, "slate_id"),
    ({**VALID, "slate_id": "a b"}, "slate_id"),
    ({**VALID, "slate_id": "x" * 200}, "slate_id"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_invalid_fields_are_rejected_naming_the_field(fake_client, fake_redis, body, field):
    assert_error(_post(fake_client, body), 400, "validation_error", field)
    assert fake_redis.dbsize() == 0


@pytest.mark.parametrize(
    "raw", [b"{", b"[1, 2]", b'"text"', b"null", b'{"slate_id": NaN}', b"\xff\xfe", b""]
)
def test_malformed_json_or_non_object_is_invalid_json(fake_client, fake_redis, raw):
    response = fake_client.post("/jobs", data=raw, content_type="application/json")
    assert_error(response, 400, "invalid_json")
    assert fake_redis.dbsize() == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_415(fake_client, fake_redis, content_type):
    response = fake_client.post("/jobs", data=json.dumps(VALID), content_type=content_type)
    assert_error(response, 415, "unsupported_media_type")
    assert fake_redis.dbsize() == 0


def test_a_body_over_64_kib_is_413(fake_client, fake_redis):
    raw = json.dumps({**VALID, "slate_id": "x" * (65 * 1024)})
    response = fake_client.post("/jobs", data=raw, content_type="application/json")
    assert_error(response, 413, "payload_too_large")
    assert fake_redis.dbsize() == 0


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Idempotency-Key", "has space"),
        ("Idempotency-Key", "k" * 129),
        ("Idempotency-Key", "caf\u00e9"),
        ("X-User-ID", "bad user"),
        ("X-User-ID", "u" * 65),
    ],
)
def test_invalid_headers_are_rejected_naming_the_header(fake_client, fake_redis, header, value):
    assert_error(_post(fake_client, VALID, {header: value}), 400, "validation_error", header)
    assert fake_redis.dbsize() == 0


def test_redis_unreachable_is_503_store_unavailable(settings, tmp_path):
    offline = Settings(**{**vars(settings), "redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    application = create_app(offline)
    client = application.test_client()
    response = _post(client, VALID)
    assert_error(response, 503, "store_unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert_error(client.get(f"/jobs/{new_job_id()}"), 503, "store_unavailable")
    application.extensions[EXTENSION_KEY].close()


def test_shutting_down_refuses_submissions_with_retry_after(fake_app, fake_client, fake_redis):
    fake_app.extensions[EXTENSION_KEY].shutdown.begin("test")
    response = _post(fake_client, VALID)
    assert_error(response, 503, "shutting_down")
    assert int(response.headers["Retry-After"]) > 0
    assert fake_redis.dbsize() == 0


def test_get_rejects_an_id_that_is_not_a_ulid(fake_client):
    for bad in ("nope", "01ARZ3NDEKTSV4RRFFQ69G5FA!", "U" * 26):
        assert_error(fake_client.get(f"/jobs/{bad}"), 400, "invalid_job_id")


def test_get_of_a_never_issued_id_is_404(fake_client):
    assert_error(fake_client.get(f"/jobs/{ULID()}"), 404, "job_not_found")
    ancient = str(ULID.from_timestamp(time.time() - 30 * 86400))
    assert_error(fake_client.get(f"/jobs/{ancient}"), 404, "job_not_found")


def test_a_job_past_its_retention_is_410_and_leaves_no_key(settings, redis_client):
    short = Settings(**{**vars(settings), "job_ttl_seconds": 1})
    application = create_app(short)
    client = application.test_client()
    job_id = _post(client, VALID).get_json()["id"]
    assert client.get(f"/jobs/{job_id}").status_code == 200
    time.sleep(1.3)
    response = client.get(f"/jobs/{job_id}")
    assert response.status_code == 410
    assert response.get_json()["id"] == job_id
    assert response.get_json()["state"] == "expired"
    application.extensions[EXTENSION_KEY].store.sweep(SHARDS, max_lost_attempts=3)
    assert redis_client.keys("slatesim:*") == []
    application.extensions[EXTENSION_KEY].close()


def test_listing_pages_newest_first_without_results(fake_client):
    ids = [_post(fake_client, {**VALID, "seed": n}).get_json()["id"] for n in range(5)]
    first = fake_client.get("/jobs?limit=3").get_json()
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:3]
    assert all("result" not in j for j in first["jobs"])
    second = fake_client.get(f"/jobs?limit=3&cursor={first['next_cursor']}").get_json()
    assert [j["id"] for j in second["jobs"]] == ids[::-1][3:]
    assert second["next_cursor"] is None
    pending = fake_client.get("/jobs?state=pending&limit=100").get_json()
    assert len(pending["jobs"]) == 5
    assert fake_client.get("/jobs?state=complete").get_json() == {"jobs": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=done", "state"),
        ("state=expired", "state"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("cursor=zzz", "cursor"),
        ("cursor=djE6bm90LWFuLWlk", "cursor"),
        ("page=2", "page"),
    ],
)
def test_listing_rejects_bad_parameters(fake_client, query, field):
    assert_error(fake_client.get(f"/jobs?{query}"), 400, "validation_error", field)


def test_a_submission_no_replica_confirms_is_a_503_that_says_the_job_may_exist(settings):
    # The test Redis has no replica, so REDIS_MIN_REPLICAS=1 is never met.
    confirmed = create_app(
        Settings(**{**vars(settings), "redis_min_replicas": 1, "dependency_timeout_seconds": 0.4})
    )
    response = _post(confirmed.test_client(), VALID, headers={"Idempotency-Key": "unconfirmed"})
    assert_error(response, 503, "store_unavailable")
    assert "Retry-After" in response.headers
    assert "may have been stored" in response.get_json()["error"]["message"]
    assert "Idempotency-Key" in response.get_json()["error"]["message"]
    ready = confirmed.test_client().get("/ready").get_json()
    assert ready["replication"] == {
        "role": "primary",
        "primary_id": ready["replication"]["primary_id"],
        "replicas_connected": 0,
        "replicas_required": 1,
        "met": False,
        "primaries": 1,
    }
    confirmed.extensions[EXTENSION_KEY].close()


def test_cancel_answers_each_state_of_a_job(client, store):
    submitted = _post(client, VALID).get_json()["id"]
    response = client.post(f"/jobs/{submitted}/cancel", headers={"X-User-ID": "carol"})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["state"], body["error"]["code"], body["cancelled_by"]) == (
        "failed",
        "cancelled",
        "carol",
    )
    assert client.post(f"/jobs/{submitted}/cancel").status_code == 200  # again: same record
    finished = _post(client, VALID).get_json()["id"]
    job = claim_any(store, worker="w", instance="i", lease_seconds=30).job
    assert job is not None and job.id == finished
    assert client.post(f"/jobs/{finished}/cancel").status_code == 202
    store.mark_complete(finished, job.claim_token, "{}", duration_ms=1)
    assert_error(client.post(f"/jobs/{finished}/cancel"), 409, "job_finished")
    assert_error(client.post(f"/jobs/{new_job_id()}/cancel"), 404, "job_not_found")
    assert_error(client.post("/jobs/not-a-ulid/cancel"), 400, "invalid_job_id")
    bad_user = client.post(f"/jobs/{finished}/cancel", headers={"X-User-ID": "a b"})
    assert_error(bad_user, 400, "validation_error", "X-User-ID")
