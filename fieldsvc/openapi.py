"""The OpenAPI document, built from the URL map and what each view declares with ``@doc``."""

from __future__ import annotations

import re
from typing import Any, Callable

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema

_PATH_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")
_TYPED_ARG = re.compile(r"<(?:([a-z_]+):)?([a-z_]+)>")
_CONVERTER_TYPES = {"int": {"type": "integer", "minimum": 0}, "float": {"type": "number"}}


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
    return spec.to_dict()


def _operation(rule: Any, view: Callable) -> dict[str, Any]:
    meta = getattr(view, "openapi", {})
    roles = getattr(view, "fieldsvc_roles", ())
    summary = meta.get("summary") or (view.__doc__ or rule.endpoint).strip().splitlines()[0]
    op: dict[str, Any] = {
        "operationId": rule.endpoint + ("_" + "_".join(sorted(rule.methods - {"HEAD", "OPTIONS"})).lower()),
        "summary": summary,
        "tags": [rule.endpoint.split(".")[0]],
        "description": f"Roles: {', '.join(roles) or 'none'}.",
        "parameters": [{"in": "path", "name": name, "required": True,
                        "schema": _CONVERTER_TYPES.get(converter, {"type": "string"})}
                       for converter, name in _TYPED_ARG.findall(rule.rule)],
        "responses": {str(code): {"description": text} for code, text in
                      (meta.get("responses") or {200: "OK"}).items()},
    }
    op["responses"]["default"] = {"description": "Error",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    if roles and roles != ("public",):
        op["security"] = [{"bearer": []}]
    if meta.get("query"):
        op["parameters"].append({"in": "query", "schema": meta["query"]})
    if meta.get("body"):
        op["requestBody"] = {"required": True, "content": {meta["content_type"]: {"schema": meta["body"]}}}
    return op
