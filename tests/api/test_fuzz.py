"""Property-based fuzz of the whole API from /openapi.json: no endpoint answers 5xx.

Endpoints added later join automatically because they are in the document. Bounded
(few examples per operation, derandomised) so the suite stays quick and repeatable.
"""

from __future__ import annotations

import os
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.errors import UnsupportedSchema

EXAMPLES = int(os.environ.get("FIELDSVC_FUZZ_EXAMPLES", "12"))


def fuzz_operation(operation, headers: dict, seen: Counter, failures: list) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        if response.status_code >= 500:
            failures.append((operation.method, operation.path, response.status_code, response.text[:300]))
        if response.status_code >= 400 and response.headers.get("Content-Type", "").startswith("application/json"):
            assert {"status", "code", "message"} <= set(response.json()), operation.path

    run()


def test_no_endpoint_answers_5xx(app, county, admin):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    seen: Counter = Counter()
    failures: list = []
    unsupported = []
    for operation in operations:
        if operation.path.startswith("/docs/static"):
            continue
        try:
            fuzz_operation(operation, admin.headers, seen, failures)
        except UnsupportedSchema:  # a pattern the generator cannot draw from; named below if it spreads
            unsupported.append(f"{operation.method} {operation.path}")
    assert failures == []
    assert len(unsupported) <= 3, unsupported
    assert any(200 <= status < 300 for status in seen), seen  # the fuzz reached real work
