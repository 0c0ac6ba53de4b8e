"""Console lists, the header search and exports for a filter (issue 16, "Find and export").

Lists: filters and sorts in the URL, keyset pages that together hold every row once, a 422 naming
a bad filter or sort, county scoping. Search: one match jumps, several list, another county finds
nothing. Exports from a list: XLSX read back with openpyxl equals the API, a GeoPackage read back
with pyogrio has the features and CRS, a CSV cell starting with ``=`` arrives escaped; a large
export runs as a background job whose file downloads, and another county's official cannot.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import time

import pyogrio
import pytest

from fieldsvc.extensions import db
from tests.api import test_exports
from tests.api.test_console_pages import Console
from tests.api.test_exports import api_items, sheet_rows

graded = test_exports.graded  # the approved and graded console scene (a fixture)

NEXT = re.compile(r'rel="next" href="(/console/lists/[^"]+)"')


def signed_in(app, account) -> Console:
    console = Console(app)
    assert console.login(account.username, account.password).status_code == 303
    return console


def codes_in(html: str, prefix: str) -> list[str]:
    return re.findall(rf'href="/console/{prefix}/([^"?]+)"', html)


def all_pages(console: Console, url: str) -> tuple[list[str], list[str]]:
    """Follow the 'next page' links; the parcel codes of every page and the URLs followed."""
    seen, urls = [], [url]
    while True:
        html = console.get(url).get_data(as_text=True)
        seen += codes_in(html, "parcel")
        nxt = NEXT.search(html)
        if not nxt:
            return seen, urls
        url = nxt.group(1).replace("&amp;", "&")
        urls.append(url)


def test_parcel_list_pages_filters_and_sorts(app, client, graded):
    scene, reviewer = graded
    console = signed_in(app, reviewer)
    parcels = api_items(client, reviewer, "/api/v1/parcels")
    expected = {p["properties"]["code"] for p in parcels}
    areas = {p["properties"]["code"]: p["properties"]["area_m2"] for p in parcels}
    assert len(expected) > 50
    q = scene.county
    codes, urls = all_pages(console, f"/console/lists/parcels?q={q}&size=25")
    assert len(urls) >= 3 and all(f"q={q}" in u for u in urls)  # the filter stays in every page's URL
    assert len(codes) == len(set(codes)) == len(expected) and set(codes) == expected
    assert codes == sorted(codes)
    down, _ = all_pages(console, f"/console/lists/parcels?q={q}&size=25&sort=-code")
    assert down == sorted(expected, reverse=True)
    by_area, _ = all_pages(console, f"/console/lists/parcels?q={q}&size=25&sort=-area")
    assert set(by_area) == expected and [areas[c] for c in by_area] == sorted(areas.values(), reverse=True)
    village, _ = all_pages(console, f"/console/lists/parcels?village={scene.village}")
    assert set(village) == {c for c in expected if c.startswith(scene.village)}
    # a cursor made for another sort is refused, as are a bad filter value and a bad sort
    cursor = re.search(r"cursor=([^&\"]+)", console.get(urls[0]).get_data(as_text=True)).group(1)
    for query, name in ((f"sort=-code&cursor={cursor}", "cursor"), ("sort=colour", "sort"),
                        ("land_use=moon", "land_use"), ("size=7", "size")):
        resp = console.get(f"/console/lists/parcels?{query}")
        assert resp.status_code == 422 and name in resp.get_data(as_text=True), query


def test_sample_list_filter_and_other_lists(app, client, graded, make_account):
    scene, reviewer = graded
    console = signed_in(app, reviewer)
    held = console.get("/console/lists/samples?state=held").get_data(as_text=True)
    assert scene.held_sample in held and scene.clean_sample not in held
    assert 'value="held" selected' in held
    for kind in ("villages", "farm_parks", "certificates", "conflicts", "devices", "lab_imports", "samples"):
        resp = console.get(f"/console/lists/{kind}")
        assert resp.status_code == 200, kind
    assert scene.village in console.get("/console/lists/villages").get_data(as_text=True)
    assert scene.device_id in console.get("/console/lists/devices").get_data(as_text=True)
    outsider = signed_in(app, make_account("official", county="999999"))
    for kind, needle in (("samples", scene.clean_sample), ("villages", scene.village), ("parcels", scene.clean_parcel),
                         ("devices", scene.device_id)):
        assert needle not in outsider.get(f"/console/lists/{kind}?size=200").get_data(as_text=True), kind


def test_search_jumps_lists_and_is_scoped(app, graded, make_account):
    scene, reviewer = graded
    console = signed_in(app, reviewer)
    resp = console.get("/console/search", query_string={"q": scene.clean_parcel})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/console/parcel/{scene.clean_parcel}")
    resp = console.get("/console/search", query_string={"q": scene.clean_sample.lower()})
    assert resp.status_code == 303 and "/console/parcel/" in resp.headers["Location"]
    resp = console.get("/console/search", query_string={"q": scene.device_id})
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/console/devices/{scene.device_id}")
    many = console.get("/console/search", query_string={"q": scene.village[:9]})
    assert many.status_code == 200 and scene.village in many.get_data(as_text=True)
    outsider = signed_in(app, make_account("official", county="999999"))
    none = outsider.get("/console/search", query_string={"q": scene.clean_parcel})
    assert none.status_code == 200 and f"/console/parcel/{scene.clean_parcel}" not in none.get_data(as_text=True)


def test_list_export_links_xlsx_gpkg_csv(app, client, graded, tmp_path):
    scene, reviewer = graded
    console = signed_in(app, reviewer)
    html = console.get(f"/console/lists/samples?state=complete&village={scene.village}").get_data(as_text=True)
    link = re.search(r'href="(/console/export/samples\.xlsx[^"]*)"', html).group(1).replace("&amp;", "&")
    assert "state=complete" in link and f"village={scene.village}" in link
    _, rows = sheet_rows(console.get(link).data)
    village_parcels = {p["properties"]["code"] for p in api_items(client, reviewer, "/api/v1/parcels",
                                                                  village=scene.village)}
    expected = {s["code"]: s for s in api_items(client, reviewer, "/api/v1/samples", state="complete")
                if s["parcel"] in village_parcels}
    assert expected and {r["样品袋编号"] for r in rows} == set(expected)  # the page's language: zh headers
    for row in rows:
        item = expected[row["样品袋编号"]]
        assert (row["样品ID"], row["地块"], row["版本"]) == (item["id"], item["parcel"], item["version"])
        assert isinstance(row["定位精度 (m)"], (int, float)) and row["定位精度 (m)"] == item["location"]["accuracy_m"]
    gpkg = tmp_path / "grades.gpkg"
    gpkg.write_bytes(console.get(f"/console/export/grades.gpkg?village={scene.village}").data)
    info = pyogrio.read_info(gpkg, layer="grades")
    parcels = api_items(client, reviewer, "/api/v1/parcels", village=scene.village)
    assert info["crs"] == "EPSG:4326" and info["features"] == len(parcels)


def test_list_csv_escapes_formulas(app, client, county, make_account):
    from tests.api.test_lab_imports import make_samples, upload

    make_samples(app, "S-1")
    lab, official = make_account("lab"), make_account("official")
    text = "sample_code,analyte,value,unit,detection_limit,method\nS-1,Cd,0.2,mg/kg,,=1+2\n"
    assert upload(client, lab, text.encode()).status_code == 201
    resp = signed_in(app, official).get("/console/export/results.csv?lang=en")
    rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert [r["Method"] for r in rows] == ["'=1+2"]


def _job_id(resp) -> int:
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    return int(re.search(r"/console/export-jobs/(\d+)$", resp.headers["Location"]).group(1))


def test_large_export_runs_as_a_job_and_only_its_county_downloads(app, client, graded, make_account):
    from fieldsvc.exports import jobs
    from fieldsvc.exports.models import ExportJob

    scene, reviewer = graded
    app.config.update(EXPORT_JOB_ROWS=3, EXPORT_JOB_THREAD=False)
    console = signed_in(app, reviewer)
    job_id = _job_id(console.get(f"/console/export/grades.xlsx?county={scene.county}"))
    waiting = console.get(f"/console/export-jobs/{job_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' in waiting and "/file" not in waiting
    assert console.get(f"/console/export-jobs/{job_id}/file").status_code == 404  # not written yet
    result = app.test_cli_runner().invoke(args=["exports", "work"])
    assert result.exit_code == 0 and "export jobs run: 1" in result.output
    done = console.get(f"/console/export-jobs/{job_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in done and f"/console/export-jobs/{job_id}/file" in done
    file = console.get(f"/console/export-jobs/{job_id}/file")
    assert file.status_code == 200 and file.mimetype.endswith("spreadsheetml.sheet")
    _, rows = sheet_rows(file.data)
    file.close()
    parcels = api_items(client, reviewer, "/api/v1/parcels", county=scene.county)
    assert {r["地块"] for r in rows} == {p["properties"]["code"] for p in parcels}
    with app.app_context():
        job = db.session.get(ExportJob, job_id)
        assert (job.state, job.rows_done, job.role, job.county_code) == ("done", len(parcels), "official", None)
    other = signed_in(app, make_account("official", county="360130"))
    assert other.get(f"/console/export-jobs/{job_id}").status_code == 404
    assert other.get(f"/console/export-jobs/{job_id}/file").status_code == 404
    # expired: the file is deleted, the page says so, the link is gone
    with app.app_context():
        assert jobs.purge(0) == 1
        path = db.session.get(ExportJob, job_id).path
    assert path is None and console.get(f"/console/export-jobs/{job_id}/file").status_code == 404


def test_county_official_job_is_read_under_their_scope_in_a_thread(app, client, graded, make_account):
    from fieldsvc.exports.models import ExportJob

    scene, _ = graded
    local = make_account("official", county=scene.county)
    app.config.update(EXPORT_JOB_ROWS=1, EXPORT_JOB_THREAD=True)
    console = signed_in(app, local)
    job_id = _job_id(console.get("/console/export/samples.csv?lang=en"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with app.app_context():
            state = db.session.get(ExportJob, job_id).state
        if state in ("done", "failed"):
            break
        time.sleep(0.2)
    assert state == "done"
    for thread in threading.enumerate():  # the job's thread hands its connection back before the app goes
        if thread.name == f"export-job-{job_id}":
            thread.join(30)
    download = console.get(f"/console/export-jobs/{job_id}/file")
    rows = list(csv.DictReader(io.StringIO(download.data.decode("utf-8-sig"))))
    download.close()
    expected = {s["code"] for s in api_items(client, local, "/api/v1/samples")}
    assert {r["Bag code"] for r in rows} == expected
    with app.app_context():
        assert db.session.get(ExportJob, job_id).county_code == scene.county


@pytest.mark.parametrize("query", ["state=lost", "sort=-nothing"])
def test_bad_list_values_are_a_named_422(app, graded, query):
    _, reviewer = graded
    resp = signed_in(app, reviewer).get(f"/console/lists/samples?{query}")
    assert resp.status_code == 422 and query.split("=")[0] in resp.get_data(as_text=True)
