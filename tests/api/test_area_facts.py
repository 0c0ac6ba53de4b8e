"""The console's certificates page reads every village's samples and grades in grouped queries
(``grading.qualification.area_facts``), and says exactly what the one-area ``qualification`` says."""

from __future__ import annotations

import re

from sqlalchemy import event

from fieldsvc.extensions import db
from fieldsvc.grading.qualification import area_facts, qualification
from tests.api.test_grading_api import CLEAN, FAIL_CD, paddy, put_results, put_sample, regrade


def test_grouped_facts_give_the_same_answers_as_one_area_at_a_time(app, county):
    from fieldsvc.samples.models import SyncConflict

    first, second = paddy(county, 0), paddy(county, 1)
    for parcel, values in ((first, CLEAN), (second, FAIL_CD)):
        sid = put_sample(app, parcel["code"])
        put_results(app, sid, values)
        regrade(app, sid)
    put_sample(app, paddy(county, 2)["code"], state="incomplete")
    blocked = put_sample(app, paddy(county, 3)["code"])
    with app.app_context():
        db.session.add(SyncConflict(record_id=blocked, kind="hard", code="BAG-X", base_version=1, server_version=1,
                                    server_body={}, incoming_body={}, incoming_hash="0" * 64, hard_fields=[],
                                    soft_fields=[], county_code=county.county, created_by="device:test"))
        db.session.commit()
    villages = sorted({f["properties"]["village"] for f in county.parcels})
    parks = sorted({f["properties"]["farm_park"] for f in county.parcels if f["properties"].get("farm_park")})
    with app.app_context():
        for kind, codes in (("village", villages), ("farm_park", parks)):
            facts = area_facts(kind, codes + ["NO-SUCH-AREA"])
            assert facts["NO-SUCH-AREA"].parcels == 0
            for code in codes:
                assert qualification(kind, code, facts=facts[code]) == qualification(kind, code), (kind, code)
        seen = area_facts("village", villages)
        assert seen[first["village"]].complete_samples >= 2 and seen[first["village"]].tested_on is not None
        assert seen[paddy(county, 2)["village"]].incomplete_samples
        assert seen[paddy(county, 3)["village"]].blocking_conflicts


def test_the_certificates_page_reads_samples_in_a_fixed_number_of_queries(app, county, official):
    from tests.api.test_console_pages import Console

    console = Console(app)
    assert console.login(official.username, official.password).status_code == 303
    statements: list[str] = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        page = console.get(f"/console/certificates?county={county.county}")
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert page.status_code == 200
    villages = len({f["properties"]["village"] for f in county.parcels})
    on_samples = [s for s in statements if re.search(r"\bFROM samples\b", s)]
    assert villages > 5 and len(on_samples) <= 8, len(on_samples)  # was 3 per village
