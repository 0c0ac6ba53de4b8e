"""The basis of a grade, end to end (issue 14): not assessed is its own verdict, never a failure,
and wherever a grade shows (API, console, reports, certificate reasons) its basis shows too."""

from __future__ import annotations

import copy
import csv
import io

from fieldsvc.extensions import db
from tests.api.test_grading_api import grade, put_results, put_sample
from tests.api.test_grading_rollup import run_county

CLEAN = {"pH": "6.0", "Cd": "0.12", "Hg": "0.05", "As": "8", "Pb": "25", "Cr": "60", "Cu": "20", "Se": "0.45"}
FAR_VILLAGE = "360129100299"  # a village 5-6 km east of every sample of the small county
DRY = ("dryland", "vegetable", "tea", "orchard", "grassland")


def _add_far_village(app, county) -> list[str]:
    """Three dryland parcels in a new village ~5.4 km east of the county's parcels."""
    from fieldsvc.auth.principal import SYSTEM
    from fieldsvc.places import services as places

    township = next(r["code"] for r in county.regions if r["level"] == "township")
    template = next(f for f in county.parcels if f["properties"]["land_use"] == "dryland")
    features = []
    for k in range(3):
        f = copy.deepcopy(template)
        f["properties"] = {"code": f"{FAR_VILLAGE}-{k + 1:04d}", "village": FAR_VILLAGE, "land_use": "dryland",
                           "crop": template["properties"].get("crop")}
        f["geometry"]["coordinates"] = [[[lon + 0.055 + 0.001 * k, lat] for lon, lat in ring]
                                        for ring in f["geometry"]["coordinates"]]
        features.append(f)
    with app.app_context():
        places.create_region({"code": FAR_VILLAGE, "name": "远山村", "name_en": "Yuanshan Village",
                              "level": "village", "parent": township}, SYSTEM)
        places.import_parcels({"type": "FeatureCollection", "features": features}, SYSTEM, max_features=10)
        db.session.commit()
    return [f["properties"]["code"] for f in features]


def _sample_dryland(app, county, n: int = 8) -> list[str]:
    dry = [f["properties"]["code"] for f in county.parcels if f["properties"]["land_use"] in DRY]
    for i, code in enumerate(dry[:n]):
        put_results(app, put_sample(app, code, county=county.county), {**CLEAN, "Cd": f"{0.10 + 0.01 * i:.2f}"})
    return dry


def test_far_parcel_and_unsampled_village_are_not_assessed_never_failed(app, client, official, county):
    far = _add_far_village(app, county)
    dry = _sample_dryland(app, county)
    run = run_county(client, official, county)
    assert run["counts"]["not_assessed"] >= len(far) and "not_graded" not in run["counts"]

    for code in far:  # 5 km from any sample: no measured, no estimated value
        body = grade(client, official, "parcel", code).get_json()
        assert (body["verdict"], body["basis"], body["qualified"], body["grade"]) == (
            "not_assessed", "not_assessed", False, None)
    estimated = grade(client, official, "parcel", dry[10]).get_json()
    assert estimated["basis"] == "estimated" and estimated["verdict"] in ("qualified", "needs_sampling")

    village = grade(client, official, "village", FAR_VILLAGE).get_json()  # a village with no sample
    assert (village["grade"], village["verdict"], village["qualified"]) == ("not_assessed", "not_assessed", False)
    assert float(village["explanation"]["coverage"]) == 0

    from fieldsvc.grading.qualification import qualification

    with app.app_context():
        q = qualification("parcel", far[0])
        assert q.reasons == ["basis_not_assessed"] and q.verdict == "not_assessed"
        q = qualification("parcel", dry[10])
        assert q.reasons[0].startswith(f"basis_estimated: {estimated['verdict']}; ")
        assert q.reasons[0].endswith(" samples")
        from fieldsvc.certificates.i18n import basis_words
        from fieldsvc.grading.passport import soil_passport

        (green, *_) = soil_passport("parcel", dry[10])["conclusions"]  # what the public page and labels say
        assert green["basis"] == "estimated" and green["estimate"]["samples"] == len(estimated["inputs"]["neighbours"])
        words = basis_words(green, "en")
        assert words.startswith(f"estimated ({green['estimate']['analyte']} ± ") and words.endswith(" samples)")
        assert basis_words(green, "zh").startswith("插值估算（")
        assert soil_passport("parcel", far[0])["conclusions"] == []  # nothing to conclude, nothing failed
        v = qualification("village", FAR_VILLAGE)
        assert v.reasons[0].startswith("not_assessed:") and not any(r.startswith("grade_below_A") for r in v.reasons)

    # exports say not_assessed too, for parcels with and without a grade row
    resp = client.get("/api/v1/exports/grades.csv", headers=official.headers,
                      query_string={"village": FAR_VILLAGE, "verdict": "not_assessed"})
    rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert len(rows) == len(far)


