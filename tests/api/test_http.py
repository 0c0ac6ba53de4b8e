"""Cross-cutting HTTP behaviour: declared roles, the one error shape, ops endpoints, logs."""

from __future__ import annotations

import json
import logging
import re

import pytest

from fieldsvc.http import ALL_ROLES, PUBLIC
from tests.helpers import assert_problem


def test_every_route_declares_its_role(app):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        roles = getattr(app.view_functions[rule.endpoint], "fieldsvc_roles", None)
        if not roles or not (set(roles) <= set(ALL_ROLES) or roles == PUBLIC):
            missing.append(rule.rule)
    assert missing == []


def test_public_routes_are_only_the_expected_ones(app):
    public = sorted(r.rule for r in app.url_map.iter_rules()
                    if getattr(app.view_functions[r.endpoint], "fieldsvc_roles", None) == PUBLIC)
    allowed_prefixes = ("/healthz", "/metrics", "/openapi.json", "/docs", "/api/v1/auth/token", "/C/",
                        "/api/v1/verify", "/.well-known/", "/field",
                        "/console/login",  # the console's sign-in form
                        "/maps/")  # the map library and script files (static, no data)
    exact = {"/", "/favicon.ico"}  # a redirect to the console, the browser's icon
    assert all(p in exact or p.startswith(allowed_prefixes) for p in public), public


def test_unknown_route_is_json_404(client):
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_json_405_with_allow(client):
    resp = client.put("/api/v1/auth/token", json={})
    body = assert_problem(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"] and "POST" in body["details"]["allowed"]


def test_oversized_json_is_413_before_reading(client, app, admin):
    limit = app.config["MAX_JSON_BYTES"]
    resp = client.post("/api/v1/regions", data=b"{" + b" " * limit + b"}", content_type="application/json",
                       headers=admin.headers)
    body = assert_problem(resp, 413, "payload_too_large")
    assert body["details"]["max_bytes"] == limit


class ExplodingStream:
    """A request body that fails the test if anything reads it."""

    def read(self, *_args):
        raise AssertionError("the body was read")

    readline = read


def test_body_over_max_content_length_is_json_413_without_reading(client, app, admin):
    size = app.config["MAX_CONTENT_LENGTH"] + 1
    resp = client.post("/api/v1/parcels", content_type="application/json", headers=admin.headers,
                       environ_overrides={"CONTENT_LENGTH": str(size), "wsgi.input": ExplodingStream()})
    assert_problem(resp, 413, "payload_too_large")


@pytest.mark.parametrize("payload", [b"{", b"[1,", b'{"a": NaN}', b"\xff\xfe", b'{"a": Infinity}'])
def test_malformed_json_is_400(client, admin, payload):
    resp = client.post("/api/v1/regions", data=payload, content_type="application/json", headers=admin.headers)
    assert_problem(resp, 400, "malformed_json")


@pytest.mark.parametrize("value", [b"1" * 40, b"1e400"])
def test_json_the_fast_parser_refuses_is_still_parsed_as_before(client, admin, value):
    """orjson refuses integers past 64 bits and 1e400; the standard parser took them, so they still
    reach validation and get a 422 naming the field, not a 400."""
    body = b'{"code": "360999", "name": ' + value + b', "level": "county"}'
    resp = client.post("/api/v1/regions", data=body, content_type="application/json", headers=admin.headers)
    assert_problem(resp, 422, "validation_failed", field="name")


def test_lone_surrogate_escape_is_422_not_500(client, admin, app):
    """Parsed by the standard library but not storable as UTF-8: refused naming the body; nothing stored."""
    body = b'{"code": "360998", "name": "\\ud800x", "level": "county"}'
    resp = client.post("/api/v1/regions", data=body, content_type="application/json", headers=admin.headers)
    assert_problem(resp, 422, "validation_failed", field="_body")
    assert client.get("/api/v1/regions/360998", headers=admin.headers).status_code == 404


def test_wrong_media_type_is_415(client, admin):
    resp = client.post("/api/v1/regions", data="code=1", content_type="text/plain", headers=admin.headers)
    assert_problem(resp, 415, "unsupported_media_type")


def test_healthz_names_engine_and_version(client, database):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["database"] == database["engine"] and body["version"]


def test_metrics_count_requests(client):
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fieldsvc_http_requests_total{endpoint="ops.healthz",method="GET",status="200"}' in text
    assert "fieldsvc_http_request_seconds_bucket" in text


def test_openapi_describes_every_route(client, app):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/docs/static"):
            continue
        path = re.sub(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_][a-z0-9_]*)>", r"{\1}", rule.rule)
        assert path in spec["paths"], path
    post_regions = spec["paths"]["/api/v1/regions"]["post"]
    assert post_regions["security"] == [{"bearer": []}]
    assert "requestBody" in post_regions


def test_docs_are_served_locally(client):
    page = client.get("/docs").get_data(as_text=True)
    assert "/openapi.json" in page and "http" not in page.replace("http-equiv", "").split("<body>")[1].split(
        "openapi.json")[0]
    with client.get("/docs/static/swagger-ui-bundle.js") as js:
        assert js.status_code == 200 and len(js.data) > 100_000


def test_request_id_is_echoed_and_logged_without_secrets(client, make_account, caplog):
    account = make_account("lab")
    with caplog.at_level(logging.INFO, logger="fieldsvc"):
        resp = client.get("/api/v1/auth/me", headers={**account.headers, "X-Request-Id": "req-12345678"})
        client.post("/api/v1/auth/token", json={"username": account.username, "password": account.password})
    assert resp.headers["X-Request-Id"] == "req-12345678"
    from fieldsvc.ops.observability import JsonFormatter

    lines = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("fieldsvc")]
    assert lines and all(json.loads(line) for line in lines)
    assert any(json.loads(line)["request_id"] == "req-12345678" for line in lines)
    text = "\n".join(lines)
    assert account.token not in text and account.password not in text


def test_bad_request_id_is_replaced(client):
    resp = client.get("/healthz", headers={"X-Request-Id": "x forged <script>"})
    assert resp.headers["X-Request-Id"] != "x forged <script>" and len(resp.headers["X-Request-Id"]) == 32


def test_nul_characters_are_refused_not_500(client, admin):
    body = b'{"username": "a\\u0000b", "password": "x"}'
    resp = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert_problem(resp, 422, "validation_failed", field="_body")
    assert_problem(client.get("/api/v1/parcels/%00", headers=admin.headers), 400, "invalid_characters")
    assert_problem(client.get("/api/v1/parcels?village=%00", headers=admin.headers), 400, "invalid_characters")


@pytest.mark.parametrize("key", [10**30, -(10**30), "1", 1.5, None])
def test_a_forged_list_cursor_is_422_naming_it_never_a_database_error(client, admin, key):
    """A cursor is opaque but only base64 JSON: one whose key the id column cannot hold (it
    overflowed PostgreSQL's bigint) or is not an integer is refused before it reaches SQL."""
    from fieldsvc.http import encode_cursor

    resp = client.get("/api/v1/parcels", query_string={"cursor": encode_cursor({"k": key})}, headers=admin.headers)
    assert_problem(resp, 422, "validation_failed", field="cursor")
