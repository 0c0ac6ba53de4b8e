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


STATEFUL_EXAMPLES = int(os.environ.get("FIELDSVC_FUZZ_STATEFUL_EXAMPLES", "15"))


def test_stateful_flows_over_the_links_never_answer_5xx(app, county, official, make_account):
    """Schemathesis's stateful phase: sequences that follow the document's links (create → read →
    approve → grade) with the data the previous answers returned. Bounded and derandomised."""
    from tests.api.test_grading_api import CLEAN, put_results, put_sample

    for feature in county.parcels[:3]:  # pending results, so that list → read → approve has something
        put_results(app, put_sample(app, feature["properties"]["code"]), CLEAN, status="pending")
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    links = [(op, status, name) for path, ops in schema.raw_schema["paths"].items() for op in ops.values()
             if isinstance(op, dict) for status, response in op.get("responses", {}).items()
             for name in response.get("links", {})]
    assert len(links) >= 10, links
    failures: list = []
    followed: Counter = Counter()
    sampler = make_account("sampler")
    village = next(r["code"] for r in county.regions if r["level"] == "village")
    # Some flows start only from a valid create; every other call is drawn from the schema.
    valid_starts = {"POST /api/v1/devices": lambda i: {"name": f"Phone {i}", "user": sampler.username,
                                                        "villages": [village]},
                    "POST /api/v1/grading/runs": lambda i: {"scope": {"village": village}}}
    counter = iter(range(10**6))

    class Flows(schema.as_state_machine()):
        def before_call(self, case):
            start = valid_starts.get(case.operation.label)
            if start is not None and next(counter) % 2 == 0:
                case.body = start(next(counter))

        def get_call_kwargs(self, case):
            return {"headers": official.headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            followed[(case.operation.label, response.status_code)] += 1
            if response.status_code >= 500:
                failures.append((case.operation.label, response.status_code, response.text[:300]))

    Flows.run(settings=settings(max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, deadline=None,
                                database=None, derandomize=True, suppress_health_check=list(HealthCheck)))
    assert failures == []
    assert sum(followed.values()) > STATEFUL_EXAMPLES, followed  # sequences, not single calls
    targets = {"GET /api/v1/devices/{device_id}", "PATCH /api/v1/devices/{device_id}",
               "POST /api/v1/devices/{device_id}/revoke", "GET /api/v1/grading/runs/{run_id}"}
    assert any(label in targets and 200 <= status < 300 for (label, status) in followed), followed  # links followed
