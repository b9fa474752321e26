"""HTTP routes for slates: look them up in the slate store and serialize them.

A store that is down or not taking calls answers through app.errors like every other route.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from app.errors import SlateNotFound
from app.services import services
from app.slates.validation import parse_slate_id

blueprint = Blueprint("slates", __name__)


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
