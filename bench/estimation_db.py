"""The estimation bench's SQLite county (setup only, raw sqlite3): parcels on a grid, a sample
with approved Cd Hg As Pb Cr Cu and pH on one parcel in ``every``, values with a spatial trend.
Used by ``bench/estimation.py``."""

from __future__ import annotations

import math
import random
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from fieldsvc.places.services import RTREE_FILL

COUNTY = "360130"
LON0, LAT0 = 115.6, 28.1
METALS = {"Cd": 0.15, "Hg": 0.08, "As": 8.0, "Pb": 24.0, "Cr": 55.0, "Cu": 22.0}
LAND_USES = ("paddy", "dryland", "vegetable", "orchard", "tea", "paddy_dryland_rotation", "grassland")
BLOCK = 32  # a village is a BLOCK x BLOCK block of parcels
BATCH = 50_000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def layout(n_parcels: int, n_samples: int) -> tuple[int, float, float, float]:
    """(grid side in parcels, parcel pitch in m, degrees of lon and lat per m): one sample per ~5 ha."""
    side_m = math.sqrt(n_samples * 50_000)
    cols = math.ceil(math.sqrt(n_parcels))
    pitch = side_m / cols
    dlat = 1 / 111_320.0
    dlon = dlat / math.cos(math.radians(LAT0))
    return cols, pitch, dlon, dlat


def surface(x: float, y: float) -> float:
    """A smooth log-scale trend (the known spatial law of the synthetic county)."""
    return 0.5 * math.sin(x / 4000.0) + 0.4 * math.cos(y / 3000.0)


def populate(path: Path, n_parcels: int, n_samples: int, seed: int = 14) -> list[tuple[str, str]]:
    """Regions, parks, parcels, samples and approved results; returns (sample id, parcel) pairs."""
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    now = _now()
    cols, pitch, dlon, dlat = layout(n_parcels, n_samples)
    seq = 0

    def nextseq() -> int:
        nonlocal seq
        seq += 1
        return seq

    region = ("INSERT INTO regions (code,name,name_en,level,parent_code,county_code,version,seq,created_at,"
              "updated_at) VALUES (?,?,?,?,?,?,1,?,?,?)")
    con.execute(region, (COUNTY, "估值县", "Estimate county", "county", None, COUNTY, nextseq(), now, now))
    blocks = math.ceil(cols / BLOCK)
    town_of = {}
    for bx in range(blocks):
        town = f"{COUNTY}{bx + 100:03d}"
        con.execute(region, (town, f"镇{bx}", None, "township", COUNTY, COUNTY, nextseq(), now, now))
        town_of[bx] = town
    village = {}
    for bx in range(blocks):
        for by in range(blocks):
            code = f"{town_of[bx]}{by + 100:03d}"
            village[(bx, by)] = code
            con.execute(region, (code, f"村{bx}-{by}", None, "village", town_of[bx], COUNTY, nextseq(), now, now))
    parks = [f"EP-{i}" for i in range(max(1, len(village) // 10))]
    for code in parks:
        con.execute("INSERT INTO farm_parks (code,name,county_code,version,seq,created_at,updated_at) "
                    "VALUES (?,?,?,1,?,?,?)", (code, f"园区{code}", COUNTY, nextseq(), now, now))
    imp = con.execute("INSERT INTO lab_imports (sha256,filename,lab,created_by,created_at,layout,file_kind,rows,"
                      "accepted,held,qc_rows,qc_held,superseded,outcomes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                      ("1" * 64, "bench.csv", "lab", "bench", now, "long", "csv", n_samples * 7, n_samples * 7,
                       0, 0, 0, 0, "{}"))
    import_id = imp.lastrowid
    sampled = set(rng.sample(range(n_parcels), n_samples))
    made: list[tuple[str, str]] = []
    half = 0.4 * pitch
    for start in range(0, n_parcels, BATCH):
        parcels, samples, results = [], [], []
        for i in range(start, min(n_parcels, start + BATCH)):
            code = f"E{i:07d}"
            row, col = divmod(i, cols)
            x, y = (col + 0.5) * pitch, (row + 0.5) * pitch
            lon, lat = LON0 + x * dlon, LAT0 + y * dlat
            w, s, e, n = lon - half * dlon, lat - half * dlat, lon + half * dlon, lat + half * dlat
            geom = (f'{{"coordinates":[[[{w},{s}],[{e},{s}],[{e},{n}],[{w},{n}],[{w},{s}]]],"type":"Polygon"}}')
            park = parks[i % len(parks)] if i % 3 == 0 else None
            vcode = village[(col // BLOCK, row // BLOCK)]
            parcels.append((code, vcode, COUNTY, park, rng.choice(LAND_USES), round((2 * half) ** 2, 2), geom,
                            w, s, e, n, nextseq(), now, now))
            if i not in sampled:
                continue
            sid = str(uuid.UUID(int=rng.getrandbits(128)))
            made.append((sid, code))
            trend = surface(x, y)
            samples.append((sid, f"EB{i:07d}", code, COUNTY, lat, lon, now, "0" * 64, nextseq(), now, now))
            values = {a: f"{t * math.exp(trend + rng.gauss(0, 0.25)):.4g}" for a, t in METALS.items()}
            values["pH"] = f"{6.5 + 1.2 * trend + rng.gauss(0, 0.2):.2f}"
            for k, (analyte, value) in enumerate(values.items()):
                results.append((import_id, k + 2, sid, f"EB{i:07d}", f"EB{i:07d}", f"EB{i:07d}", analyte, "=",
                                value, "" if analyte == "pH" else "mg/kg", value, "mg/kg", "approved", now))
        con.executemany("INSERT INTO parcels (code,village_code,county_code,farm_park_code,land_use,area_m2,"
                        "area_computed,geometry_json,min_lon,min_lat,max_lon,max_lat,version,seq,created_at,"
                        "updated_at) VALUES (?,?,?,?,?,?,0,?,?,?,?,?,1,?,?,?)", parcels)
        con.executemany("INSERT INTO samples (id,code,parcel_code,county_code,lat,lon,state,flags,received_at,"
                        "mock_location,media,content_hash,version,seq,created_by,created_at,updated_at) "
                        "VALUES (?,?,?,?,?,?,'complete','[]',?,0,'[]',?,1,?,'bench',?,?)", samples)
        con.executemany("INSERT INTO lab_results (import_id,line,sample_id,sample_code,sample_code_key,series,analyte,"
                        "qualifier,value,unit,raw_value,raw_unit,qc_flags,qc_hold,status,approvals,version,"
                        "created_by,created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'[]',0,?,1,1,'bench',?)", results)
        con.commit()
    con.execute(RTREE_FILL)  # the boxes into the R*Tree, as the import does (no trigger does it)
    con.execute("UPDATE sequence_counters SET value = ? WHERE name = 'changes'", (seq,))
    con.commit()
    con.close()
    return made
