"""The OpenAPI description holds: schemathesis fuzzes a live instance against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.gunicorn import REPO_ROOT

pytestmark = pytest.mark.e2e

# Bounded and reproducible: a fixed seed and a fixed number of examples per operation.
MAX_EXAMPLES = 40
SEED = 20261128
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
    ]
)


def test_the_served_document_is_the_one_in_docs_and_describes_every_route(fake_client):
    # docs/ links the packaged file rather than copying it, so the two cannot drift apart.
    docs = REPO_ROOT / "docs" / "openapi.yaml"
    assert docs.is_symlink() and docs.resolve() == (REPO_ROOT / "app" / "openapi.yaml").resolve()
    served = fake_client.get("/openapi.json").get_json()
    assert served == yaml.safe_load(docs.read_text())
    routes = {
        rule.rule.replace("<", "{").replace(">", "}")
        for rule in fake_client.application.url_map.iter_rules()
        if not rule.endpoint.endswith("static")  # the dashboard's CSS, script and icon
    }
    assert routes == set(served["paths"])


def test_schemathesis_finds_no_server_error_and_no_schema_violation(gunicorn, tmp_path: Path):
    server = gunicorn(JOB_CONCURRENCY="0")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"http://127.0.0.1:{server.port}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--generation-deterministic",
            # One worker: hypothesis parses lambdas' source with ast.parse, and two threads
            # doing that at once hit CPython 3.11's "AST constructor recursion depth
            # mismatch" SystemError, which schemathesis reports as a runtime error.
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "5xx" not in server.output()
