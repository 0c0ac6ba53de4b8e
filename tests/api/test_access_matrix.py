"""The access matrix (issue 13): every route in the URL map × every kind of caller, on both engines.

County A holds one of everything (a parcel, its village and farm park, a sample with a photo, a lab
import and its approved result, a conflict, a grading run, a certificate, a device). Callers:

- inside: admin, official of A, province-wide official (no county), lab of A, the device assigned
  the target parcel's village;
- outside: official of B, lab of B, a sampler of A through its password (its only device is
  assigned another village), that device itself, and nobody (no credentials).

Every caller outside must not learn anything of A: a read answers 404 (403 when its role may not
call the route at all, 401 anonymous), a write 403 or 404, a list never names A's things. Every
caller inside reads the same things with 200 and finds them in its lists, so the targets are real
and a 404 above means "absent for you", not "wrong URL". A route missing from ``ROUTES`` fails the
test: a new endpoint has to say how it is scoped.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from fieldsvc.extensions import db
from fieldsvc.http import PUBLIC
from fieldsvc.openrosa.xform import FORM_ID
from tests.api.test_certificates_api import FakeQualification
from tests.api.test_lab_imports import LONG_HEADER, upload
from tests.api.test_sync_push import data_for, push, record, results

B = "360130"  # another county (its official and lab are real accounts; it has no places)

# How each route is scoped. kind:
#   read   — GET one of A's things by its key: outside → 404 (403 by role, 401 anonymous)
#   list   — GET a list: outside → never names A's things (``needle`` keys of ``World.ids``)
#   write  — changes one of A's things: outside → 403 or 404; ``body`` names the target in the
#            body, where "unknown" is a 422 on that field (the same "absent for you")
#   push   — a sampler's write that answers per record (sync push, OpenRosa): refused, nothing stored
#   public — open to anyone by design (README: Security); own — the caller's own account/session;
#   global — the same for every caller, no county data (rule packs, reference materials, forms);
#   import — a lab import naming A's bag codes: held for B, A untouched (test_access_lab.py).
ROUTES: dict[str, dict[str, Any]] = {
    # API: auth, certificates
    "auth.me": {"kind": "own"},
    "auth.token": {"kind": "public"},
    "certificates.certificate_pdf": {"kind": "read", "url": "/api/v1/certificates/{certificate}.pdf"},
    "certificates.get_certificate": {"kind": "read", "url": "/api/v1/certificates/{certificate}"},
    "certificates.labels": {"kind": "read", "url": "/api/v1/labels.pdf?codes={certificate}", "body": "codes"},
    "certificates.list_certificates": {"kind": "list", "url": "/api/v1/certificates", "needle": ["certificate"]},
    "certificates.issue": {"kind": "write", "method": "POST", "url": "/api/v1/certificates", "body": "code",
                           "json": {"subject_type": "parcel", "code": "{parcel}"}},
    "certificates.revoke": {"kind": "write", "method": "POST", "url": "/api/v1/certificates/{certificate}/revoke",
                            "json": {"reason": "matrix test"}},
    "certificates.issue_land_label": {"kind": "write", "method": "POST", "url": "/api/v1/land-labels", "body": "code",
                                      "json": {"subject_type": "parcel", "code": "{parcel}"}},
    "certificates.label_serials": {"kind": "list", "url": "/api/v1/label-serials", "needle": []},
    "certificates.create_label_sheet": {"kind": "write", "method": "POST", "url": "/api/v1/label-sheets",
                                         "body": "codes", "json": {"codes": ["{certificate}"], "serials": 1}},
    "certificates.label_sheet": {"kind": "read", "url": "/api/v1/label-sheets/{label_sheet}"},
    "certificates.label_sheet_pdf": {"kind": "read", "url": "/api/v1/label-sheets/{label_sheet}.pdf"},
    "certificates_public.page": {"kind": "public"},
    "certificates_public.serial_page": {"kind": "public"},
    "verify.verify_serial": {"kind": "public"},
    "verify.issuer_seal": {"kind": "public"},
    "verify.public_keys": {"kind": "public"},
    "verify.verify_code": {"kind": "public"},
    "verify.verify_token": {"kind": "public"},
    # conflicts
    "conflicts.list_conflicts": {"kind": "list", "url": "/api/v1/conflicts", "needle": ["conflict_record"]},
    "conflicts.get_conflict": {"kind": "read", "url": "/api/v1/conflicts/{conflict}"},
    "conflicts.resolve": {"kind": "write", "method": "POST", "url": "/api/v1/conflicts/{conflict}/resolve",
                          "json": {"resolution": "keep_server"}},
    # devices
    "devices.list_devices": {"kind": "list", "url": "/api/v1/devices", "needle": ["device"]},
    "devices.get_device": {"kind": "read", "url": "/api/v1/devices/{device}"},
    "devices.change": {"kind": "write", "method": "PATCH", "url": "/api/v1/devices/{device}",
                       "json": {"name": "taken"}},
    "devices.revoke": {"kind": "write", "method": "POST", "url": "/api/v1/devices/{device}/revoke"},
    "devices.get_plan": {"kind": "read", "url": "/api/v1/devices/{device}/plan"},
    "devices.push_plan": {"kind": "write", "method": "POST", "url": "/api/v1/devices/{device}/plan",
                          "json": {"parcels": ["{parcel}"]}},
    "devices.register": {"kind": "write", "method": "POST", "url": "/api/v1/devices", "body": "user",
                         "json": {"name": "mine", "user": "{device_owner}", "villages": ["{village}"]}},
    # grading
    "grading.create_run": {"kind": "write", "method": "POST", "url": "/api/v1/grading/runs", "body": "scope",
                           "json": {"scope": {"county": "{county}"}}},
    "grading.get_run": {"kind": "read", "url": "/api/v1/grading/runs/{run}"},
    "grading.get_grade": {"kind": "read", "url": "/api/v1/grades/parcel/{parcel}"},
    "grading.grade_history": {"kind": "read", "url": "/api/v1/grades/parcel/{parcel}/history"},
    "grading.get_report": {"kind": "read", "url": "/api/v1/reports/village/{village}.csv"},
    "grading.list_rule_packs": {"kind": "global"},
    "grading.get_element_map": {"kind": "read", "url": "/api/v1/maps/{county}/Cd.json"},
    "grading.sampling_next": {"kind": "list", "url": "/api/v1/sampling/next?county={county}", "needle": []},
    # lab
    "lab.create_import": {"kind": "import"},
    "lab.list_imports": {"kind": "list", "url": "/api/v1/lab/imports", "needle": ["lab_import", "lab_file"]},
    "lab.get_import": {"kind": "read", "url": "/api/v1/lab/imports/{lab_import}"},
    "lab.list_results": {"kind": "list", "url": "/api/v1/lab/results", "needle": ["sample"]},
    "lab.get_result": {"kind": "read", "url": "/api/v1/lab/results/{result}"},
    "lab.approve": {"kind": "write", "method": "POST", "url": "/api/v1/lab/results/{result}/approve"},
    "lab.reject": {"kind": "write", "method": "POST", "url": "/api/v1/lab/results/{result}/reject",
                   "json": {"reason": "matrix test"}},
    "lab.approve_many": {"kind": "bulk", "method": "POST", "url": "/api/v1/lab/results/approve",
                         "json": {"ids": ["{result}"]}},
    "lab.reject_many": {"kind": "bulk", "method": "POST", "url": "/api/v1/lab/results/reject",
                        "json": {"ids": ["{result}"], "reason": "matrix test"}},
    "lab.create_reference_material": {"kind": "global"},
    "lab.list_reference_materials": {"kind": "global"},
    # exports (streamed files of the same rows as the lists)
    "exports.export": {"kind": "list", "url": "/api/v1/exports/samples.csv", "needle": ["sample_code"]},
    "console.export_file": {"kind": "list", "url": "/console/exports/samples.csv", "needle": ["sample_code"]},
    "console.export_for_list": {"kind": "list", "url": "/console/export/samples.csv", "needle": ["sample_code"]},
    "console.export_job": {"kind": "read", "url": "/console/export-jobs/{export_job}"},
    "console.export_job_file": {"kind": "read", "url": "/console/export-jobs/{export_job}/file"},
    "console.search_view": {"kind": "list", "url": "/console/search?q={township}", "needle": ["village"],
                            "follow": True},
    "console.list_view": {"kind": "list", "url": "/console/lists/samples?size=200", "needle": ["sample_code"]},
    # ODK form extensions: the province's form definition, no county data
    "forms.current_extension": {"kind": "global"},
    "forms.upload_extension": {"kind": "global"},
    # media: reads are scoped; a PUT must carry the very bytes of the hash (content-addressed)
    "media.get_media": {"kind": "read", "url": "/api/v1/media/{media}"},
    "media.put_chunk": {"kind": "global"},
    # OpenRosa
    "openrosa.form_list": {"kind": "global"},
    "openrosa.form_xml": {"kind": "global"},
    "openrosa.submission_head": {"kind": "global"},
    "openrosa.submit": {"kind": "push"},
    "openrosa.form_manifest": {"kind": "global"},  # names parcels.csv; its content is form_media's, checked
    "openrosa.form_media": {"kind": "list", "url": "/forms/{form_id}/media/parcels.csv", "needle": ["parcel"]},
    # ops, field app, static
    "ops.docs": {"kind": "public"},
    "ops.root": {"kind": "public"},
    "ops.favicon": {"kind": "public"},
    "ops.docs_static": {"kind": "public"},
    "ops.healthz": {"kind": "public"},
    "ops.metrics": {"kind": "public"},
    "ops.openapi": {"kind": "public"},
    "field.app_config": {"kind": "public"},
    "field.asset": {"kind": "public"},
    "field.index": {"kind": "public"},
    "field.service_worker": {"kind": "public"},
    "static": {"kind": "public"},
    # places
    "places.list_regions": {"kind": "list", "url": "/api/v1/regions?limit=1000", "needle": ["village"]},
    "places.get_region": {"kind": "read", "url": "/api/v1/regions/{village}"},
    "places.create_region": {"kind": "write", "method": "POST", "url": "/api/v1/regions", "body": "parent",
                             "json": {"level": "village", "code": "{village_new}", "parent": "{township}",
                                      "name": "x"}},
    "places.list_farm_parks": {"kind": "list", "url": "/api/v1/farm-parks", "needle": ["farm_park"]},
    "places.get_farm_park": {"kind": "read", "url": "/api/v1/farm-parks/{farm_park}"},
    "places.create_farm_park": {"kind": "write", "method": "POST", "url": "/api/v1/farm-parks", "body": "county",
                                "json": {"code": "FP-NEW", "name": "x", "county": "{county}"}},
    "places.list_parcels": {"kind": "list", "url": "/api/v1/parcels?limit=1000", "needle": ["parcel"]},
    "places.get_parcel": {"kind": "read", "url": "/api/v1/parcels/{parcel}"},
    "places.parcel_versions": {"kind": "read", "url": "/api/v1/parcels/{parcel}/versions"},
    "places.update_parcel": {"kind": "write", "method": "PATCH", "url": "/api/v1/parcels/{parcel}",
                             "json": {"crop": "taken"}},
    "places.delete_parcel": {"kind": "write", "method": "DELETE", "url": "/api/v1/parcels/{parcel}"},
    "places.import_parcels": {"kind": "write", "method": "POST", "url": "/api/v1/parcels", "body": "features",
                              "json": "{new_parcels}"},
    # samples
    "samples.list_samples": {"kind": "list", "url": "/api/v1/samples?limit=1000", "needle": ["sample"]},
    "samples.get_sample": {"kind": "read", "url": "/api/v1/samples/{sample}"},
    "samples.sample_versions": {"kind": "read", "url": "/api/v1/samples/{sample}/versions"},
    "samples.move_to_parcel": {"kind": "write", "method": "POST", "url": "/api/v1/samples/{sample}/parcel",
                               "json": {"parcel": "{parcel}"}},
    # sync
    "sync.config": {"kind": "own"},
    "sync.pull": {"kind": "list", "url": "/api/v1/sync/pull?limit=1000", "needle": ["parcel", "sample"]},
    "sync.package": {"kind": "list", "url": "/api/v1/sync/package", "needle": ["parcel", "sample"]},
    "sync.push": {"kind": "push"},
    # console (session cookie; every POST carries the session's CSRF token)
    "console.login": {"kind": "public"},
    "console.logout": {"kind": "own"},
    "console.index": {"kind": "list", "url": "/console/", "needle": ["county"], "follow": True},
    "console.county": {"kind": "read", "url": "/console/county/{county}"},
    "console.element_map": {"kind": "read", "url": "/console/maps/{county}/Cd.json"},
    "console.map_find": {"kind": "list", "url": "/console/map/find?q={parcel}", "needle": ["parcel"]},
    "console.map_surface": {"kind": "read", "url": "/console/map/surface/{county}/Cd.json"},
    # map tiles: z0 holds the whole world; samples are points (never too small to draw), bag codes in the tile
    "tiles.tile": {"kind": "list", "url": "/tiles/samples/0/0/0.mvt", "needle": ["sample_code"]},
    "maps.asset": {"kind": "public"},  # the map library and script files
    "console.village": {"kind": "read", "url": "/console/village/{village}"},
    "console.farm_park": {"kind": "read", "url": "/console/farm-park/{farm_park}"},
    "console.parcel": {"kind": "read", "url": "/console/parcel/{parcel}"},
    "console.audit": {"kind": "read", "url": "/console/audit/sample/{sample}"},
    "console.queues": {"kind": "list", "url": "/console/queues", "needle": ["sample_code", "result_code"]},
    "console.conflict_page": {"kind": "read", "url": "/console/conflicts/{conflict}"},
    "console.grading_page": {"kind": "read", "url": "/console/grading?county={county}"},
    "console.run_page": {"kind": "read", "url": "/console/grading/runs/{run}"},
    "console.certificates": {"kind": "read", "url": "/console/certificates?county={county}"},
    "console.certificate": {"kind": "read", "url": "/console/certificates/{certificate}"},
    "console.certificate_pdf": {"kind": "read", "url": "/console/certificates/{certificate}.pdf"},
    "console.labels": {"kind": "read", "url": "/console/labels.pdf?codes={certificate}", "body": "codes"},
    "console.label_sheet_confirm": {"kind": "read", "url": "/console/label-sheets/new?codes={certificate}&serials=1",
                                    "body": "codes"},
    "console.label_sheet": {"kind": "read", "url": "/console/label-sheets/{label_sheet}"},
    "console.label_sheet_pdf": {"kind": "read", "url": "/console/label-sheets/{label_sheet}.pdf"},
    "console.devices_page": {"kind": "read", "url": "/console/devices?county={county}"},
    "console.device": {"kind": "read", "url": "/console/devices/{device}"},
    "console.lab_home": {"kind": "list", "url": "/console/lab", "needle": ["lab_file"]},
    "console.lab_import": {"kind": "read", "url": "/console/lab/imports/{lab_import}"},
    "console.lab_check": {"kind": "import"},
    "console.lab_commit": {"kind": "import"},
    "console.review": {"kind": "read", "url": "/console/review?import={lab_import}"},
    "console.review_confirm": {"kind": "write", "method": "POST", "url": "/console/review/confirm",
                               "form": {"action": "reject", "import_id": "{lab_import}", "ids": "{result}",
                                        "reason": "matrix test"}},
    "console.review_apply": {"kind": "bulk", "method": "POST", "url": "/console/review/apply",
                             "form": {"action": "reject", "import_id": "{lab_import}", "ids": "{result}",
                                      "reason": "matrix test", "confirmed": "1"}},
    "console.approve_result": {"kind": "write", "method": "POST", "url": "/console/results/{result}/approve"},
    "console.reject_result": {"kind": "write", "method": "POST", "url": "/console/results/{result}/reject",
                              "form": {"reason": "matrix test", "confirmed": "1"}},
    "console.link_result": {"kind": "write", "method": "POST", "url": "/console/results/{result}/link"},
    "console.link_sample": {"kind": "write", "method": "POST", "url": "/console/samples/{sample}/link"},
    "console.move_sample": {"kind": "write", "method": "POST", "url": "/console/samples/{sample}/parcel",
                            "form": {"parcel": "{parcel}"}},
    "console.dismiss_sample": {"kind": "write", "method": "POST", "url": "/console/samples/{sample}/dismiss",
                               "form": {"confirmed": "1"}},
    "console.media": {"kind": "read", "url": "/console/media/{media}"},
    "console.accept_sample_flags": {"kind": "write", "method": "POST", "url": "/console/samples/{sample}/accept",
                                    "form": {"note": "matrix test", "confirmed": "1"}},
    "console.send_back_sample": {"kind": "write", "method": "POST", "url": "/console/samples/{sample}/send-back",
                                 "form": {"note": "matrix test", "confirmed": "1"}},
    "console.resolve_conflict": {"kind": "write", "method": "POST", "url": "/console/conflicts/{conflict}/resolve",
                                 "form": {"resolution": "keep_server"}},
    "console.run_grading": {"kind": "write", "method": "POST", "url": "/console/grading/runs", "body": "scope",
                            "form": {"scope_type": "county", "code": "{county}"}},
    "console.issue_certificate": {"kind": "write", "method": "POST", "url": "/console/certificates", "body": "code",
                                  "form": {"subject_type": "parcel", "code": "{parcel}", "confirmed": "1"}},
    "console.create_label_sheet": {"kind": "write", "method": "POST", "url": "/console/label-sheets", "body": "codes",
                                   "form": {"codes": "{certificate}", "serials": "1"}},
    "console.revoke_certificate": {"kind": "write", "method": "POST",
                                   "url": "/console/certificates/{certificate}/revoke",
                                   "form": {"reason": "x y z", "confirmed": "1"}},
    "console.register_device": {"kind": "write", "method": "POST", "url": "/console/devices", "body": "user",
                                "form": {"name": "mine", "user": "{device_owner}", "villages": "{village}"}},
    "console.assign_device": {"kind": "write", "method": "POST", "url": "/console/devices/{device}/assign",
                              "form": {"villages": "{village}"}},
    "console.sampling_next": {"kind": "read", "url": "/console/sampling-next?county={county}"},
    "console.plan_confirm": {"kind": "write", "method": "POST", "url": "/console/sampling-next/confirm",
                             "form": {"device": "{device}", "parcels": "{parcel}"}},
    "console.push_plan": {"kind": "write", "method": "POST", "url": "/console/devices/{device}/plan",
                          "form": {"parcels": "{parcel}", "confirmed": "1"}},
    "console.revoke_device": {"kind": "write", "method": "POST", "url": "/console/devices/{device}/revoke",
                             "form": {"confirmed": "1"}},
}

INSIDE = ("admin", "official_a", "official_province", "lab_a", "device_in")
OUTSIDE = ("official_b", "lab_b", "sampler_password", "device_out", "anonymous")


@dataclass
class World:
    ids: dict[str, Any]
    headers: dict[str, dict[str, str]]
    sessions: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)


def _fill(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def build_world(app, client, make_account, county, monkeypatch) -> World:
    """County A's things, made through the API (the conflict row directly), and the callers."""
    from fieldsvc.auth.principal import SYSTEM
    from fieldsvc.certificates import services as certificates
    from fieldsvc.places.services import create_region

    with app.app_context():  # (the county fixture loaded A's places)
        create_region({"level": "county", "code": B, "name": "B county"}, SYSTEM)
        db.session.commit()
    a = county.county
    parcels = county.parcels
    with_park = [f for f in parcels if f["properties"].get("farm_park")]
    target = with_park[0]["properties"]
    village = target["village"]
    # the other device's village shares no farm park with the target's (a park spans villages)
    parks_of: dict[str, set] = {}
    for f in parcels:
        parks_of.setdefault(f["properties"]["village"], set()).add(f["properties"].get("farm_park"))
    other_village = next(v for v, parks in sorted(parks_of.items()) if target["farm_park"] not in parks)
    official_a = make_account("official", county=a)
    accounts = {
        "admin": make_account("admin"), "official_a": official_a, "official_b": make_account("official", county=B),
        "official_province": make_account("official"), "lab_a": make_account("lab", county=a),
        "lab_b": make_account("lab", county=B),
    }
    owner_in, owner_out = make_account("sampler", county=a), make_account("sampler", county=a)

    def device(owner, village_code):
        resp = client.post("/api/v1/devices", json={"name": "Phone", "user": owner.username,
                                                    "villages": [village_code], "parcels": []},
                           headers=official_a.headers)
        assert resp.status_code == 201, resp.get_json()
        body = resp.get_json()
        return {"Authorization": f"Bearer {body['token']}"}, body["device_id"]

    device_in, device_id = device(owner_in, village)
    device_out, _ = device(owner_out, other_village)
    headers = {name: acc.headers for name, acc in accounts.items()}
    headers.update(device_in=device_in, device_out=device_out, sampler_password=owner_out.headers, anonymous={})
    roles = {name: acc.role for name, acc in accounts.items()}
    roles.update(device_in="sampler", device_out="sampler", sampler_password="sampler", anonymous="-")

    # a sample with a photo on the target parcel, from the device assigned its village
    photo = os.urandom(3000)
    sha = hashlib.sha256(photo).hexdigest()
    sid = str(uuid.uuid4())
    code = "MATRIX-0001"
    data = data_for(with_park[0], code, media=[{"name": "p.jpg", "sha256": sha, "bytes": len(photo),
                                                 "mime": "image/jpeg"}])
    assert results(push(client, device_in, [record(data, sid)]))[0]["status"] == "applied"
    resp = client.put(f"/api/v1/media/{sha}", data=photo, headers={
        **device_in, "Content-Range": f"bytes 0-{len(photo) - 1}/{len(photo)}",
        "Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.get_json()
    # the lab's results, one approved by an official of A
    csv = LONG_HEADER + "".join(f"{code},{k},{v},mg/kg,,\n" for k, v in
                                {"Cd": "0.10", "Hg": "0.10", "As": "10", "Pb": "20", "Cr": "50", "Cu": "20"}.items())
    resp = upload(client, accounts["lab_a"], (csv + f"{code},pH,6.0,,,\n").encode(), filename="matrix-lab-a.csv")
    assert resp.status_code == 201, resp.get_json()
    import_id = resp.get_json()["import_id"]
    listed = client.get("/api/v1/lab/results", query_string={"sample": sid}, headers=official_a.headers).get_json()
    result_id = listed["items"][0]["id"]
    assert client.post(f"/api/v1/lab/results/{result_id}/approve", headers=official_a.headers).status_code == 200
    run = client.post("/api/v1/grading/runs", json={"scope": {"village": village}}, headers=official_a.headers)
    assert run.status_code == 201, run.get_json()
    # a certificate for the parcel (qualification stood in: this test is about who sees it)
    monkeypatch.setattr(certificates, "qualification", lambda *a, **k: FakeQualification())
    cert = client.post("/api/v1/certificates", json={"subject_type": "parcel", "code": target["code"]},
                       headers=official_a.headers)
    assert cert.status_code == 201, cert.get_json()
    sheet = client.post("/api/v1/label-sheets", json={"codes": [cert.get_json()["code"]], "serials": 1},
                        headers=official_a.headers)
    assert sheet.status_code == 201, sheet.get_json()
    # an open conflict on the sample
    from fieldsvc.samples.models import SyncConflict

    with app.app_context():
        conflict = SyncConflict(record_id=sid, kind="edit", code=code, base_version=1, server_version=1,
                                server_body=data, incoming_body=data, incoming_hash="0" * 64, hard_fields=[],
                                soft_fields=[], county_code=a, created_by="device:test")
        db.session.add(conflict)
        db.session.commit()
        conflict_id = conflict.id
        # a finished background export of A's official (its file under the instance folder)
        from fieldsvc.exports import jobs as export_jobs
        from fieldsvc.exports.models import ExportJob

        job_file = export_jobs.folder(app.instance_path) / "matrix-job.csv"
        job_file.write_text(f"code\r\n{code}\r\n")
        from fieldsvc.auth.models import User

        owner = db.session.scalar(db.select(User).where(User.username == official_a.username))
        job = ExportJob(resource="samples", fmt="csv", lang="en", filters={}, user_id=owner.id,
                        requester=official_a.username, role="official", county_code=a, state="done",
                        rows_total=1, rows_done=1, path=str(job_file), size_bytes=job_file.stat().st_size)
        db.session.add(job)
        db.session.commit()
        export_job_id = job.id
    new_parcel = json.loads(json.dumps(with_park[0]))
    new_parcel["properties"] = {**new_parcel["properties"], "code": "NEW-PARCEL-1"}
    ids = {
        "county": a, "township": village[:9], "village": village, "village_new": village[:9] + "999",
        "farm_park": target["farm_park"], "parcel": target["code"], "sample": sid, "sample_code": code,
        "media": sha, "lab_import": import_id, "lab_file": "matrix-lab-a.csv", "result": result_id,
        "result_code": code,
        "run": run.get_json()["id"], "certificate": cert.get_json()["code"], "device": device_id,
        "label_sheet": sheet.get_json()["id"],
        "device_owner": owner_in.username, "conflict": conflict_id, "conflict_record": sid,
        "form_id": FORM_ID, "export_job": export_job_id,
        "new_parcels": {"type": "FeatureCollection", "features": [new_parcel]},
    }
    return World(ids, headers, roles=roles)


def console_client(app, world: World, name: str):
    """A browser of its own, signed in with the caller's token (as /console/login would store it)."""
    browser = app.test_client()
    token = world.headers[name].get("Authorization", " ").split(" ", 1)[1]
    with browser.session_transaction() as session:
        if token.strip():
            session["token"] = token
        session["csrf"] = "matrix-csrf"
    return browser


def call(app, client, world: World, name: str, spec: dict[str, Any]):
    resp = _call(app, client, world, name, spec)
    resp.get_data()  # buffered, so the file a send_file opened is closed now
    resp.close()
    return resp


def _call(app, client, world: World, name: str, spec: dict[str, Any]):
    url = _fill(spec["url"], world.ids)
    method = spec.get("method", "GET")
    if url.startswith("/console/"):
        browser = console_client(app, world, name)
        form = {k: _fill(v, world.ids) for k, v in spec.get("form", {}).items()}
        if method == "POST":
            form["csrf_token"] = "matrix-csrf"
        return browser.open(url, method=method, data=form if method == "POST" else None,
                            follow_redirects=spec.get("follow", False) and name != "anonymous")
    body = _fill(spec.get("json"), world.ids) if "json" in spec else None
    return client.open(url, method=method, json=body, headers=world.headers[name])


def allowed(app, endpoint: str, role: str) -> bool:
    roles = app.view_functions[endpoint].fieldsvc_roles
    return roles == PUBLIC or role in roles


def text(resp) -> str:
    if resp.mimetype in ("application/pdf", "application/vnd.sqlite3", "application/octet-stream",
                         "application/vnd.mapbox-vector-tile"):
        return resp.get_data().decode("latin-1")
    return resp.get_data(as_text=True)


def needles(world: World, spec: dict[str, Any]) -> list[str]:
    return [str(world.ids[k]) for k in spec["needle"]]


def world_unchanged(app, world: World) -> bool:
    from fieldsvc.lab.models import LabResult

    with app.app_context():
        result = db.session.get(LabResult, int(world.ids["result"]))
        return (result.status, result.approvals) == ("approved", 1)


def check_outside(app, client, world, endpoint, spec, name) -> str | None:
    role = world.roles[name]
    resp = call(app, client, world, name, spec)
    status, kind = resp.status_code, spec["kind"]
    console = spec["url"].startswith("/console/")
    if name == "anonymous":
        ok = status == 401 or (console and status in (302, 303) and "/console/login" in resp.headers["Location"])
        return None if ok else f"anonymous got {status}"
    if not allowed(app, endpoint, role):
        return None if status == 403 else f"role {role} not allowed but got {status}"
    if kind == "read":  # (codes named in the query, as for labels: "unknown" is a 422 on that field)
        fine = {404} | ({422} if spec.get("body") else set())
        return None if status in fine else f"read answered {status}"
    if kind == "write":
        fine = {403, 404} | ({422} if spec.get("body") else set())
        return None if status in fine else f"write answered {status}: {text(resp)[:300]}"
    if kind == "bulk":  # answers per id: another county's id is refused as not_found, nothing changes
        if status in (403, 404):
            return None
        if console:
            return None if status in (302, 303) and world_unchanged(app, world) else f"bulk answered {status}"
        codes = [i.get("code") for i in (resp.get_json() or {}).get("items", [])]
        return None if status == 200 and codes == ["not_found"] else f"bulk answered {status} {codes}"
    if kind == "list":
        if status in (403, 404):
            return None
        leaked = [n for n in needles(world, spec) if n in text(resp)]
        return f"list names {leaked}" if leaked or status != 200 else None
    return None


def check_inside(app, client, world, endpoint, spec, name) -> str | None:
    role = world.roles[name]
    if not allowed(app, endpoint, role):
        return None
    if name == "device_in" and spec["url"].startswith(("/api/v1/certificates", "/api/v1/grading/runs",
                                                        "/api/v1/labels", "/api/v1/reports", "/api/v1/maps")):
        return None  # county records and area reports are not read through an assignment (README)
    resp = call(app, client, world, name, spec)
    if spec["kind"] == "read":
        return None if resp.status_code == 200 else f"inside read answered {resp.status_code}: {text(resp)[:200]}"
    if resp.status_code != 200:
        return f"inside list answered {resp.status_code}"
    missing = [n for n in needles(world, spec) if n not in text(resp)]
    return f"inside list misses {missing}" if missing else None


def test_every_route_is_in_the_matrix(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert sorted(endpoints - set(ROUTES)) == [] and sorted(set(ROUTES) - endpoints) == []
    for endpoint, spec in ROUTES.items():
        roles = getattr(app.view_functions[endpoint], "fieldsvc_roles", PUBLIC)
        if spec["kind"] == "public":
            assert roles == PUBLIC, endpoint
        else:
            assert roles != PUBLIC, endpoint


def test_no_route_leaks_another_countys_things(app, client, make_account, county, monkeypatch):
    world = build_world(app, client, make_account, county, monkeypatch)
    failures = []
    checked = 0
    order = sorted(ROUTES.items(), key=lambda item: item[1]["kind"] == "write")  # reads first
    for endpoint, spec in order:
        if spec["kind"] not in ("read", "list"):
            continue
        for name in INSIDE:
            problem = check_inside(app, client, world, endpoint, spec, name)
            if problem:
                failures.append(f"{endpoint} as {name}: {problem}")
    for endpoint, spec in order:
        if spec["kind"] not in ("read", "list", "write", "bulk"):
            continue
        for name in OUTSIDE:
            checked += 1
            problem = check_outside(app, client, world, endpoint, spec, name)
            if problem:
                failures.append(f"{endpoint} as {name}: {problem}")
    assert failures == [], "\n".join(failures)
    assert checked > 300


def test_samplers_push_only_within_their_assignment(app, client, make_account, county, monkeypatch):
    """A sampler's password and a device outside the assignment cannot store a sample on A's target
    parcel (OpenRosa with a password: test_openrosa_api); the device assigned it can."""
    from sqlalchemy import select

    from fieldsvc.samples.models import Sample

    world = build_world(app, client, make_account, county, monkeypatch)
    feature = next(f for f in county.parcels if f["properties"]["code"] == world.ids["parcel"])
    for name in ("sampler_password", "device_out"):
        got = results(push(client, world.headers[name], [record(data_for(feature, f"OUT-{name}"))]))[0]
        assert got["status"] == "rejected" and "not_assigned" in json.dumps(got), got
    got = results(push(client, world.headers["device_in"], [record(data_for(feature, "IN-1"))]))[0]
    assert got["status"] == "applied", got
    with app.app_context():
        stored = db.session.scalars(select(Sample.code).where(Sample.code.in_(("OUT-sampler_password",
                                                                               "OUT-device_out", "IN-1")))).all()
    assert stored == ["IN-1"]
