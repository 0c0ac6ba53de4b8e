"""The console's lab workspace (upload, dry-run report, fix, commit) and the officials' bulk review,
over Flask's test client; every write is read back through the API."""

from __future__ import annotations

import io
import re

import pytest

from tests.api.test_console_pages import Console, push, record, sample_data, text_of


class Codes(list):
    """Bag codes, with the parcels they were taken on (same order)."""

    def __init__(self, codes, parcels):
        super().__init__(codes)
        self.parcels = parcels


HEADER = "sample_code,analyte,value,unit,detection_limit,method\n"


@pytest.fixture
def field(app, client, county, official, make_account):
    """Three samples pushed by a device onto paddy parcels of one village."""
    paddy = [f for f in county.parcels if f["properties"]["land_use"] == "paddy"]
    village = paddy[0]["properties"]["village"]
    here = [f for f in paddy if f["properties"]["village"] == village][:3]
    sampler = make_account("sampler")
    resp = client.post("/api/v1/devices", json={"name": "P", "user": sampler.username, "villages": [village],
                                                "parcels": []}, headers=official.headers)
    headers = {"Authorization": f"Bearer {resp.get_json()['token']}"}
    codes = [f"L-{i}" for i in range(len(here))]
    out = push(client, headers, *(record(sample_data(f, c)) for f, c in zip(here, codes, strict=True)))
    assert {r["status"] for r in out} == {"applied"}, out
    return Codes(codes, parcels=[f["properties"]["code"] for f in here])


@pytest.fixture
def lab_console(app, make_account):
    account = make_account("lab")
    console = Console(app)
    resp = console.login(account.username, account.password)
    assert resp.status_code == 303
    console.get("/console/lab")  # (the CSRF token after sign-in)
    return account, console


def upload(console: Console, content: str, filename: str = "r.csv"):
    return console.post("/console/lab/check", {"file": (io.BytesIO(content.encode()), filename)},
                        content_type="multipart/form-data")


def test_lab_signs_in_to_its_workspace_only(app, lab_console):
    _, console = lab_console
    resp = console.get("/console/")
    assert resp.status_code == 303 and resp.headers["Location"] == "/console/lab"
    page = text_of(console.get("/console/lab"))
    assert 'id="upload-form"' in page and "/console/queues" not in page  # its nav has only the workspace
    for path in ("/console/review", "/console/queues", "/console/certificates"):
        assert console.get(path).status_code == 403, path


def test_upload_fix_commit(app, client, field, lab_console, official):
    account, console = lab_console
    bad = HEADER + (f"{field[0]},Cd,0.21,mg/kg,,\n{field[0]},Pb,25,furlongs,,\n{field[1]},Cd,ND,mg/kg,0.01,\n"
                    f"{field[1]},Pb,25000,ug/kg,,\nNOT-YET-1,Cd,0.3,mg/kg,,\n")
    resp = upload(console, bad)
    assert resp.status_code == 200
    page = text_of(resp)
    assert 'id="fix-needed"' in page and 'id="commit-form"' not in page
    assert re.search(r'<tr class="exceeds" data-line="3"><td class="num">3</td>'
                     r'<td class="mono" data-quoted title="[^"]*">unit</td>', page)  # the file's own header
    assert re.search(r'data-count="converted">1<', page) and re.search(r'data-count="censored">1<', page)
    assert "NOT-YET-1" in page.split('id="held-codes"')[1]
    lab_results = client.get("/api/v1/lab/results", headers=official.headers).get_json()["items"]
    assert lab_results == []  # a check writes nothing
    fixed = bad.replace("furlongs", "mg/kg")
    page = text_of(upload(console, fixed))
    assert 'id="commit-form"' in page and 'id="fix-needed"' not in page
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page).group(1)
    resp = console.post("/console/lab/commit", {"sha256": sha})
    assert resp.status_code == 303 and re.match(r"/console/lab/imports/\d+$", resp.headers["Location"])
    detail = text_of(console.get(resp.headers["Location"]))
    assert re.search(r'data-count="pending">5<', detail) and "NOT-YET-1" in detail
    stored = client.get("/api/v1/lab/results", query_string={"sample": field[1]},
                        headers=official.headers).get_json()["items"]
    pb = next(i for i in stored if i["analyte"] == "Pb")
    assert (pb["value"], pb["raw_value"], pb["raw_unit"]) == ("25", "25000", "ug/kg")
    assert all(i["created_by"] == f"user:{account.username}" for i in stored)
    again = console.post("/console/lab/commit", {"sha256": sha})  # the staged copy is gone
    assert again.status_code == 409
    listing = text_of(console.get("/console/lab"))
    assert 'data-import="' in listing and "r.csv" in listing


def test_commit_refuses_a_hash_that_was_not_staged(lab_console):
    _, console = lab_console
    console.get("/console/lab")
    assert console.post("/console/lab/commit", {"sha256": "../../etc/passwd"}).status_code == 409
    assert console.post("/console/lab/commit", {"sha256": "0" * 64}).status_code == 409


