"""Load the demo county through the same services the API uses, so the demo exercises real rules.

The whole pipeline shows up in `make run`: places, a sampler's phone with its pushes and photos,
a lab's results (with censored values and a QC batch), an official's approvals, grades for every
parcel, village, farm park and the county, and certificates (one of them revoked).

The samples follow a survey's design (``places.demo_data.survey_parcels``: a grid of about one
sample per 15 ha over the whole county, a few areas the survey did not reach) plus every parcel
of the first farm park (the showcase that can be certified), and their values follow a spatial
law (``element_trend``: a Cd hot spot downstream of an old smelter, a Se-rich belt, a pH
gradient), so the county shows what real survey data gives: most parcels estimated from their
neighbours, most villages assessed, a few not assessed, and element maps with structure.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from flask import current_app
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from .auth.principal import SYSTEM, Actor
from .auth.services import create_user, get_user_by_username
from .certificates.models import Certificate
from .certificates.services import issue_certificate, issue_demo_certificates
from .dbtypes import isoformat, utcnow
from .devices.services import provisioning_text, register_device
from .errors import Problem
from .extensions import db
from .grading.models import Grade
from .grading.rules import DEFAULT_PACK
from .grading.runs import grade_demo_county
from .lab.demo import make_demo_results, make_demo_retests
from .lab.models import LabResult
from .lab.services import import_results, review_results
from .media.services import receive_chunk, storage
from .places import services as places
from .places.demo_data import DemoCounty, generate_county, local_xy, parcel_centre, survey_parcels
from .places.models import Parcel, Region
from .sync.push import push

# Demo accounts for trying the API locally; the README says to remove them for real use.
DEMO_PASSWORD = "demo-password"
DEMO_USERS = (("admin", "admin"), ("official", "official"), ("lab", "lab"), ("sampler", "sampler"))
PHOTOS = 24  # the first samples carry a photo
BATCH = 500
DEMO_LAB = "青禾县土壤检测实验室 Qinghe soil lab"


@dataclass(frozen=True)
class DemoSample:
    id: str
    code: str
    land_use: str
    parcel: str
    trend: dict[str, float] | None = None  # where the sample lies in the demo's spatial law


def load_demo(*, parcels: int = 20_000, seed: int = 391, if_empty: bool = False,
              echo: Callable[[str], Any] = print, secret_key: str | None = None) -> dict[str, Any]:
    """Places, accounts, a device, samples with photos, lab results, approvals, grades, certificates.

    With ``secret_key`` the demo device also gets ODK Collect's settings QR (its key kept sealed)."""
    if if_empty and db.session.scalar(select(func.count()).select_from(Region).where(Region.level == "county")):
        echo("a county is already loaded; skipping the demo")
        return {}
    county = generate_county(seed=seed, parcels=parcels)
    echo(f"demo county {county.county}: {len(county.regions)} regions, {len(county.parcels)} parcels")
    result = load_places(county)
    _demo_accounts(county.county)
    parcels_sampled = survey_design(county)
    village_of = {f["properties"]["code"]: f["properties"]["village"] for f in county.parcels}
    villages = sorted({village_of[code] for code in parcels_sampled})
    device = register_device({"name": "Demo phone", "user": "sampler", "villages": villages, "parcels": []},
                             SYSTEM, secret_key=secret_key)
    phone = Actor(device.device.user_id, "sampler", "sampler", county.county, device_pk=device.device.id,
                  device_id=device.device.device_id)
    samples = push_demo_samples(county, parcels_sampled, phone)
    echo(f"pushed {len(samples)} samples from the demo phone")
    lab_outcome = import_results(make_demo_results(samples, seed), "demo-lab-results.csv", _actor("lab"),
                                 lab=DEMO_LAB)
    approved = approve_demo_results(_actor("official"))
    echo(f"lab import: {lab_outcome.report.get('rows')} rows; {approved} results approved")
    grades = grade_demo_county(county.county)
    retested = retest_park_exceedances(county, samples)
    echo(f"graded the county; the lab re-tested {retested} results in the first farm park")
    certificates = issue_demo_certificates(county.county, current_app.config, actor=_actor("official"))
    queues = _seed_queues(county, samples, phone)
    echo("left one of each for the console's queues: " + ", ".join(f"{k} {v}" for k, v in queues.items()))
    db.session.commit()
    summary = county.summary()
    summary.update(imported_parcels=result.count, samples=len(samples), approved_results=approved,
                   grading=grades.get("counts", grades), certificates=certificates,
                   demo_device=device.device.device_id, demo_device_link=str(_save_device_link(device)),
                   accounts=[u for u, _ in DEMO_USERS], password=DEMO_PASSWORD)
    return summary


