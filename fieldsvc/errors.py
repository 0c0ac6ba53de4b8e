"""The catalogue of problems an API client can see.

Every error leaves fieldsvc as one JSON body:
``{"status", "code", "message", "details"}``. ``code`` is a stable snake_case
string clients switch on. This module has no Flask import, so domain code
(grading, units, signing, merge) may raise these too.
"""

from __future__ import annotations

from typing import Any, Mapping


class Problem(Exception):
    """An error with an HTTP status, a stable code and optional details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"Problem({self.status}, {self.code!r}, {self.message!r})"


def validation_failed(fields: Mapping[str, Any], message: str = "Input is invalid.") -> Problem:
    """422 naming each bad field: ``details.fields = {field: [messages]}``."""
    normalised = {k: (v if isinstance(v, (list, dict)) else [str(v)]) for k, v in fields.items()}
    return Problem(422, "validation_failed", message, fields=normalised)


def not_found(entity: str, key: Any) -> Problem:
    return Problem(404, "not_found", f"{entity} {key!s} was not found.", entity=entity, key=str(key))


def conflict(code: str, message: str, **details: Any) -> Problem:
    return Problem(409, code, message, **details)


def unauthorized(message: str = "Authentication is required.", code: str = "unauthorized") -> Problem:
    return Problem(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="fieldsvc"'})


def forbidden(message: str = "Your role may not do this.", code: str = "forbidden") -> Problem:
    return Problem(403, code, message)


def rate_limited(retry_after_s: int, message: str = "Too many requests.") -> Problem:
    retry_after_s = max(1, int(retry_after_s))
    return Problem(
        429, "rate_limited", message, headers={"Retry-After": str(retry_after_s)}, retry_after_s=retry_after_s
    )


def unavailable(retry_after_s: int = 1, message: str = "The service is busy; retry shortly.") -> Problem:
    return Problem(503, "unavailable", message, headers={"Retry-After": str(max(1, int(retry_after_s)))})