def test_console_and_reports_show_the_basis_grey_for_not_assessed(app, client, official, county):
    from tests.api.test_console_pages import Console

    far = _add_far_village(app, county)
    dry = _sample_dryland(app, county)
    run = run_county(client, official, county)
    est = grade(client, official, "parcel", dry[10]).get_json()
    assert est["basis"] == "estimated"
    n = len(est["inputs"]["neighbours"])
    assert n >= 3

    console = Console(app)
    assert console.login(official.username, official.password).status_code == 303
    page = console.get(f"/console/parcel/{dry[10]}?lang=en").get_data(as_text=True)
    assert "Basis: estimated (" in page and f"from {n} samples)" in page and " ± " in page
    page = console.get(f"/console/parcel/{dry[10]}?lang=zh").get_data(as_text=True)
    assert "依据: 插值估算（" in page and f"据 {n} 个样点）" in page
    measured = console.get(f"/console/parcel/{dry[0]}?lang=en").get_data(as_text=True)
    assert "Basis: measured" in measured
    page = console.get(f"/console/parcel/{far[0]}?lang=en").get_data(as_text=True)
    assert 'class="badge b-not_assessed">not assessed<' in page and "Basis: not assessed" in page
    body = page.split("</style>", 1)[-1]
    assert "not_graded" not in body and "no_approved_results" not in body and "not graded" not in body

    run_page = console.get(f"/console/grading/runs/{run['id']}?lang=en").get_data(as_text=True)
    assert 'Not assessed<b data-count="not_assessed">' in run_page and "rc_" not in run_page

    village = console.get(f"/console/village/{FAR_VILLAGE}?lang=en").get_data(as_text=True).split("</style>")[-1]
    assert 'id="area-grade">Not assessed<' in village and "Coverage: 0 %" in village
    assert "b-C" not in village and "b-not_qualified" not in village  # unsampled land is not failed land
    assert village.count('class="badge b-not_assessed">not assessed</span> <span class="muted basis">not assessed<') \
        == len(far)
    home = dry[10].rsplit("-", 1)[0]
    page = console.get(f"/console/village/{home}?lang=en").get_data(as_text=True)
    assert 'id="area-estimated">' in page and 'class="muted basis">estimated (' in page
    page = console.get(f"/console/village/{dry[0].rsplit('-', 1)[0]}?lang=en").get_data(as_text=True)
    assert 'class="muted basis">measured<' in page

    county_page = console.get(f"/console/county/{county.county}?lang=en").get_data(as_text=True)
    for analyte in ("Cd", "Pb", "As", "Se", "pH"):
        assert f"/console/maps/{county.county}/{analyte}.png" in county_page
        assert f"/console/maps/{county.county}/{analyte}.json" in county_page
    se = console.get(f"/console/maps/{county.county}/Se.json")
    assert se.status_code == 200 and se.get_json()["analyte"] == "Se"
    assert se.get_json()["classes"][1].endswith("(Se-rich)")
    png = console.get(f"/console/maps/{county.county}/Se.png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")

    resp = client.get(f"/api/v1/reports/county/{county.county}.csv", headers=official.headers)
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig")))}
    assert (rows[dry[0]]["basis"], rows[dry[0]]["basis_text"]) == ("measured", "measured")
    r = rows[dry[10]]
    assert (r["basis"], int(r["neighbour_samples"])) == ("estimated", n)
    assert float(r["sigma"]) > 0 and r["basis_text"].startswith(f"estimated ({r['basis_analyte']} ± ")
    resp = client.get(f"/api/v1/reports/village/{FAR_VILLAGE}.csv", headers=official.headers)
    rows = list(csv.DictReader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert {(r["verdict"], r["basis"], r["basis_text"]) for r in rows} == {("not_assessed", "not_assessed",
                                                                            "not assessed")}
