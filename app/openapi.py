"""The OpenAPI description of the API, served as JSON from the YAML kept beside the code."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml
from flask import Blueprint, Response, jsonify

blueprint = Blueprint("openapi", __name__)


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The parsed description; read once per process, on first use."""
    document: dict[str, Any] = yaml.safe_load(
        resources.files("app").joinpath("openapi.yaml").read_text("utf-8")
    )
    return document


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3 document of every endpoint, body and error."""
    return jsonify(openapi_document())
