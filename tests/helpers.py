"""Assertions shared by the API tests."""

from __future__ import annotations

from typing import Any


def assert_problem(resp: Any, status: int, code: str, field: str | None = None) -> dict:
    """The one error shape, with the expected status, code and (optionally) a named field."""
    body = resp.get_json()
    assert resp.status_code == status, (resp.status_code, body)
    assert body is not None, resp.data[:200]
    assert set(body) >= {"status", "code", "message"}, body
    assert body["status"] == status and body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    if field is not None:
        fields = body.get("details", {}).get("fields", {})
        assert field in fields, (field, body)
    return body