EXPIRING_DAYS = 20  # the demo's certificate that runs out soon


def _seed_queues(county: DemoCounty, samples: list[DemoSample], phone: Actor) -> dict[str, Any]:
    """Leave something in every console queue the README promises (issue 16): a sync conflict, a held
    sample, a held and a pending lab result, a QC failure, a flagged sample and a certificate that
    expires soon. Kept apart from the sampling above (its density changes on its own), and small:
    a few records through the same services a phone, a lab and an official use."""
    config = current_app.config
    lab_actor, official = _actor("lab"), _actor("official")
    outside = [s for s in samples if s.parcel not in _park_parcels(county)] or samples
    target, neighbour = outside[-1], outside[-2]
    feature = next(f for f in county.parcels if f["properties"]["code"] == target.parcel)
    n = len(samples) + 1
    # a conflict: the phone sends the same sample id with other depths and no base version
    edited = {**_sample_data(feature, target.code, len(samples) - 1), "depth_bottom_cm": 30}
    # a held sample: a parcel code the county does not have (the sampler mistyped it)
    held = {**_sample_data(feature, f"QH{n:05d}", n), "parcel": f"{target.parcel}X"}
    # a flagged sample: a second bag on the parcel with a poor fix (no results: it changes no grade)
    flagged = _sample_data(feature, f"QH{n + 1:05d}", n + 1)
    flagged["location"]["accuracy_m"] = 65.0
    records = [{"type": "sample", "id": target.id, "base_version": None, "deleted": False, "data": edited},
               {"type": "sample", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fieldsvc-demo/{county.seed}/held")),
                "base_version": None, "deleted": False, "data": held},
               {"type": "sample", "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fieldsvc-demo/{county.seed}/flag")),
                "base_version": None, "deleted": False, "data": flagged}]
    push({"device_sent_at": isoformat(utcnow()), "schema_version": 1, "records": records}, phone,
         hold_ttl_s=config["HOLD_TTL_S"], max_records=BATCH)
    # the lab: a re-test waiting for approval and a bag that never arrived; then a batch whose blank failed
    header = "sample_code,analyte,value,unit,detection_limit,method,qc_type,duplicate_of,crm\n"
    pending = (header + f"{neighbour.code},Cd,0.21,mg/kg,0.01,GB/T 17141-1997,,,\n"
               f"QH99999,Cd,0.12,mg/kg,0.01,GB/T 17141-1997,,,\n")
    import_results(pending.encode(), "demo-retest-pending.csv", lab_actor, lab=DEMO_LAB)
    failed = (header + f"{target.code},Pb,31.5,mg/kg,0.1,GB/T 17141-1997,,,\n"
              "BLK-9,Pb,2.4,mg/kg,0.1,GB/T 17141-1997,blank,,\n")
    import_results(failed.encode(), "demo-qc-failed-blank.csv", lab_actor, lab=DEMO_LAB)
    # a certificate that runs out soon: for a measured qualifying parcel without one, else issued again
    # (superseding, as an official renewing it for a short season would) for one that has one
    qualifying = list(db.session.scalars(select(Grade.subject_code).where(
        Grade.subject_type == "parcel", Grade.rule_pack == DEFAULT_PACK, Grade.superseded_by.is_(None),
        Grade.qualified.is_(True)).order_by(Grade.subject_code).limit(200)))
    certified = set(db.session.scalars(select(Certificate.subject_code).where(
        Certificate.subject_type == "parcel", Certificate.subject_code.in_(qualifying))))
    expiring = None
    for code in [c for c in qualifying if c not in certified] + [c for c in qualifying if c in certified]:
        try:
            expiring, _ = issue_certificate({"subject_type": "parcel", "code": code, "valid_days": EXPIRING_DAYS},
                                            official, config)
        except Problem:
            continue
        break
    return {"conflict": target.code, "held_sample": held["code"], "flagged": flagged["code"],
            "pending": neighbour.code, "qc_failed": "demo-qc-failed-blank.csv",
            "expiring": expiring.code if expiring else None}


def _park_parcels(county: DemoCounty) -> set[str]:
    park = county.farm_parks[0]["code"]
    return {f["properties"]["code"] for f in county.parcels if f["properties"].get("farm_park") == park}


