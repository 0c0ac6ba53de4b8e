"""The demo lab file imports cleanly: realistic values, some exceedances and censored values, passing QC."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from fieldsvc.lab.demo import make_demo_results
from tests.api.test_lab_imports import make_samples, results, upload

LAND_USES = ("paddy", "dryland", "vegetable", "orchard", "tea", "grassland", "paddy_dryland_rotation")


def test_demo_results_are_deterministic_and_varied():
    samples = [{"code": f"D-{i:04d}", "land_use": LAND_USES[i % len(LAND_USES)]} for i in range(400)]
    data = make_demo_results(samples, seed=5)
    assert data == make_demo_results(samples, seed=5) and data != make_demo_results(samples, seed=6)
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    regular = [r for r in rows if not r["qc_type"]]
    assert len({r["sample_code"] for r in regular}) == 400
    cd = [Decimal(r["value"]) for r in regular if r["analyte"] == "Cd" and r["value"][0].isdigit()
          and not r["value"].endswith("L")]
    assert 0.1 < float(sorted(cd)[len(cd) // 2]) < 0.3  # a plausible median
    assert sum(1 for v in cd if v > Decimal("0.6")) >= 1  # a few exceedances of the green-food limit
    censored = {r["value"] for r in regular if not r["value"][0].isdigit() or r["value"].endswith("L")}
    assert censored and censored <= {"ND"} | {v for v in censored if v.startswith("<") or v.endswith("L")}
    land_use = {s["code"]: s["land_use"] for s in samples}
    ph: dict[str, list[float]] = {}
    for r in regular:
        if r["analyte"] == "pH":
            ph.setdefault(land_use[r["sample_code"]], []).append(float(r["value"]))
    mean = {k: sum(v) / len(v) for k, v in ph.items()}
    assert mean["tea"] < 5.2 < mean["dryland"]  # acid tea gardens
    assert {r["qc_type"] for r in rows} == {"", "blank", "duplicate"}


def test_demo_file_imports_with_passing_qc(app, client, make_account):
    codes = [f"D-{i:03d}" for i in range(30)]
    make_samples(app, *codes)
    lab, official = make_account("lab"), make_account("official")
    data = make_demo_results([{"code": c, "land_use": LAND_USES[i % 7]} for i, c in enumerate(codes)], seed=1)
    resp = upload(client, lab, data, filename="demo.csv")
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["held"] == 0 and body["qc_held"] == 0 and body["qc_rows"] > 0
    assert body["accepted"] == 30 * 15
    assert len(results(client, official, sample="D-000")) == 15
