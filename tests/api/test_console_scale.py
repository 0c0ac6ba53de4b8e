"""The console at county scale (issue 16, bench/console.py): the overview and the certificate
candidates read every area's grade and qualification grouped, and say exactly what the one-area
reads say; a village page lists its first parcels and links the full list."""

from __future__ import annotations

import re
from dataclasses import replace

from sqlalchemy import delete

from fieldsvc.extensions import db
from tests.api.test_grading_basis import _sample_dryland
from tests.api.test_grading_rollup import run_county


def _areas(county) -> dict[str, list[str]]:
    return {"village": [r["code"] for r in county.regions if r["level"] == "village"],
            "farm_park": [p["code"] for p in county.farm_parks]}


def _same_as_one_by_one(app, county) -> int:
    """Grouped reads equal the one-area reads for every village and park; returns how many were assessed."""
    from fieldsvc.grading.pack_admin import resolve_pack
    from fieldsvc.grading.qualification import area_qualifications, qualification
    from fieldsvc.grading.queries import area_grade, area_grades

    assessed = 0
    with app.app_context():
        pack = resolve_pack(None)
        for kind, codes in _areas(county).items():
            many = area_grades(kind, codes, pack)
            quals = area_qualifications(kind, codes, county=county.county)
            assert set(many) == set(quals) == set(codes)
            for code in codes:
                one, row = area_grade(kind, code, pack)
                ag, grouped_row = many[code]
                assert grouped_row == row
                if one.graded_area_m2 > 0:
                    assessed += 1
                if row is not None:  # maintained sums: the very same Decimals
                    assert replace(ag, holding_back=()) == replace(one, holding_back=()), (kind, code)
                else:  # rolled up live: the same grade and counts; areas are the database's float sums
                    _same_live_grade(ag, one, (kind, code))
                q, q1 = quals[code], qualification(kind, code)
                assert (q.qualified, q.reasons, q.grade, q.verdict, q.rule_pack, q.tested_on, q.grade_id) == \
                    (q1.qualified, q1.reasons, q1.grade, q1.verdict, q1.rule_pack, q1.tested_on, q1.grade_id)
    return assessed


AREAS = ("total_area_m2", "graded_area_m2", "qualified_area_m2", "coverage", "qualified_share")


def _same_live_grade(ag, one, where) -> None:
    """A grouped live roll-up says what the exact one-area roll-up says: every field equal but the areas
    and the shares made of them, which agree to float precision (``queries._live_area_grades``)."""
    exact = {f: getattr(one, f) for f in AREAS}
    assert replace(ag, holding_back=(), **exact) == replace(one, holding_back=()), where
    for f in AREAS:
        got, want = float(getattr(ag, f)), float(getattr(one, f))
        assert abs(got - want) <= 1e-9 * max(abs(want), 1.0), (where, f, got, want)


def test_grouped_area_reads_equal_one_area_reads(app, client, official, county):
    assert _same_as_one_by_one(app, county) == 0  # nothing graded yet, no maintained sums: all live
    _sample_dryland(app, county)
    run_county(client, official, county)
    assert _same_as_one_by_one(app, county) > 0  # maintained sums
    from fieldsvc.grading.models import RollupSum

    with app.app_context():  # some areas without their sums: rolled up live (assessed ones exactly)
        db.session.execute(delete(RollupSum).where(RollupSum.subject_type.in_(("village", "farm_park"))))
        db.session.commit()
    assert _same_as_one_by_one(app, county) > 0


def _parcels_same_as_one_by_one(app, county) -> set[str]:
    from fieldsvc.grading.qualification import parcel_qualifications, qualification

    codes = [f["properties"]["code"] for f in county.parcels]
    with app.app_context():
        many = parcel_qualifications(codes + ["no-such-parcel"])
        assert set(many) == set(codes)  # an unknown parcel is left out
        for code in codes:
            q, q1 = many[code], qualification("parcel", code)
            assert (q.qualified, q.reasons, q.grade, q.verdict, q.rule_pack, q.tested_on, q.grade_id) == \
                (q1.qualified, q1.reasons, q1.grade, q1.verdict, q1.rule_pack, q1.tested_on, q1.grade_id), code
        return {r.split(":")[0] for q in many.values() for r in q.reasons}


