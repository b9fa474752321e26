"""The dashboard in a real browser (Debian's headless chromium) against a live gunicorn.

Invariants: the overview's counts follow the cluster without a reload; a running job's bar
moves; Cancel stops the job and the page says `cancelled`; a complete job's page has every
player of the slate, each with its picture; markup in a name is shown as text and never runs.
Each page is saved as a screenshot under .artifacts/dashboard/.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.browser import Browser
from tests.support.gunicorn import Gunicorn
from tests.support.slates import ATTRIBUTE_NAME, HOSTILE_SLATE_ID, SCRIPT_NAME, hostile_slate

pytestmark = pytest.mark.e2e

FOOTBALL = "nfl-2026-11-29-main"
FOOTBALL_PLAYERS = 494


def _submit(server, slate_id: str, scenarios: int) -> str:
    response = server.request(
        "POST", "/jobs", {"slate_id": slate_id, "scenario_count": scenarios, "seed": 11}
    )
    assert response.status == 202, response.body
    job_id: str = response.body["id"]
    return job_id


def _complete_job_page(
    gunicorn: Callable[..., Gunicorn],
    browser: Callable[[Gunicorn], Browser],
    slate_id: str,
    scenarios: int,
    query: str = "",
) -> Browser:
    """A browser on the page of a job of ``slate_id`` that ran to complete."""
    server = gunicorn()
    job_id = _submit(server, slate_id, scenarios)
    server.wait_for_job(job_id, {"complete"})
    page = browser(server)
    page.open(f"/dashboard/jobs/{job_id}{query}")
    return page


def test_the_overview_shows_the_counts_as_jobs_arrive_without_a_reload(gunicorn, browser):
    server = gunicorn(JOB_CONCURRENCY="0")  # intake only: what is submitted stays pending
    page = browser(server)
    page.open("/dashboard")
    assert page.text('[data-field="pending"]') == "0"
    page.script("window.__sameDocument = true")
    for _ in range(3):
        _submit(server, FOOTBALL, 1000)
    page.wait(lambda: page.text('[data-field="pending"]') == "3", what="pending count 3")
    assert page.script("return window.__sameDocument === true"), "the page was reloaded"
    assert page.text('[data-field="running"]') == "0"
    assert page.text('[data-check="redis"] [data-field="check-status"]') == "up"
    assert page.text('[data-check="neo4j"] [data-field="check-status"]') == "up"
    page.screenshot("overview")
    page.open("/dashboard/jobs?state=pending")
    assert len(page.find_all("a.job-link")) == 3
    page.screenshot("job-list")
    assert page.console_errors() == []


def test_a_running_jobs_bar_moves_and_cancel_stops_it(gunicorn, browser):
    server = gunicorn(JOB_MAX_SCENARIOS="20000000")  # long enough to watch, cancelled anyway
    job_id = _submit(server, FOOTBALL, 20_000_000)
    page = browser(server)
    page.open(f"/dashboard/jobs/{job_id}")
    seen: list[float] = []

    def moved_twice() -> bool:
        value = float(page.find('progress[data-field="progress"]').get_attribute("value"))
        if not seen or value > seen[-1]:
            seen.append(value)
        return len(seen) >= 3 and seen[0] < seen[1] < seen[2]

    page.wait(moved_twice, timeout=60, what="the progress bar moving twice")
    assert page.text('[data-field="state"]') == "running"
    page.screenshot("job-running")
    page.find("form.cancel button").click()
    # The server's page of the ended job: its error section, and the state says cancelled.
    page.wait(lambda: page.text(".failure code") == "cancelled", 30, "the cancelled job's page")
    assert page.text('[data-field="state"]') == "cancelled"
    page.screenshot("job-cancelled")
    record = server.request("GET", f"/jobs/{job_id}").body
    assert record["state"] == "failed" and record["error"]["code"] == "cancelled"
    assert page.find_all("form.cancel") == []
    assert page.console_errors() == []


def test_a_complete_jobs_page_has_every_player_with_a_picture(gunicorn, browser):
    page = _complete_job_page(gunicorn, browser, FOOTBALL, 20_000)
    rows = page.find_all("tr[data-player-id]")
    assert len(rows) == FOOTBALL_PLAYERS
    widths = page.script(
        "return Array.from(document.querySelectorAll('tr[data-player-id]'))"
        ".map(row => row.querySelector('svg.box rect.spread').getBoundingClientRect().width)"
    )
    assert len(widths) == FOOTBALL_PLAYERS and all(width > 0 for width in widths)
    assert len(page.find_all("tr[data-team-id] svg.bar")) == 2 * 26
    page.screenshot("job-complete")
    page.find('a.sort[href*="sort=p90"]').click()
    page.wait(lambda: page.text("a.sort[data-sorted]").startswith("p90"), what="sorted by p90")
    p90 = [float(cell.text) for cell in page.find_all("tr[data-player-id] td:nth-child(7)")]
    assert len(p90) == FOOTBALL_PLAYERS and p90 == sorted(p90, reverse=True)
    page.screenshot("job-complete-by-p90")
    assert page.console_errors() == []


def test_a_player_named_with_markup_is_shown_as_text(gunicorn, browser):
    page = _complete_job_page(gunicorn, browser, HOSTILE_SLATE_ID, 2000, "?sort=name")
    assert page.text('tr[data-player-id="test-hx-a-0"] .player-name') == SCRIPT_NAME
    assert page.text('tr[data-player-id="test-hx-b-1"] .player-name') == ATTRIBUTE_NAME
    assert len(page.find_all("tr[data-player-id]")) == len(hostile_slate()["players"])
    assert page.find_all("main script, main img, main b, main i") == []
    assert page.script("return window.__pwned === undefined")
    page.screenshot("job-markup-names")
    assert page.console_errors() == []