def _save_device_link(device: Any) -> Path:
    """The demo phone's provisioning link goes into a 0600 file, never to stdout or a log."""
    path = Path(current_app.instance_path) / "demo-device-link.txt"
    text = provisioning_text(current_app.config["PUBLIC_BASE_URL"], device.device, device.token)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    return path


def load_places(county: DemoCounty) -> places.ImportResult:
    """Regions, farm parks and parcels; flushes, the caller commits."""
    load_areas(county)
    return places.import_parcels(county.feature_collection(), SYSTEM, max_features=len(county.parcels))


def load_areas(county: DemoCounty) -> None:
    """The county's regions (parents first: a township names its county) and farm parks, without
    parcels (the benchmarks import those their own way); flushes, the caller commits."""
    for level in ("county", "township", "village"):
        for region in county.regions:
            if region["level"] == level:
                places.create_region(region, SYSTEM)
    for park in county.farm_parks:
        places.create_farm_park(park, SYSTEM)


def survey_design(county: DemoCounty) -> list[str]:
    """The parcels sampled: every parcel of the first farm park (so it can grade A and be certified
    on measured values), then the county survey's grid (``survey_parcels``), in that order."""
    park = county.farm_parks[0]["code"]
    chosen = [f["properties"]["code"] for f in county.parcels if f["properties"].get("farm_park") == park]
    seen = set(chosen)
    return chosen + [code for code in survey_parcels(county) if code not in seen]


def element_trend(x_m: float, y_m: float) -> dict[str, float]:
    """The demo county's spatial law at a point (metres east and north of its origin).

    Multipliers of each element's typical value (``pH``: added): a Cd hot spot downstream of an
    old smelter in the east (Cd above the paddy limit near its centre), raised Pb around the county
    town, As rising gently eastwards, a Se-rich belt running north-east through the first farm
    park, pH more acid in the north-west. Samples add their own noise (``lab.demo``).
    """
    x, y = x_m / 1000, y_m / 1000
    bump = lambda cx, cy, s: math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))  # noqa: E731
    belt = (y - 2.0 - 0.8 * (x - 3.8)) / math.hypot(1.0, 0.8)  # signed distance to the Se belt's axis, km
    def wave(k: int) -> float:  # a smooth regional field (wavelengths 6-11 km), different per element
        return math.exp(0.12 * (math.sin(x / (1.0 + 0.3 * k) + k) + math.cos(y / (1.4 + 0.2 * k) + 2 * k)))

    return {"Cd": wave(1) * (1.0 + 2.2 * bump(12.5, 11.0, 1.1)), "Hg": wave(2),
            "Pb": wave(3) * (1.0 + 0.4 * bump(5.0, 15.0, 1.5)), "As": wave(4) * (0.85 + 0.025 * x),
            "Cr": wave(5), "Cu": wave(6), "Ni": wave(7), "Zn": wave(8),
            "Se": wave(9) * (1.0 + 0.9 * math.exp(-belt * belt / (2 * 1.2 * 1.2))),
            "pH": 0.04 * (x - 8.0) - 0.03 * (y - 9.5) + 0.25 * math.sin(x / 1.8 + y / 2.5)}


def push_demo_samples(county: DemoCounty, parcel_codes: list[str], phone: Actor) -> list[DemoSample]:
    """One sample on each of ``parcel_codes``, pushed in batches like a phone would, and its photos uploaded.

    The first samples carry a photo; one photo, on a parcel outside the showcase park, never
    arrives, so that sample stays ``awaiting_media`` and out of grading, as on a real phone.
    """
    by_code = {f["properties"]["code"]: f for f in county.parcels}
    features = [by_code[code] for code in parcel_codes]
    park = county.farm_parks[0]["code"]
    missing = max((n for n, f in enumerate(features) if f["properties"].get("farm_park") != park), default=-1)
    records, photos, made = [], [], []
    for n, feature in enumerate(features):
        props = feature["properties"]
        sample_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"fieldsvc-demo/{county.seed}/{n}"))
        code = f"QH{n + 1:05d}"
        data = _sample_data(feature, code, n)
        if n < PHOTOS or n == missing:
            photo = _photo(n)
            data["media"] = [{"name": f"{code}-1.jpg", "sha256": _sha(photo), "bytes": len(photo),
                              "mime": "image/jpeg"}]
            if n != missing:
                photos.append(photo)
        records.append({"type": "sample", "id": sample_id, "base_version": None, "deleted": False, "data": data})
        made.append(DemoSample(sample_id, code, props["land_use"], props["code"],
                               element_trend(*local_xy(county, *parcel_centre(feature)))))
    config = current_app.config
    for start in range(0, len(records), BATCH):
        body = {"device_sent_at": isoformat(utcnow()), "schema_version": 1, "records": records[start:start + BATCH]}
        push(body, phone, hold_ttl_s=config["HOLD_TTL_S"], max_records=BATCH)
    store = storage()
    for photo in photos:
        receive_chunk(_sha(photo), 0, len(photo) - 1, len(photo), io.BytesIO(photo), phone, store)
    return made


