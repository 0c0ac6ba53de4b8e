"""HTTP transport for the device: one connection per request, retries with backoff and full jitter.

Transient trouble (connection refused or reset, timeouts, a response cut short, 429, 503 and
other 5xx) is retried with exponential backoff and full jitter (a random wait between 0 and
``base * 2**attempt``, capped), and a ``Retry-After`` from the server is honoured as the least
wait. Everything else, including permanent 4xx answers, is handed back to the caller, which
knows whether a record or a batch is at fault (ANCHORS part 1, lesson 6).

The bearer token is kept in a private attribute and never appears in ``repr``, logs or errors.
Standard library only: this runs on phones and laptops without fieldsvc installed.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

log = logging.getLogger("offline_sync")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "fieldsvc-offline-sync/0.1"


class SyncError(Exception):
    """Base class for errors the CLI reports as one line."""


class TransientError(SyncError):
    """The server could not be reached or was busy; try again later (nothing was lost)."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class AuthError(SyncError):
    """401/403: the device token is wrong or revoked; nothing is retried until re-provisioned."""


class HttpError(SyncError):
    """An unexpected permanent answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"HTTP {response.status} {response.code or ''}".strip())
        self.response = response


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; ``max_attempts`` counts the first try."""

    max_attempts: int = 8
    base_s: float = 0.5
    cap_s: float = 60.0
    max_retry_after_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        wait = rng() * min(self.cap_s, self.base_s * (2 ** attempt))
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None

    @property
    def code(self) -> str | None:
        """The problem ``code`` of an error body, if there is one."""
        try:
            body = self.json()
        except ValueError:
            return None
        return body.get("code") if isinstance(body, dict) else None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


@dataclass
class Transport:
    """Requests against one fieldsvc server. ``sleep``/``rng`` are injectable for tests."""

    base_url: str
    token: str = field(repr=False)
    timeout_s: float = 60.0
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    rng: Callable[[], float] = random.random
    bytes_sent: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("server must be an http(s) URL")
        self._scheme, self._host, self._port = parts.scheme, parts.hostname, parts.port
        self._prefix = parts.path.rstrip("/")

    # -- one attempt ----------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout_s,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)

    def send_once(self, method: str, path: str, body: bytes | None = None,
                  headers: Mapping[str, str] | None = None) -> Response:
        """One request; raises TransientError for network trouble and transient statuses."""
        hdrs = {"Authorization": f"Bearer {self.token}", "Accept": "application/json", "User-Agent": USER_AGENT,
                "Connection": "close"}
        hdrs.update(headers or {})
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        conn = self._connection()
        self.requests += 1
        failure: str | None = None
        try:
            conn.request(method, self._prefix + path, body=body, headers=hdrs)
            self.bytes_sent += len(body or b"")
            raw = conn.getresponse()
            try:
                data = raw.read()
            finally:
                raw.close()
            resp = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data)
        except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
            failure = type(exc).__name__
        finally:
            conn.close()
        if failure is not None:
            # Raised outside the except block: no traceback keeps the half-read response (and with
            # it the socket) alive until the garbage collector runs.
            raise TransientError(f"{method} {path}: {failure}")
        if resp.status in TRANSIENT_STATUS or resp.status >= 500:
            raise TransientError(f"{method} {path}: HTTP {resp.status}",
                                 parse_retry_after(resp.header("retry-after")), resp.status)
        if resp.status in (401, 403):
            raise AuthError(f"{method} {path}: HTTP {resp.status} {resp.code or ''}: the device token was refused "
                            "(revoked or wrong); provision the device again")
        return resp

    # -- with retries ---------------------------------------------------------------------

    def backoff(self, attempt: int, retry_after: float | None = None) -> None:
        wait = self.policy.delay(attempt, retry_after, self.rng)
        log.info("retrying in %.2f s", wait)
        self.sleep(wait)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        """Send with retries; returns the first non-transient response, else raises TransientError."""
        for attempt in range(self.policy.max_attempts):
            try:
                return self.send_once(method, path, body, headers)
            except TransientError as exc:
                log.warning("%s (attempt %d of %d)", exc, attempt + 1, self.policy.max_attempts)
                if attempt + 1 >= self.policy.max_attempts:
                    raise
                self.backoff(attempt, exc.retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str) -> Any:
        resp = self.request("GET", path)
        if resp.status != 200:
            raise HttpError(resp)
        return resp.json()

    def post_json(self, path: str, payload: bytes, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("POST", path, payload, {"Content-Type": "application/json", **(headers or {})})
