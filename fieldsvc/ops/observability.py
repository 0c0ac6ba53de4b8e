"""JSON logs with a request id, and Prometheus metrics; neither ever sees a token."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from ..audit.services import request_id_var

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter("fieldsvc_http_requests_total", "HTTP requests by endpoint and status.",
                   ["method", "endpoint", "status"], registry=REGISTRY)
LATENCY = Histogram("fieldsvc_http_request_seconds", "HTTP request latency by endpoint.",
                    ["method", "endpoint"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_SECRET_KEYS = ("token", "password", "authorization", "secret")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields named like secrets are dropped."""

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in getattr(record, "fields", {}).items():
            if not any(s in key.lower() for s in _SECRET_KEYS):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def _stamp_request_ids() -> None:
    """Records carry the request id from the moment they are made, whoever formats them later."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "fieldsvc", False):
        return

    def make(*args, **kwargs):
        record = factory(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    make.fieldsvc = True
    logging.setLogRecordFactory(make)


def configure_logging(level: str) -> None:
    _stamp_request_ids()
    root = logging.getLogger("fieldsvc")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = True


def init_observability(app: Flask) -> None:
    configure_logging(app.config["LOG_LEVEL"])
    access = logging.getLogger("fieldsvc.access")

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_token = request_id_var.set(g.request_id)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response):
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = request.endpoint or "unmatched"
        REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        LATENCY.labels(request.method, endpoint).observe(elapsed)
        response.headers["X-Request-Id"] = g.get("request_id", "")
        actor = g.get("actor")
        access.info("request", extra={"fields": {
            "method": request.method, "path": request.path, "status": response.status_code,
            "ms": round(elapsed * 1000, 2), "actor": actor.label if actor else None,
        }})
        return response

    @app.teardown_request
    def _reset(_exc) -> None:
        token = g.pop("request_token", None)
        if token is not None:
            request_id_var.reset(token)


def metrics_text() -> bytes:
    """This process's metrics, or every worker's when PROMETHEUS_MULTIPROC_DIR is set (gunicorn)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
