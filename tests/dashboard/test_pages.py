"""The dashboard without JavaScript (Flask's test client on the real Redis and Neo4j): every
fact the browser shows is in the server's HTML, every name is escaped, and a Cancel without
its token changes nothing."""

from __future__ import annotations

import dataclasses
import html

import pytest
import redis

from app import create_app
from app.dashboard.routes import CONTENT_SECURITY_POLICY
from app.jobs.keys import SHARD_COUNT
from app.jobs.simulation_job import simulation_job
from app.services import EXTENSION_KEY
from tests.support import results
from tests.support.pages import csrf_token, field_text, player_rows
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.results import claim_any
from tests.support.slates import (
    ATTRIBUTE_NAME,
    HOSTILE_SLATE_ID,
    HOSTILE_TEAM_NAME,
    SCRIPT_NAME,
    hostile_slate,
)

FOOTBALL = "nfl-2026-11-29-main"


def _page(client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["Cache-Control"] == "no-store"
    return response.get_data(as_text=True)


def test_the_overview_shows_the_cluster_counts(client, submit_over_http, run_next_job, svc):
    for _ in range(4):
        submit_over_http()
    run_next_job()  # complete
    submit_over_http(slate_id="no-such-slate")
    claim_any(svc.store, worker="w:7", instance="w:0", lease_seconds=60)  # one runs on w:7
    page = _page(client, "/dashboard")
    assert field_text(page, "pending") == "3"
    assert field_text(page, "running") == "1"
    assert field_text(page, "complete_last_hour") == "1"
    assert field_text(page, "failed_last_hour") == "0"
    assert "<td>w:7</td>" in page
    assert field_text(page, "status") == "ready"
    overview = client.get("/dashboard/overview.json").get_json()
    assert overview["queue"] == {"pending": 3, "running": 1}
    assert overview["finished_last_hour"] == {"complete": 1, "failed": 0}
    assert overview["workers"] == [{"worker": "w:7", "running": 1}]
    assert {check["status"] for check in overview["checks"].values()} == {"up"}


def _overview_commands(client, redis_client) -> dict[str, int]:
    """The commands one overview costs Redis, as its own statistics count them."""
    client.get("/dashboard/overview.json")  # scripts loaded, connections open
    redis_client.config_resetstat()
    client.get("/dashboard/overview.json")
    stats = redis_client.info("commandstats")
    return {
        name.removeprefix("cmdstat_"): entry["calls"]
        for name, entry in stats.items()
        if not name.startswith(("cmdstat_info", "cmdstat_config"))
    }


@pytest.fixture
def app_on_private_redis(settings, tmp_path):
    """The app on a Redis of this test's own: its command statistics count this test alone."""
    server = RedisServer(tmp_path / "redis", persistent=False).start()
    application = create_app(dataclasses.replace(settings, redis_url=server.url))
    observer = redis.Redis.from_url(server.url, decode_responses=True)
    yield application, observer
    observer.close()
    application.extensions[EXTENSION_KEY].close()
    server.stop()


def test_the_overview_is_one_round_trip_whose_cost_does_not_grow_with_the_jobs(
    app_on_private_redis,
):
    """Invariant: one script per shard in one round trip, and the same work inside them at 2
    jobs and at 60."""
    application, observer = app_on_private_redis
    client = application.test_client()
    svc = application.extensions[EXTENSION_KEY]
    body = simulation_job(svc.slates)

    def submit() -> None:
        job = {"slate_id": "nba-2026-11-28-showdown-bos-nyk", "scenario_count": 2000}
        assert client.post("/jobs", json=job).status_code == 202

    submit()
    results.run_next_job(svc.store, body)
    submit()
    few = _overview_commands(client, observer)
    for _ in range(50):
        submit()
    for _ in range(8):
        results.run_next_job(svc.store, body)
    assert _overview_commands(client, observer) == few
    assert few["evalsha"] == SHARD_COUNT  # a script per shard, all in one pipeline
    assert set(few) == {"evalsha", "time", "zcard", "zrange", "hgetall"}


def test_the_overview_without_redis_says_so_and_shows_no_count(settings):
    down = dataclasses.replace(
        settings, redis_url=f"redis://127.0.0.1:{free_port()}/1", dependency_timeout_seconds=0.5
    )
    application = create_app(down)
    try:
        page = _page(application.test_client(), "/dashboard")
    finally:
        application.extensions[EXTENSION_KEY].close()
    assert field_text(page, "pending") == "—"
    assert field_text(page, "status") == "not ready"
    assert "the job store is unavailable" in page


def test_the_job_list_is_newest_first_paginated_and_links_each_job(client, submit_over_http):
    ids = [submit_over_http() for _ in range(5)]
    first = _page(client, "/dashboard/jobs?state=pending&limit=2")
    assert first.index(ids[4]) < first.index(ids[3]) and ids[2] not in first
    assert f'href="/dashboard/jobs/{ids[4]}"' in first
    cursor = first.split('rel="next" href="')[1].split('"')[0]
    second = _page(client, html.unescape(cursor))
    assert ids[2] in second and ids[1] in second and ids[4] not in second
    assert ids[0] not in _page(client, "/dashboard/jobs?state=complete")


def test_a_complete_job_shows_every_player_with_a_picture_and_names_as_text(
    client, submit_over_http, run_next_job
):
    job_id = submit_over_http(slate_id=HOSTILE_SLATE_ID)
    run_next_job()
    page = _page(client, f"/dashboard/jobs/{job_id}")
    rows = player_rows(page)
    assert sorted(player_id for player_id, _ in rows) == sorted(
        player["id"] for player in hostile_slate()["players"]
    )
    assert all(cells[-1].startswith('<svg class="box"') for _, cells in rows)
    cells = dict(rows)
    # The names are in the page as text: escaped, so they read back exactly and hold no tag.
    assert html.unescape(cells["test-hx-a-0"][0]) == SCRIPT_NAME
    assert html.unescape(cells["test-hx-b-1"][0]) == ATTRIBUTE_NAME
    assert html.unescape(cells["test-hx-a-0"][1]) == HOSTILE_TEAM_NAME
    assert all("<" not in row[0] and "<" not in row[1] for row in cells.values())
    assert "<script>window" not in page and "<img" not in page and "<b>Bold" not in page
    assert "complete" in field_text(page, "state")
    assert page.count('<tr data-team-id="') == 2


@pytest.mark.parametrize("sort, column", [("projection", 2), ("mean", 3), ("p90", 6)])
def test_the_player_table_sorts_by_each_column(
    client, submit_over_http, run_next_job, sort, column
):
    job_id = submit_over_http(slate_id=FOOTBALL, scenarios=1000)
    run_next_job()
    for order in ("desc", "asc"):
        rows = player_rows(_page(client, f"/dashboard/jobs/{job_id}?sort={sort}&order={order}"))
        values = [float(cells[column]) for _, cells in rows]
        assert len(values) == 494
        assert values == sorted(values, reverse=order == "desc")
        assert values[0] != values[-1]


def test_the_player_table_sorts_by_value_target_probability(client, submit_over_http, run_next_job):
    job_id = submit_over_http(slate_id=FOOTBALL, scenarios=1000)
    run_next_job()
    rows = player_rows(_page(client, f"/dashboard/jobs/{job_id}?sort=value"))
    values = [float(cells[8].rstrip("%")) for _, cells in rows]
    assert values == sorted(values, reverse=True) and values[0] > values[-1]


def test_a_failed_job_shows_its_error_code_and_message(client, submit_over_http, run_next_job):
    job_id = submit_over_http(slate_id="no-such-slate")
    run_next_job()
    page = _page(client, f"/dashboard/jobs/{job_id}")
    assert "<code>slate_not_found</code>" in page and "no slate &#39;no-such-slate&#39;" in page
    assert 'class="cancel"' not in page


def test_a_running_job_shows_its_progress_and_a_cancel_form(client, submit_over_http, svc):
    job_id = submit_over_http()
    claim_any(svc.store, worker="w:7", instance="w:0", lease_seconds=60)
    page = _page(client, f"/dashboard/jobs/{job_id}")
    assert field_text(page, "scenarios_done") == "0"
    assert '<progress max="1" value="0' in page
    assert csrf_token(page)


def test_a_job_handed_back_after_its_cancel_shows_cancelling_and_a_cancel_ends_it(
    client, submit_over_http, svc
):
    job_id = submit_over_http()
    claimed = claim_any(svc.store, worker="w:7", instance="w:0", lease_seconds=60).job
    assert svc.store.cancel(job_id, user_id="bob", message="m").status.value == "requested"
    running = _page(client, f"/dashboard/jobs/{job_id}")
    assert field_text(running, "state") == "cancelling" and 'class="cancel"' not in running
    assert claimed is not None
    svc.store.release(job_id, claimed.claim_token)  # a drain handed it back before it stopped
    page = _page(client, f"/dashboard/jobs/{job_id}")
    assert field_text(page, "state") == "cancelling"
    assert "Cancel requested" in page and "by bob" in page
    response = client.post(
        f"/dashboard/jobs/{job_id}/cancel", data={"csrf_token": csrf_token(page)}
    )
    assert response.headers["Location"].endswith("?notice=cancelled")
    assert svc.store.get(job_id).to_dict()["error"]["code"] == "cancelled"


def test_a_cancel_without_its_token_is_refused_and_changes_nothing(client, submit_over_http, svc):
    job_id = submit_over_http()
    page = _page(client, f"/dashboard/jobs/{job_id}")
    token = csrf_token(page)
    before = svc.store.get(job_id).fields
    attempts = [
        ({}, {}),  # no token at all
        ({"csrf_token": token}, {}),  # the field, but the cookie was dropped
        ({"csrf_token": "A" * 43}, {"slatesim_csrf": token}),  # a guessed field
        ({"csrf_token": token}, {"slatesim_csrf": token, "Sec-Fetch-Site": "cross-site"}),
    ]
    for form, extra in attempts:
        fresh = client.application.test_client()
        if "slatesim_csrf" in extra:
            fresh.set_cookie("slatesim_csrf", extra["slatesim_csrf"], path="/dashboard")
        headers = {k: v for k, v in extra.items() if k == "Sec-Fetch-Site"}
        response = fresh.post(f"/dashboard/jobs/{job_id}/cancel", data=form, headers=headers)
        assert response.status_code == 403, (form, extra)
        assert "csrf_failed" in response.get_data(as_text=True)
    assert svc.store.get(job_id).fields == before
    assert svc.store.get(job_id).state.value == "pending"


def test_a_cancel_with_its_token_cancels_and_says_so(client, submit_over_http, svc):
    job_id = submit_over_http()
    token = csrf_token(_page(client, f"/dashboard/jobs/{job_id}"))
    response = client.post(f"/dashboard/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/dashboard/jobs/{job_id}?notice=cancelled"
    page = _page(client, response.headers["Location"])
    assert field_text(page, "state") == "cancelled" and "Cancelled: the job will not run." in page
    again = client.post(f"/dashboard/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert again.headers["Location"].endswith("?notice=cancelled")  # cancelled before: the same


@pytest.mark.parametrize(
    "path, status, field",
    [
        ("/dashboard/jobs/not-a-job", 400, None),
        ("/dashboard/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404, None),
        ("/dashboard/jobs?state=done", 400, "state"),
        ("/dashboard/jobs?cursor=nope", 400, "cursor"),
        ("/dashboard/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV?sort=salary", 400, "sort"),
        ("/dashboard/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV?order=up", 400, "order"),
        ("/dashboard/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV?notice=%3Cscript%3E", 400, "notice"),
    ],
)
def test_bad_input_is_a_page_naming_the_field(client, path, status, field):
    page = _page(client, path, status)
    assert f"<h1>{status} · <code>" in page
    if field:
        assert f"Field: <code>{field}</code>" in page
    assert "<script>" not in page.split("</head>")[1]


def test_finished_counts_come_from_minute_counters_that_expire(
    client, submit_over_http, run_next_job, redis_client
):
    submit_over_http()
    run_next_job()
    counters = redis_client.keys("slatesim:*finished:*")
    assert len(counters) == 1 and 0 < redis_client.pttl(counters[0]) <= 7_200_000