def test_review_highlights_and_bulk_approves_with_confirmation(app, client, field, lab_console, make_account):
    _, lab = lab_console
    csv = HEADER + "".join(f"{c},pH,6.0,,,\n{c},Cd,{v},mg/kg,,\n" for c, v in zip(field, ("0.45", "0.1", "0.12"),
                                                                               strict=False))
    page = text_of(upload(lab, csv))
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"', page).group(1)
    import_id = re.search(r"/imports/(\d+)", lab.post("/console/lab/commit", {"sha256": sha}).headers["Location"])[1]
    official = make_account("official")
    console = Console(app)
    console.login(official.username, official.password, "/console/review")
    review = text_of(console.get("/console/review"))
    assert f'?import={import_id}"' in review
    rows = dict(re.findall(r'<tr id="result-(\d+)" class="[a-z]*" data-exceeds="([01])">', review))
    assert len(rows) == 6 and list(rows.values()).count("1") == 1  # Cd 0.45 on paddy at pH 6 (limit 0.3)
    assert re.search(r'<span class="mark">1\.50 ▲</span>', review)
    # rejecting needs a reason; the confirmation page names the count; nothing happens before it
    resp = console.post("/console/review/confirm", {"action": "reject", "scope": "import", "import_id": import_id})
    assert resp.status_code == 422 and "reason" in text_of(resp)
    confirm = console.post("/console/review/confirm", {"action": "approve", "scope": "import",
                                                       "import_id": import_id})
    assert confirm.status_code == 200 and 'id="confirm-form"' in text_of(confirm)
    assert "6" in text_of(confirm).split("<h1>")[1].split("</h1>")[0]
    pending = client.get("/api/v1/lab/results", query_string={"status": "pending"}, headers=official.headers)
    assert len(pending.get_json()["items"]) == 6
    assert console.post("/console/review/apply", {"action": "approve", "scope": "import",
                                                  "import_id": import_id}).status_code == 422  # not confirmed
    done = console.post("/console/review/apply", {"action": "approve", "scope": "import", "import_id": import_id,
                                                  "confirmed": "1"})
    assert done.status_code == 303
    after = text_of(console.get(done.headers["Location"]))
    assert 'id="nothing-to-review"' in after
    approved = client.get("/api/v1/lab/results", query_string={"status": "approved"}, headers=official.headers)
    assert len(approved.get_json()["items"]) == 6
    # approval re-graded the parcels at once: Cd 0.45 fails its parcel (the others lack other metals)
    verdicts = [client.get(f"/api/v1/grades/parcel/{p}", headers=official.headers).get_json()["verdict"]
                for p in field.parcels]
    assert verdicts == ["not_qualified", "indeterminate", "indeterminate"], verdicts


def test_bulk_ticked_rows_and_four_eyes_counted(app, client, field, make_account):
    importer = make_account("official")
    resp = client.post("/api/v1/lab/imports", headers=importer.headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO((HEADER + f"{field[0]},Cd,0.1,mg/kg,,\n").encode()), "o.csv")})
    assert resp.status_code == 201
    rid = client.get("/api/v1/lab/results", headers=importer.headers).get_json()["items"][0]["id"]
    console = Console(app)
    console.login(importer.username, importer.password, "/console/review")
    console.get("/console/review")
    resp = console.post("/console/review/apply", {"action": "approve", "ids": rid, "confirmed": "1",
                                                  "import_id": resp.get_json()["import_id"]})
    assert resp.status_code == 303
    flash = text_of(console.get(resp.headers["Location"]))
    assert "1 left unchanged: imported by you 1." in flash or "1 条未改动：本人导入 1。" in flash
    item = client.get(f"/api/v1/lab/results/{rid}", headers=importer.headers).get_json()
    assert item["status"] == "pending"



def test_console_downloads_use_the_session_and_the_page_language(app, client, field, lab_console, official):
    _, console = lab_console
    page = text_of(console.get("/console/lab"))
    assert "/console/exports/results.xlsx" in page and "/console/exports/certificates" not in page  # lab: no certs
    sha = re.search(r'name="sha256" value="([0-9a-f]{64})"',
                    text_of(upload(console, HEADER + f"{field[0]},Cd,0.2,mg/kg,,\n"))).group(1)
    committed = console.post("/console/lab/commit", {"sha256": sha})
    import_id = re.search(r"/imports/(\d+)", committed.headers["Location"])[1]
    resp = console.get(f"/console/exports/results.csv?import_id={import_id}")
    assert resp.status_code == 200 and resp.headers["Content-Disposition"] == 'attachment; filename="results.csv"'
    lines = resp.data.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("结果ID,样品ID,样品袋编号") and len(lines) == 2  # zh: the console's language
    english = console.get(f"/console/exports/results.csv?import_id={import_id}&lang=en").data.decode("utf-8-sig")
    assert english.startswith("Result id,")
    assert console.get("/console/exports/certificates.csv").status_code == 403
    assert console.get("/console/exports/results.csv?state=held").status_code == 422
    assert Console(app).get("/console/exports/results.csv").status_code == 303  # signed out: to the login
