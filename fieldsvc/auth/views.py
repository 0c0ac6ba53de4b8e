"""``POST /api/v1/auth/token`` and ``GET /api/v1/auth/me``."""

from __future__ import annotations

from flask import Blueprint, current_app, request

from ..dbtypes import isoformat
from ..errors import Problem
from ..http import ALL_ROLES, current_actor, json_body, load, problem_response, public, requires_role
from ..openapi import doc
from . import services
from .schemas import TokenRequest

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


@bp.post("/token")
@public
@doc(body=TokenRequest, responses={200: "A bearer token", 401: "Wrong credentials",
                                   429: "Too many failed logins"})
def token():
    """Log in with a username and password; failed logins are rate-limited per user and address."""
    data = load(TokenRequest(), json_body())
    result = services.login(data["username"], data["password"], request.remote_addr or "unknown",
                            current_app.config)
    if isinstance(result, Problem):
        return problem_response(result)  # returned, not raised, so the failure count commits
    return {"token": result.token, "role": result.role, "expires_at": isoformat(result.expires_at)}


@bp.get("/me")
@requires_role(*ALL_ROLES)
def me():
    """Who the token belongs to."""
    actor = current_actor()
    return {"username": actor.username, "role": actor.role, "county": actor.county_code,
            "device_id": actor.device_id}
