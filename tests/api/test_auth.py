"""Accounts, tokens and failed-login limits."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from fieldsvc.auth.models import ApiToken, User
from fieldsvc.dbtypes import utcnow
from fieldsvc.extensions import db
from tests.helpers import assert_problem


def test_token_login_returns_role_and_expiry(client, make_account):
    account = make_account("official")
    resp = client.get("/api/v1/auth/me", headers=account.headers)
    assert resp.status_code == 200
    assert resp.get_json() == {"username": account.username, "role": "official", "county": None,
                               "device_id": None}


def test_token_is_stored_hashed_and_password_with_argon2(app, make_account):
    account = make_account("lab")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == account.username))
        assert user.password_hash.startswith("$argon2id$")
        assert account.password not in user.password_hash
        hashes = list(db.session.scalars(select(ApiToken.token_hash)))
        assert account.token not in hashes and all(len(h) == 64 for h in hashes)


def test_wrong_password_is_401_with_code(client, make_account):
    account = make_account("lab")
    resp = client.post("/api/v1/auth/token", json={"username": account.username, "password": "nope"})
    assert_problem(resp, 401, "invalid_credentials")


def test_failed_logins_are_rate_limited_per_username(client, make_account, app):
    account = make_account("official")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        resp = client.post("/api/v1/auth/token", json={"username": account.username, "password": "bad"})
        assert resp.status_code == 401
    resp = client.post("/api/v1/auth/token", json={"username": account.username, "password": account.password})
    body = assert_problem(resp, 429, "rate_limited")
    assert 1 <= int(resp.headers["Retry-After"]) <= app.config["LOGIN_WINDOW_S"]
    assert body["details"]["retry_after_s"] == int(resp.headers["Retry-After"])


def test_failed_logins_are_rate_limited_per_address(client, make_account, app):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = limit = 6  # (far higher by default: a NAT, a proxy)
    other = make_account("lab")
    for i in range(limit):
        client.post("/api/v1/auth/token", json={"username": f"ghost{i}", "password": "bad"})
    # a different, correct username from the same address is refused too
    resp = client.post("/api/v1/auth/token", json={"username": other.username, "password": other.password},
                       environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert_problem(resp, 429, "rate_limited")
    elsewhere = client.post("/api/v1/auth/token", json={"username": other.username, "password": other.password},
                            environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert elsewhere.status_code == 200


def test_expired_token_is_401_token_expired(client, app, make_account):
    account = make_account("official")
    with app.app_context():
        db.session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert_problem(client.get("/api/v1/auth/me", headers=account.headers), 401, "token_expired")


def test_missing_or_unknown_token_is_401(client):
    assert_problem(client.get("/api/v1/auth/me"), 401, "unauthorized")
    resp = client.get("/api/v1/auth/me", headers={"Authorization": "Bearer fsu_not-a-token"})
    assert_problem(resp, 401, "invalid_token")
    assert "Bearer" in resp.headers["WWW-Authenticate"]


def test_login_body_is_validated(client):
    assert_problem(client.post("/api/v1/auth/token", json={"username": "x"}), 422, "validation_failed",
                   field="password")
    assert_problem(client.post("/api/v1/auth/token", data="{", content_type="application/json"), 400,
                   "malformed_json")
    assert_problem(client.post("/api/v1/auth/token", data="u=x", content_type="application/x-www-form-urlencoded"),
                   415, "unsupported_media_type")
    assert_problem(client.post("/api/v1/auth/token", json=["x"]), 422, "validation_failed", field="_body")
    assert_problem(client.post("/api/v1/auth/token", json={"username": 5, "password": "p"}), 422,
                   "validation_failed", field="username")


def test_cli_creates_user(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "ana", "--role", "official", "--password", "longenough"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.scalar(select(User.role).where(User.username == "ana")) == "official"
    again = runner.invoke(args=["users", "create", "ana", "--role", "official", "--password", "longenough"])
    assert again.exit_code != 0 and "username_taken" in again.output
    short = runner.invoke(args=["users", "create", "bo", "--role", "lab", "--password", "short"])
    assert short.exit_code != 0 and "password" in short.output