def approve_demo_results(official: Actor) -> int:
    """The official approves every linked, reviewable result the lab sent (QC holds stay pending)."""
    ids = list(db.session.scalars(select(LabResult.id).where(
        LabResult.status == "pending", LabResult.qc_type.is_(None), LabResult.qc_hold.is_(False),
        LabResult.sample_id.is_not(None), LabResult.superseded_by.is_(None)).order_by(LabResult.id)))
    outcome = review_results("approve", [str(i) for i in ids], official,
                             approvals_required=current_app.config["LAB_APPROVALS_REQUIRED"])
    return outcome.done


def retest_park_exceedances(county: DemoCounty, samples: list[DemoSample], rounds: int = 3) -> int:
    """The lab re-measures the limiting metals of the first park's failing parcels; re-grading follows."""
    park = county.farm_parks[0]["code"]
    by_parcel = {s.parcel: s for s in samples}
    done = 0
    for round_no in range(rounds):
        failing = [(by_parcel[code], limiting) for code, limiting in _failing_parcels(park)]
        if not failing:
            break
        data = make_demo_retests([(s.code, s.land_use, limiting) for s, limiting in failing], seed=392 + round_no)
        import_results(data, f"demo-retests-{round_no + 1}.csv", _actor("lab"), lab=DEMO_LAB)
        done += approve_demo_results(_actor("official"))
    return done


def _failing_parcels(park: str) -> list[tuple[str, list[str]]]:
    stmt = (select(Grade.subject_code, Grade.limiting)
            .join(Parcel, Parcel.code == Grade.subject_code)
            .where(Parcel.farm_park_code == park, Grade.subject_type == "parcel", Grade.rule_pack == DEFAULT_PACK,
                   Grade.superseded_by.is_(None), Grade.qualified.is_(False)))
    return [(code, list(limiting or [])) for code, limiting in db.session.execute(stmt)]


def _sample_data(feature: dict[str, Any], code: str, n: int) -> dict[str, Any]:
    lon, lat = parcel_centre(feature)
    accuracy, mock = 4.0 + n % 7, False
    if n == 5:
        accuracy = 48.0  # a poor fix: flagged low_accuracy
    if n == 9:
        lon += 0.003  # ~300 m off its parcel: flagged location_mismatch
    if n == 13:
        mock = True  # a mock location: flagged, kept
    props = feature["properties"]
    return {"code": code, "parcel": props["code"], "collected_at": f"2026-10-{12 + n // 200:02d}T"
            f"{1 + n % 9:02d}:{n % 60:02d}:00Z", "location": {"lat": round(lat, 7), "lon": round(lon, 7),
                                                               "accuracy_m": accuracy, "mock": mock},
            "depth_top_cm": 0, "depth_bottom_cm": 20, "sample_type": "composite",
            "land_use_observed": props["land_use"], "note": "", "media": []}


def _photo(n: int) -> bytes:
    """A small earth-toned JPEG standing in for a field photo."""
    image = Image.new("RGB", (160, 120), (120 + n % 40, 90 + n % 30, 60))
    draw = ImageDraw.Draw(image)
    for y in range(0, 120, 8):
        draw.line([(0, y), (160, y + n % 20)], fill=(90 + (y * 3) % 60, 70, 40), width=3)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    return buffer.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _actor(username: str) -> Actor:
    user = get_user_by_username(username)
    return Actor(user.id, user.username, user.role, user.county_code)


def _demo_accounts(county_code: str) -> None:
    for username, role in DEMO_USERS:
        if get_user_by_username(username) is None:
            create_user(username, DEMO_PASSWORD, role, county_code=None if role == "admin" else county_code,
                        config=current_app.config, actor="demo")
