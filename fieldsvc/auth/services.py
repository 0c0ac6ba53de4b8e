"""Accounts and tokens: create users, log in (rate-limited), resolve a bearer token to an Actor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Mapping

from sqlalchemy import bindparam, column, select, text
from sqlalchemy.exc import OperationalError

from ..audit.services import Change, record
from ..dbtypes import UTCDateTime, utcnow
from ..dbutil import dialect_name
from ..errors import Problem, rate_limited, unauthorized, validation_failed
from ..extensions import db
from . import ratelimit
from .models import ROLES, ApiToken, User
from .passwords import dummy_verify, hash_password, verify_password
from .principal import Actor
from .tokens import new_token, token_digest

LAST_SEEN_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    role: str
    expires_at: datetime | None


def get_user_by_username(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def create_user(
    username: str, password: str, role: str, *, county_code: str | None, config: Mapping[str, Any], actor: str
) -> User:
    errors: dict[str, str] = {}
    if role not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if not username or len(username) > 64 or not username.replace("_", "").replace("-", "").replace(".", "").isalnum():
        errors["username"] = "1–64 letters, digits, '.', '-' or '_'"
    if len(password) < 8:
        errors["password"] = "must have at least 8 characters"
    if role == "admin" and county_code:
        errors["county"] = "admin accounts are not scoped to a county"
    if errors:
        raise validation_failed(errors)
    if get_user_by_username(username):
        raise Problem(409, "username_taken", f"User {username} already exists.", fields={"username": ["taken"]})
    user = User(
        username=username,
        password_hash=hash_password(password, config["PASSWORD_HASH_PROFILE"]),
        role=role,
        county_code=county_code,
    )
    db.session.add(user)
    db.session.flush()
    record(actor, Change("user", username, "create", after={"username": username, "role": role,
                                                            "county": county_code}))
    return user


def _login_keys(username: str, address: str) -> tuple[str, str]:
    return f"login:user:{username.strip().lower()}", f"login:addr:{address}"


def reserve_login_attempt(username: str, address: str, config: Mapping[str, Any]) -> None:
    """Count this attempt against its username and its address *before* the password is checked.

    Checking a count and adding to it later let 48 parallel guesses through as 12 password checks
    on PostgreSQL (limit 5). Here each counter is bumped by one atomic upsert that returns the new
    count, so the n-th attempt of a window knows it is the n-th. On PostgreSQL the bump commits at
    once on its own connection (a guess answered 500 still counts, and no counter row stays locked
    while Argon2 runs); on SQLite the request already holds the write lock from its first statement.
    A correct password gives the attempt back (:func:`_login_succeeded`).

    The username allows ``LOGIN_MAX_FAILURES``; the address allows the far higher
    ``LOGIN_MAX_FAILURES_PER_ADDRESS``, so one guesser behind a school's NAT or a county office's
    proxy does not lock out everyone behind it.
    :raise 429 rate_limited: with Retry-After, while either is over its limit.
    """
    user_key, addr_key = _login_keys(username, address)
    window = config["LOGIN_WINDOW_S"]
    limits = ((user_key, config["LOGIN_MAX_FAILURES"]), (addr_key, config["LOGIN_MAX_FAILURES_PER_ADDRESS"]))
    if dialect_name() == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            counts = [ratelimit.hit(key, window, connection=conn) for key, _ in limits]
    else:
        counts = [ratelimit.hit(key, window) for key, _ in limits]
    now = utcnow()
    waits = [ratelimit.seconds_left(started, window, now)
             for (_key, limit), (count, started) in zip(limits, counts, strict=True) if count > limit]
    if waits:
        raise rate_limited(max(waits), "Too many failed logins; wait before trying again.")


def _login_succeeded(username: str, address: str) -> None:
    """A correct password: the username's failures are forgiven, the address gets its attempt back."""
    user_key, addr_key = _login_keys(username, address)
    ratelimit.reset(user_key)
    ratelimit.give_back(addr_key)


def check_password(username: str, password: str, address: str, config: Mapping[str, Any]) -> User | None:
    """The one rate-limited password check (token login, console sign-in, OpenRosa Basic).

    None for a wrong password, an unknown or a disabled account (the attempt stays counted; the
    caller must commit). :raise 429 rate_limited: see :func:`reserve_login_attempt`.
    """
    reserve_login_attempt(username, address, config)
    user = get_user_by_username(username)
    profile = config["PASSWORD_HASH_PROFILE"]
    if user is None:
        dummy_verify(password, profile)
    ok = user is not None and user.disabled_at is None and verify_password(user.password_hash, password, profile)
    if not ok:
        return None
    _login_succeeded(username, address)
    return user


