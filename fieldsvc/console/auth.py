"""Console sign-in with a session cookie, on top of the API's own login.

``sign_in`` calls ``fieldsvc.auth.services.login`` — the same rate-limited password check as
``POST /api/v1/auth/token`` (failures counted per username and per address, 429 with Retry-After)
— and keeps the API token it issues in the signed, HttpOnly session cookie. ``http.current_actor``
resolves that token like a bearer header, so expiry and disabled accounts work as for the API, and
``sign_out`` revokes it: a copied cookie is worthless after logout.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from flask import session
from sqlalchemy import update

from ..auth.models import ApiToken
from ..auth.services import login
from ..auth.tokens import token_digest
from ..dbtypes import utcnow
from ..errors import Problem, forbidden
from ..extensions import db
from . import csrf

MAX_FIELD = 256


def sign_in(username: str, password: str, address: str, config: Mapping[str, Any],
            roles: Sequence[str]) -> Problem | None:
    """Start a session, or return the Problem to show (the caller commits the failure count)."""
    if not username or not password or len(username) > MAX_FIELD or len(password) > MAX_FIELD:
        return Problem(422, "validation_failed", "Give a username and a password.",
                       fields={k: ["required"] for k, v in (("username", username), ("password", password)) if not v})
    try:
        result = login(username, password, address, config)
    except Problem as problem:  # 429 while over the failure limit
        return problem
    if isinstance(result, Problem):
        return result
    if result.role not in roles:
        _revoke(result.token)
        return forbidden("The console is for officials, admins and lab staff.", code="console_role")
    lang = session.get("lang")
    session.clear()  # a new session: nothing from before the login carries over (fixation)
    session.permanent = True
    session["token"] = result.token
    if lang:
        session["lang"] = lang
    csrf.rotate()
    return None


def sign_out() -> None:
    token = session.get("token")
    if token:
        _revoke(token)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def _revoke(token: str) -> None:
    db.session.execute(update(ApiToken).where(ApiToken.token_hash == token_digest(token),
                                              ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
