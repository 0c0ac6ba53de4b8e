"""CSRF protection for the console: one random token per session, checked on every POST.

The token lives in the signed session cookie and is echoed by each form as a hidden field; a
request from another site cannot read it, so it cannot forge the field. ``SameSite=Lax`` on the
cookie is a second line, not the only one. No new dependency: ``secrets`` and ``hmac`` suffice.
"""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

from ..errors import Problem

SESSION_KEY = "csrf"
FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token() -> str:
    """This session's token, made on first use."""
    value = session.get(SESSION_KEY)
    if not value:
        value = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return value


def rotate() -> str:
    """A fresh token (after login, so a token seen before login is worthless after)."""
    session[SESSION_KEY] = secrets.token_urlsafe(32)
    return session[SESSION_KEY]


def check() -> None:
    """403 ``csrf_failed`` for a state-changing request without this session's token."""
    if request.method in SAFE_METHODS:
        return
    expected = session.get(SESSION_KEY) or ""
    sent = request.form.get(FIELD) or request.headers.get("X-CSRF-Token") or ""
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise Problem(403, "csrf_failed", "The form's security token is missing or stale; reload the page "
                                          "and try again.")