def login(username: str, password: str, address: str, config: Mapping[str, Any]) -> IssuedToken | Problem:
    """Return a token, or the 401 Problem after counting the failure (the caller must commit it)."""
    user = check_password(username, password, address, config)
    if user is None:
        return unauthorized("Unknown username or wrong password.", code="invalid_credentials")
    return issue_user_token(user, config["TOKEN_TTL_S"])


def issue_user_token(user: User, ttl_s: int) -> IssuedToken:
    token = new_token("fsu")
    expires_at = utcnow() + timedelta(seconds=ttl_s)
    db.session.add(ApiToken(token_hash=token_digest(token), user_id=user.id, expires_at=expires_at))
    db.session.flush()
    return IssuedToken(token=token, role=user.role, expires_at=expires_at)


# Textual SQL: as a Core select of ORM columns this cost ~0.6 ms per request (building the
# statement, matching the cached result columns); every API call pays for it.
_BEARER = text(
    "SELECT t.revoked_at, t.expires_at, t.device_pk, u.id, u.username, u.role, u.county_code, u.disabled_at,"
    " d.revoked_at AS device_revoked_at, d.county_code AS device_county, d.device_id, d.last_seen_at"
    " FROM api_tokens t JOIN users u ON u.id = t.user_id LEFT JOIN devices d ON d.id = t.device_pk"
    " WHERE t.token_hash = :digest"
).columns(*(column(name, UTCDateTime()) for name in ("revoked_at", "expires_at")), column("device_pk"),
          column("id"), column("username"), column("role"), column("county_code"),
          column("disabled_at", UTCDateTime()), column("device_revoked_at", UTCDateTime()),
          column("device_county"), column("device_id"), column("last_seen_at", UTCDateTime()))
_TOUCH = text("UPDATE devices SET last_seen_at = :now"
              " WHERE id = :pk AND (last_seen_at IS NULL OR last_seen_at <= :cutoff)").bindparams(
    bindparam("now", type_=UTCDateTime()), bindparam("cutoff", type_=UTCDateTime()))


def authenticate_bearer(token: str) -> Actor:
    """The actor of a bearer token (see :func:`resolve_bearer`); :raise 401: with a code saying why."""
    return resolve_bearer(token)[0]


def resolve_bearer(token: str) -> tuple[Actor, bool]:
    """Resolve a bearer token, or raise 401 with a code saying why (one statement for the token,
    its account and its device). Also says whether the device's ``last_seen_at`` is due (older than
    a minute): the caller records it with :func:`record_device_seen` *after* the request, never in
    the request's transaction (a read that writes waited for SQLite's write lock: 503 under load)."""
    row = db.session.execute(_BEARER, {"digest": token_digest(token)}).first()
    if row is None:
        raise unauthorized("The token is not valid.", code="invalid_token")
    (revoked_at, expires_at, device_pk, user_id, username, role, county_code, disabled_at,
     device_revoked_at, device_county, device_id, last_seen_at) = row
    now = utcnow()
    if revoked_at is not None or disabled_at is not None:
        raise unauthorized("The token has been revoked.", code="token_revoked")
    if expires_at is not None and expires_at <= now:
        raise unauthorized("The token has expired; log in again.", code="token_expired")
    if device_pk is None:
        return Actor(user_id, username, role, county_code), False
    if device_id is None or device_revoked_at is not None:
        raise unauthorized("This device has been revoked.", code="device_revoked")
    due = last_seen_at is None or now - last_seen_at >= LAST_SEEN_RESOLUTION
    return Actor(user_id, username, "sampler", device_county or county_code, device_pk=device_pk,
                 device_id=device_id), due


SEEN_LOCK_WAIT_MS = 100


def record_device_seen(device_pk: int, sqlite_busy_timeout_ms: int, now: datetime | None = None) -> bool:
    """Set a device's ``last_seen_at`` (to the minute) in a short transaction of its own.

    Waits at most ``SEEN_LOCK_WAIT_MS`` for a lock and gives up quietly when the database is busy:
    the next request a minute on tries again. False when nothing was written.
    """
    now = now or utcnow()
    cutoff = now - LAST_SEEN_RESOLUTION
    engine = db.engine
    try:
        with engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            raw = conn.connection.dbapi_connection  # (a PRAGMA through SQLAlchemy would begin a transaction)
            if sqlite:
                raw.execute(f"PRAGMA busy_timeout={SEEN_LOCK_WAIT_MS}")
            try:
                with conn.begin():
                    if not sqlite:
                        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{SEEN_LOCK_WAIT_MS}ms'")
                    written = conn.execute(_TOUCH, {"now": now, "pk": device_pk, "cutoff": cutoff}).rowcount
            finally:
                if sqlite:  # the pooled connection keeps the configured wait for requests
                    raw.execute(f"PRAGMA busy_timeout={int(sqlite_busy_timeout_ms)}")
        return bool(written)
    except OperationalError:
        return False