def test_grouped_parcel_qualifications_equal_one_parcel_reads(app, client, official, county):
    from tests.api.test_grading_api import put_results, put_sample

    assert _parcels_same_as_one_by_one(app, county) == {"basis_not_assessed"}
    dry = _sample_dryland(app, county)
    wet = [f["properties"]["code"] for f in county.parcels if f["properties"]["code"] not in dry]
    put_results(app, put_sample(app, wet[0], county=county.county), {"pH": "6.0", "Cd": "0.90", "Pb": "20"})
    put_sample(app, wet[1], state="held", county=county.county)
    run_county(client, official, county)
    reasons = _parcels_same_as_one_by_one(app, county)
    assert {"basis_not_assessed", "not_qualified", "incomplete_samples"} <= reasons, reasons


def test_village_page_lists_its_first_parcels_and_links_the_list(app, client, official, county, monkeypatch):
    from fieldsvc.console import views
    from tests.api.test_console_pages import Console

    village = max(_areas(county)["village"],
                  key=lambda v: sum(1 for f in county.parcels if f["properties"]["village"] == v))
    parcels = sorted(f["properties"]["code"] for f in county.parcels if f["properties"]["village"] == village)
    assert len(parcels) > 2
    console = Console(app)
    assert console.login(official.username, official.password).status_code == 303
    page = console.get(f"/console/village/{village}?lang=en").get_data(as_text=True)
    assert all(code in page for code in parcels)  # a small village: every parcel, and the list's link
    assert "The first" not in page and f'href="/console/lists/parcels?village={village}"' in page
    monkeypatch.setattr(views, "AREA_ROWS", 2)
    page = console.get(f"/console/village/{village}?lang=en").get_data(as_text=True)
    table = page.split('id="parcels"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'href="/console/parcel/([^"]+)"', table) == parcels[:2]
    assert f"The first 2 of {len(parcels)} parcels are listed here." in page
    assert f"<b>{len(parcels)}</b>" in page  # the count is the village's, not the page's
    zh = console.get(f"/console/village/{village}?lang=zh").get_data(as_text=True)
    assert f"这里列出前 2 个地块（共 {len(parcels)} 个）。" in zh and "在地块列表中查看全部" in zh


def test_county_memo_computes_once_per_data_version(app):
    from fieldsvc.console import county_memo
    from fieldsvc.tiles import cache

    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    with app.test_request_context():
        assert county_memo.remembered(("k",), compute) == 1
        assert county_memo.remembered(("k",), compute) == 1  # same version: kept
        assert county_memo.remembered(("other",), compute) == 2  # another key
        cache.invalidate()  # what the event chain does after parcels, samples or grades change
        db.session.commit()
        assert county_memo.remembered(("k",), compute) == 3
        county_memo.clear()
        assert county_memo.remembered(("k",), compute) == 4


def test_county_coverage_from_the_village_tallies_equals_the_county_count(app, client, official, county):
    """Without maintained sums the overview's coverage comes from the villages' grouped tallies (read once
    for the rows too); it says what counting the county's parcels, samples and grades says."""
    from fieldsvc.console import county_memo
    from fieldsvc.console.queries import county_coverage, coverage_counts
    from fieldsvc.grading.models import RollupSum
    from fieldsvc.grading.pack_admin import resolve_pack
    from fieldsvc.grading.queries import area_grades

    _sample_dryland(app, county)
    run_county(client, official, county)
    villages = _areas(county)["village"]

    def both() -> tuple:
        with app.test_request_context():
            pack = resolve_pack(None)
            area_grades("village", villages, pack, county_memo.remembered)  # the overview's rows first
            return (county_coverage(county.county, villages, pack, county_memo.remembered),
                    coverage_counts("county", county.county))

    kept, counted = both()  # the county has maintained sums: counted directly
    assert kept == counted and counted.graded > 0 and counted.sampled > 0
    with app.app_context():
        db.session.execute(delete(RollupSum))
        db.session.commit()
    tallied, counted = both()
    assert tallied == counted
    with app.test_request_context():
        assert len(county_memo._memo()) == 1  # one grouped read served the rows and the coverage
