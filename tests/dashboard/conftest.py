"""Fixtures for the dashboard's pages: an app on the real services, and jobs run in-process."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.jobs.simulation_job import simulation_job
from app.services import EXTENSION_KEY, Services
from tests.support import results

SUBMIT_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def _slates_are_seeded(seeded_slates: list[dict]) -> None:
    """Jobs here simulate the demo slates and the one named with markup."""


@pytest.fixture
def svc(app: Flask) -> Services:
    """The services of the app under test."""
    services: Services = app.extensions[EXTENSION_KEY]
    return services


@pytest.fixture
def submit_over_http(client: FlaskClient) -> Callable[..., str]:
    """Submit a job through the API; return its id."""

    def submit_job(slate_id: str = "nba-2026-11-28-showdown-bos-nyk", scenarios: int = 2000) -> str:
        body = {"slate_id": slate_id, "scenario_count": scenarios, "seed": 3}
        response = client.post("/jobs", data=json.dumps(body), headers=SUBMIT_HEADERS)
        assert response.status_code == 202, response.get_data(as_text=True)
        job_id: str = response.get_json()["id"]
        return job_id

    return submit_job


@pytest.fixture
def run_next_job(svc: Services) -> Callable[[], str]:
    """Run the oldest pending job to its end in this thread, as a job thread would; its id."""
    body = simulation_job(svc.slates)
    return lambda: results.run_next_job(svc.store, body)
