"""Words, not codes: every console page (as an official and as a lab, in Chinese and in English) and the
public certificate pages, rendered with a scene that fills every list, carry no raw code in their text.

The scan (``tests/words_scan.py``) looks for catalogue keys, snake_case identifiers, ISO timestamps,
floats with more than four decimals, ``user:…`` actor ids and JSON. Values people typed (file names,
bag codes, usernames, place codes) are not codes and are removed first.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pytest

from tests.api.test_console_pages import Console, Scene, approve_all, build_scene, text_of
from tests.api.test_flag_review import add_evidence
from tests.words_scan import raw_codes, visible_text

QC_CSV = ("sample_code,analyte,value,unit,detection_limit,qc_type,duplicate_of,crm\n"
          "{flag},Cd,0.45,mg/kg,0.01,,,\n{flag},Pb,0.123456789,mg/kg,0.01,,,\n{conf},Cd,0.2,mg/kg,0.01,,,\n"
          "BLK-1,Cd,0.05,mg/kg,0.01,blank,,\n")


@dataclass
class World:
    scene: Scene
    official: Console
    lab: Console
    certificates: list[str]
    qc_import: int
    run_id: int
    allowed: tuple[str, ...]
    extra: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def world(app, client, county, make_account) -> World:
    importer, reviewer, sampler = make_account("official"), make_account("official"), make_account("sampler")
    lab_account = make_account("lab")
    scene = build_scene(client, county, importer.headers, sampler.username)
    evidence = add_evidence(app, client, county, scene)  # photos, an 80 m fix, no depths, a clock text
    official = Console(app)
    assert official.login(reviewer.username, reviewer.password).status_code == 303
    official.get(f"/console/parcel/{evidence.parcel}")  # sent back, with a note: the review row shows
    assert official.post(f"/console/samples/{evidence.photo_sample_id}/send-back",
                         {"note": "重新定位 retake the point", "confirmed": "1"}).status_code == 303
    lab = Console(app)
    assert lab.login(lab_account.username, lab_account.password).status_code == 303
    csv = QC_CSV.format(flag=scene.flagged_sample, conf=scene.conflict_sample).encode()
    resp = client.post("/api/v1/lab/imports", headers=lab_account.headers, content_type="multipart/form-data",
                       data={"file": (io.BytesIO(csv), "qc-batch.csv")})
    assert resp.status_code == 201, resp.get_json()
    qc_import = resp.get_json()["import_id"]
    approve_all(official, scene)
    official.get("/console/grading")
    run = official.post("/console/grading/runs", {"scope_type": "county", "code": scene.county})
    run_id = int(run.headers["Location"].rsplit("/", 1)[1])
    codes = []
    for n in range(3):  # the first is superseded by the second, the second revoked, the third valid
        official.get("/console/certificates")
        issued = official.post("/console/certificates", {"subject_type": "parcel", "code": scene.clean_parcel,
                                                         "confirmed": "1"})
        assert issued.status_code == 303, text_of(issued)[:2000]
        codes.append(issued.headers["Location"].rsplit("/", 1)[1])
        if n == 1:
            official.get(f"/console/certificates/{codes[-1]}")
            assert official.post(f"/console/certificates/{codes[-1]}/revoke",
                                 {"reason": "复检不合格", "confirmed": "1"}).status_code == 303
    official.get(f"/console/certificates/{codes[2]}")  # serial labels for the valid one, and a land label
    from tests.api.test_label_quota import confirm_key

    confirm = official.get("/console/label-sheets/new", query_string={"codes": codes[2], "serials": "1"})
    made = official.post("/console/label-sheets", {"codes": codes[2], "serials": "1", "template": "a4_3x7",
                                                   "start_slot": "0", "idempotency_key": confirm_key(text_of(confirm))})
    assert made.status_code == 303, text_of(made)[:2000]
    land = client.post("/api/v1/land-labels", json={"subject_type": "parcel", "code": scene.clean_parcel},
                       headers=importer.headers)
    assert land.status_code == 201, land.get_json()
    from tests.api.test_label_serials import printed_serials

    serial = printed_serials(app, codes[2])[0]
    extra = {"land": land.get_json()["code"], "serial": f"{codes[2]}/{serial}",
             "sheet": made.headers["Location"].split("/console/", 1)[1],
             "evidence_parcel": evidence.parcel}
    codes_extra = (extra["land"], serial)
    allowed = (scene.county, scene.village, scene.clean_parcel, scene.other_parcel, scene.clean_sample,
               scene.conflict_sample, scene.held_sample, scene.flagged_sample, scene.held_bag, scene.device_id,
               importer.username, reviewer.username, sampler.username, lab_account.username, "qc-batch.csv",
               "results.csv", "BLK-1", "NO-SUCH-PARCEL", "复检不合格", *codes, *codes_extra, evidence.parcel,
               evidence.photo_sample, "Phone", "重新定位 retake the point", "yesterday noon")
    return World(scene, official, lab, codes, qc_import, run_id, allowed, extra)


def official_pages(app, w: World) -> list[str]:
    from sqlalchemy import select

    from fieldsvc.extensions import db
    from fieldsvc.places.models import FarmPark

    with app.app_context():
        park = db.session.scalar(select(FarmPark.code).limit(1))
    s = w.scene
    return [f"/console/county/{s.county}", f"/console/county/{s.county}?color=sampling",
            f"/console/village/{s.village}", f"/console/farm-park/{park}", f"/console/parcel/{s.clean_parcel}",
            f"/console/parcel/{s.other_parcel}", f"/console/parcel/{w.extra['evidence_parcel']}",
            "/console/queues", f"/console/conflicts/{s.conflict_id}",
            "/console/review", f"/console/review?import={w.qc_import}", "/console/lab",
            f"/console/lab/imports/{w.qc_import}", "/console/grading", f"/console/grading/runs/{w.run_id}",
            "/console/certificates", *[f"/console/certificates/{c}" for c in w.certificates], "/console/devices",
            f"/console/devices/{s.device_id}", f"/console/audit/parcel/{s.clean_parcel}",
            f"/console/audit/sample/{s.clean_sample_id}", f"/console/audit/device/{s.device_id}",
            f"/console/audit/lab_result/{s.result_ids[0]}", f"/console/audit/sync_conflict/{s.conflict_id}",
            f"/console/audit/region/{s.village}", f"/console/audit/certificate/{w.certificates[0]}",
            f"/console/audit/grading_run/{w.run_id}", "/console/no-such-page",
            f"/console/{w.extra['sheet']}", f"/console/label-sheets/new?codes={w.certificates[2]}&serials=1",
            f"/console/label-sheets/new?codes={w.certificates[2]}&serials=1000"]


def scan(resp, lang: str, allowed: tuple[str, ...], where: str) -> list[str]:
    return [f"{where} [{lang}]: {hit}" for hit in raw_codes(visible_text(text_of(resp)), lang, allowed)]


def test_no_raw_code_on_any_console_or_public_page(app, client, world):
    w = world
    problems: list[str] = []
    pages = official_pages(app, w)
    posts = _confirm_posts(w)
    for lang in ("zh", "en"):
        w.official.get(f"/console/queues?lang={lang}")
        w.lab.get(f"/console/lab?lang={lang}")
        for path in pages:
            resp = w.official.get(path)
            assert resp.status_code in (200, 404), (path, resp.status_code)
            problems += scan(resp, lang, w.allowed, path)
        for path in ("/console/lab", f"/console/lab/imports/{w.qc_import}"):
            problems += scan(w.lab.get(path), lang, w.allowed, "lab " + path)
        # the pages a POST renders: the dry run, a bulk confirmation, each action's confirmation, an error
        csv = QC_CSV.format(flag=w.scene.flagged_sample, conf="NO-SUCH-BAG").encode() + b"X-1,Zz,abc,mg/kg,,,,\n"
        check = w.lab.post("/console/lab/check", {"file": (io.BytesIO(csv), "qc-batch.csv")},
                           content_type="multipart/form-data")
        problems += scan(check, lang, (*w.allowed, "NO-SUCH-BAG", "X-1", "Zz", "abc"), "lab check")
        w.official.get(f"/console/review?import={w.qc_import}")
        confirm = w.official.post("/console/review/confirm", {"action": "reject", "scope": "import",
                                                              "import_id": str(w.qc_import), "reason": "x"})
        problems += scan(confirm, lang, w.allowed, "review confirm")
        for path, body in posts.items():
            w.official.get("/console/queues")
            resp = w.official.post(path, body)
            if resp.status_code != 200:
                problems.append(f"confirm {path}: {resp.status_code}, not a confirmation page")
            problems += scan(resp, lang, w.allowed, "confirm " + path)
        w.official.get("/console/certificates")
        refused = w.official.post("/console/certificates", {"subject_type": "parcel", "code": w.scene.other_parcel})
        assert refused.status_code == 409
        problems += scan(refused, lang, w.allowed, "refused issue")
        for code in w.certificates + ["ZZZZ-ZZZZ-ZZZZ", w.extra["land"], w.extra["serial"]]:
            public = client.get(f"/C/{code}?lang={lang}")
            assert public.status_code == (404 if code.startswith("ZZZZ") else 200), (code, public.status_code)
            problems += scan(public, lang, w.allowed, f"public /C/{code}")
    assert not problems, "\n".join(problems)


def _confirm_posts(w: World) -> dict[str, dict[str, str]]:
    page = text_of(w.official.get("/console/queues"))
    sample_id = re.search(r'/console/samples/([0-9a-f-]{36})/dismiss', page).group(1)
    held_result = re.search(r'/console/results/(\d+)/link', page).group(1)
    flagged = re.search(r'/console/samples/([0-9a-f-]{36})/accept', page).group(1)
    return {f"/console/samples/{sample_id}/dismiss": {},
            f"/console/samples/{flagged}/accept": {"note": "复核无误"},
            f"/console/samples/{flagged}/send-back": {"note": "复核无误"},
            f"/console/results/{held_result}/reject": {"reason": "bag never arrived"},
            f"/console/certificates/{w.certificates[2]}/revoke": {"reason": "复检不合格"},
            "/console/certificates": {"subject_type": "parcel", "code": w.scene.clean_parcel},
            f"/console/devices/{w.scene.device_id}/revoke": {}}


# --- confirmations: without the second, confirmed POST nothing changes -------------------------------

def test_irreversible_actions_ask_first_and_change_nothing_until_confirmed(app, client, county, make_account):
    importer, reviewer, sampler = make_account("official"), make_account("official"), make_account("sampler")
    scene = build_scene(client, county, importer.headers, sampler.username)
    console = Console(app)
    assert console.login(reviewer.username, reviewer.password).status_code == 303
    api = importer.headers
    posts = _confirm_posts(World(scene, console, console, ["-", "-", "-"], 0, 0, ()))
    sample_id = next(p for p in posts if "/samples/" in p).split("/")[3]
    held_result = next(p for p in posts if "/results/" in p).split("/")[3]

    # dismiss a held sample
    console.get("/console/queues")
    asked = console.post(f"/console/samples/{sample_id}/dismiss")
    assert asked.status_code == 200 and scene.held_sample in text_of(asked) and 'name="confirmed"' in text_of(asked)
    assert client.get(f"/api/v1/samples/{sample_id}", headers=api).get_json()["deleted"] is False
    assert console.post(f"/console/samples/{sample_id}/dismiss", {"confirmed": "1"}).status_code == 303
    assert client.get(f"/api/v1/samples/{sample_id}", headers=api).get_json()["deleted"] is True

    # reject (dismiss) a held result: the reason is carried to the confirmation
    console.get("/console/queues")
    asked = console.post(f"/console/results/{held_result}/reject", {"reason": "bag never arrived"})
    assert asked.status_code == 200 and 'value="bag never arrived"' in text_of(asked)
    assert client.get(f"/api/v1/lab/results/{held_result}", headers=api).get_json()["status"] == "pending"
    assert console.post(f"/console/results/{held_result}/reject", {"reason": "bag never arrived", "confirmed": "0"}
                        ).status_code == 200  # anything but "1" asks again
    assert console.post(f"/console/results/{held_result}/reject", {"reason": "bag never arrived", "confirmed": "1"}
                        ).status_code == 303
    assert client.get(f"/api/v1/lab/results/{held_result}", headers=api).get_json()["status"] == "rejected"

    # issue, print labels, issue again: the confirmation names the certificate and its printed labels
    approve_all(console, scene)
    console.get("/console/grading")
    console.post("/console/grading/runs", {"scope_type": "county", "code": scene.county})
    console.get("/console/certificates")
    first = console.post("/console/certificates", {"subject_type": "parcel", "code": scene.clean_parcel})
    assert first.status_code == 303  # nothing to supersede: no question
    code = first.headers["Location"].rsplit("/", 1)[1]
    from tests.api.test_label_quota import confirm_key

    confirm = console.get("/console/label-sheets/new", query_string={"codes": code, "serials": "2"})
    sheet = {"codes": code, "serials": "2", "template": "a4_3x7", "start_slot": "0",
             "idempotency_key": confirm_key(text_of(confirm))}
    assert console.post("/console/label-sheets", sheet).status_code == 303
    console.get("/console/certificates")
    asked = console.post("/console/certificates", {"subject_type": "parcel", "code": scene.clean_parcel})
    page = text_of(asked)
    from fieldsvc.certificates.codes import format_code

    printed = client.get(f"/api/v1/certificates/{code}", headers=api).get_json()["labels"]["printed"]
    assert asked.status_code == 200 and format_code(code) in page and printed > 0
    assert re.search(rf"{printed}\D[^<]*2", page), "the confirmation counts the printed and serial labels"
    listed = client.get("/api/v1/certificates", headers=api).get_json()["items"]
    assert [c["code"] for c in listed] == [code] and listed[0]["status"] == "valid"
    again = console.post("/console/certificates", {"subject_type": "parcel", "code": scene.clean_parcel,
                                                   "confirmed": "1"})
    assert again.status_code == 303
    assert client.get(f"/api/v1/certificates/{code}", headers=api).get_json()["status"] == "superseded"
    new = again.headers["Location"].rsplit("/", 1)[1]

    # revoke: asked with the reason, revoked only when confirmed
    console.get(f"/console/certificates/{new}")
    asked = console.post(f"/console/certificates/{new}/revoke", {"reason": "复检不合格"})
    assert asked.status_code == 200 and format_code(new) in text_of(asked)
    assert client.get(f"/api/v1/certificates/{new}", headers=api).get_json()["status"] == "valid"
    assert console.post(f"/console/certificates/{new}/revoke", {"reason": "复检不合格", "confirmed": "1"}
                        ).status_code == 303
    assert client.get(f"/api/v1/certificates/{new}", headers=api).get_json()["status"] == "revoked"

    # revoke a device
    console.get(f"/console/devices/{scene.device_id}")
    assert console.post(f"/console/devices/{scene.device_id}/revoke").status_code == 200
    assert client.get(f"/api/v1/devices/{scene.device_id}", headers=api).get_json()["revoked_at"] is None
    assert console.post(f"/console/devices/{scene.device_id}/revoke", {"confirmed": "1"}).status_code == 303
    assert client.get(f"/api/v1/devices/{scene.device_id}", headers=api).get_json()["revoked_at"] is not None

    # the bulk review: the apply step refuses without confirmed=1 (its confirmation page already existed)
    console.get("/console/review")
    assert console.post("/console/review/apply", {"action": "approve", "import_id": "1", "ids": "1"}
                        ).status_code == 422


def test_grading_form_preselects_the_default_pack_by_its_standards_name(app, county, make_account):
    from fieldsvc.grading.rules import DEFAULT_PACK

    account = make_account("official")
    console = Console(app)
    console.login(account.username, account.password)
    page = text_of(console.get("/console/grading?lang=en"))
    selected = re.findall(r'<option value="([^"]+)" selected>([^<]+)<', page)
    assert [v for v, _ in selected] == [DEFAULT_PACK]
    assert DEFAULT_PACK not in selected[0][1] and "default" in selected[0][1]
    options = re.findall(r'<select name="rule_pack">(.*?)</select>', page, re.S)[0]
    assert "_" not in re.sub(r'value="[^"]+"', "", options)  # every pack by its name, none by its code
