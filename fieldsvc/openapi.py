"""The OpenAPI document, built from the URL map and what each view declares with ``@doc``."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Callable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

_PATH_ARG = re.compile(r"<(?:[a-z_]+(?:\([^)]*\))?:)?([a-z_][a-z0-9_]*)>")
_TYPED_ARG = re.compile(r"<(?:([a-z_]+)(?:\(([^)]*)\))?:)?([a-z_][a-z0-9_]*)>")
# (ids in URLs stop where the id converter does: fieldsvc.http.IdConverter)
_CONVERTER_TYPES = {"int": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "float": {"type": "number"}}
# What errors look like per blueprint: pages and OpenRosa do not answer JSON.
_ERROR_MEDIA = {"console": "text/html", "certificates_public": "text/html", "field": "text/html",
                "openrosa": "text/xml"}

# The main flows as OpenAPI links (create → read → approve → grade), so that a client generator or
# a stateful fuzzer can follow them: {operationId: {status: {link name: (target operationId, parameters)}}}.
LINKS: dict[str, dict[int, dict[str, tuple[str, dict[str, str]]]]] = {
    "places.import_parcels_post": {201: {
        "GetImportedParcel": ("places.get_parcel_get", {"code": "$response.body#/codes/0"}),
        "GradeImportedParcel": ("grading.get_grade_get", {"subject": "parcel", "code": "$response.body#/codes/0"}),
    }},
    "devices.register_post": {201: {
        "GetDevice": ("devices.get_device_get", {"device_id": "$response.body#/device_id"}),
        "ChangeDevice": ("devices.change_patch", {"device_id": "$response.body#/device_id"}),
        "RevokeDevice": ("devices.revoke_post", {"device_id": "$response.body#/device_id"}),
    }},
    "lab.create_import_post": {201: {
        "GetImport": ("lab.get_import_get", {"import_id": "$response.body#/import_id"}),
    }},
    "lab.list_results_get": {200: {
        "GetFirstResult": ("lab.get_result_get", {"result_id": "$response.body#/items/0/id"}),
    }},
    "lab.get_result_get": {200: {
        "ApproveResult": ("lab.approve_post", {"result_id": "$request.path.result_id"}),
        "RejectResult": ("lab.reject_post", {"result_id": "$request.path.result_id"}),
    }},
    "grading.create_run_post": {201: {
        "GetRun": ("grading.get_run_get", {"run_id": "$response.body#/id"}),
    }},
    "certificates.issue_post": {201: {
        "GetCertificate": ("certificates.get_certificate_get", {"code": "$response.body#/code"}),
        "RevokeCertificate": ("certificates.revoke_post", {"code": "$response.body#/code"}),
    }},
}


def doc(*, summary: str | None = None, body: type[Schema] | dict | None = None,
        query: type[Schema] | None = None, responses: dict[int, str] | None = None,
        content_type: str = "application/json") -> Callable[[Callable], Callable]:
    """Attach what the OpenAPI document needs; the view is otherwise unchanged."""

    def decorate(view: Callable) -> Callable:
        view.openapi = {"summary": summary, "body": body, "query": query,
                        "responses": responses or {}, "content_type": content_type}
        return view

    return decorate


def build_spec(app: Flask, version: str) -> dict[str, Any]:
    spec = APISpec(title="fieldsvc", version=version, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": "Field collection and traceability for soil geochemistry and "
                                        "green-food land. Errors: one body {status, code, message, details}."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", {"type": "object", "required": ["status", "code", "message"],
                                       "properties": {"status": {"type": "integer"}, "code": {"type": "string"},
                                                      "message": {"type": "string"},
                                                      "details": {"type": "object"}}})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.rule.startswith("/docs/static"):
            continue
        view = app.view_functions[rule.endpoint]
        operations = {m.lower(): _operation(rule, view) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})}
        if operations:
            spec.path(path=_PATH_ARG.sub(r"{\1}", rule.rule), operations=operations)
    document = _plain_numbers(spec.to_dict())
    _check_links(document)
    return document


def _plain_numbers(value: Any) -> Any:
    """Decimals (marshmallow ``Range`` bounds of Decimal fields) as JSON numbers, not strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


def _check_links(document: dict[str, Any]) -> None:
    """Every link names an operation that exists (a renamed view fails at start-up, not in a client)."""
    ids = {op["operationId"] for ops in document["paths"].values() for op in ops.values()}
    missing = {target for flows in LINKS.values() for links in flows.values() for target, _ in links.values()}
    missing |= set(LINKS)
    if missing - ids:
        raise RuntimeError(f"OpenAPI links name unknown operations: {sorted(missing - ids)}")


def _path_schema(converter: str, args: str) -> dict[str, Any]:
    if converter == "any":  # <any(a,b):name>: one of the listed words
        return {"type": "string", "enum": [a.strip().strip("'\"") for a in args.split(",") if a.strip()]}
    return dict(_CONVERTER_TYPES.get(converter, {"type": "string"}))


def _operation(rule: Any, view: Callable) -> dict[str, Any]:
    meta = getattr(view, "openapi", {})
    roles = getattr(view, "fieldsvc_roles", ())
    summary = meta.get("summary") or (view.__doc__ or rule.endpoint).strip().splitlines()[0]
    op: dict[str, Any] = {
        "operationId": rule.endpoint + ("_" + "_".join(sorted(rule.methods - {"HEAD", "OPTIONS"})).lower()),
        "summary": summary,
        "tags": [rule.endpoint.split(".")[0]],
        "description": f"Roles: {', '.join(roles) or 'none'}.",
        "parameters": [{"in": "path", "name": name, "required": True, "schema": _path_schema(converter, args)}
                       for converter, args, name in _TYPED_ARG.findall(rule.rule)],
        "responses": {str(code): {"description": text} for code, text in
                      (meta.get("responses") or {200: "OK"}).items()},
    }
    media = _ERROR_MEDIA.get(rule.endpoint.split(".")[0])
    if media is None:
        op["responses"]["default"] = {"description": "Error", "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    else:
        op["responses"]["default"] = {"description": "Error", "content": {media: {"schema": {"type": "string"}}}}
    for status, links in LINKS.get(op["operationId"], {}).items():
        op["responses"].setdefault(str(status), {"description": "OK"})["links"] = {
            name: {"operationId": target, "parameters": parameters} for name, (target, parameters) in links.items()}
    if roles and roles != ("public",):
        op["security"] = [{"bearer": []}]
    if meta.get("query"):
        op["parameters"].append({"in": "query", "schema": meta["query"]})
    if meta.get("body"):
        op["requestBody"] = {"required": True, "content": {meta["content_type"]: {"schema": meta["body"]}}}
    return op
