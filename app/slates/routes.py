"""HTTP routes for slates: look them up in the slate store and serialize them."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.errors import (
    DependencyUnavailable,
    SlateNotFound,
    SlateStoreUnavailable,
    error_response,
)
from app.jobs.validation import parse_slate_id
from app.resilience import DependencyUnavailableError
from app.services import services
from app.slates.repository import SlateStoreUnavailableError

blueprint = Blueprint("slates", __name__)


@blueprint.errorhandler(SlateStoreUnavailableError)
def _store_unavailable(error: SlateStoreUnavailableError) -> Response:
    return error_response(
        SlateStoreUnavailable(f"the slate store is unavailable ({error}); retry later")
    )


@blueprint.errorhandler(DependencyUnavailableError)
def _not_taking_calls(error: DependencyUnavailableError) -> Response:
    return error_response(
        DependencyUnavailable(
            f"the slate store is not taking calls now ({error.reason}); retry later"
        )
    )


@blueprint.get("/slates")
def list_slates() -> Response:
    """Every slate with its game and player counts, by start time, to pick one to simulate."""
    return jsonify({"slates": services().slates.list_slates()})


@blueprint.get("/slates/<slate_id>")
def get_slate(slate_id: str) -> Response:
    """One slate with its games, teams and players, exactly as a simulation job reads it."""
    slate = services().slates.load_slate(parse_slate_id(slate_id))
    if slate is None:
        raise SlateNotFound(f"slate {slate_id!r} does not exist; GET /slates lists the slates")
    return jsonify(slate)
