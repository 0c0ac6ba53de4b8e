"""A synthetic county the size of a real pilot, for demos, tests and benchmarks.

青禾县 (Qinghe County) is fictional; its division code is only shaped like a Jiangxi one
(GB/T 2260 county code, then the statistical township and village digits) and is not meant to
match any real place. The layout sits in the paddy country south of Poyang Lake (~115.7°E, 28.3°N):
townships of village blocks, each block a grid of field cells, one jittered quadrilateral parcel
per cell inside a ridge margin, so parcels never overlap and every one is convex.

Everything comes from one ``random.Random(seed)``: the same seed gives identical output.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fieldsvc.places.geometry import areas_m2, metres_per_degree

COUNTY_CODE = "360129"
COUNTY_NAME = "青禾县"
COUNTY_NAME_EN = "Qinghe County"
ORIGIN = (115.62, 28.18)  # south-west corner of the farmland, lon/lat

LAND_USE_WEIGHTS = {
    "paddy": 45,
    "dryland": 20,
    "vegetable": 10,
    "orchard": 10,
    "tea": 8,
    "paddy_dryland_rotation": 5,
    "grassland": 2,
}
CROPS = {  # land use → (crop, weight); crops are stored by their Chinese name
    "paddy": (("水稻", 1),),
    "dryland": (("玉米", 30), ("花生", 25), ("大豆", 20), ("甘薯", 15), ("油菜", 10)),
    "vegetable": (("蔬菜", 60), ("辣椒", 20), ("白菜", 20)),
    "orchard": (("柑橘", 50), ("脐橙", 25), ("梨", 15), ("桃", 10)),
    "tea": (("茶叶", 1),),
    "grassland": (("牧草", 1),),
    "paddy_dryland_rotation": (("水稻-油菜", 80), ("水稻-马铃薯", 20)),
}
CROP_NAMES_EN = {
    "水稻": "rice", "玉米": "maize", "花生": "peanut", "大豆": "soybean", "甘薯": "sweet potato",
    "油菜": "rapeseed", "蔬菜": "vegetables", "辣椒": "chili pepper", "白菜": "Chinese cabbage",
    "柑橘": "citrus", "脐橙": "navel orange", "梨": "pear", "桃": "peach", "茶叶": "tea",
    "牧草": "forage", "水稻-油菜": "rice-rapeseed rotation", "水稻-马铃薯": "rice-potato rotation",
}
PARKS = (  # (name, English name, the land use the park specialises in)
    ("富硒水稻产业园", "Se-rich Rice Park", "paddy"),
    ("高山茶叶产业园", "Highland Tea Park", "tea"),
    ("柑橘产业园", "Citrus Park", "orchard"),
    ("绿色蔬菜产业园", "Green Vegetable Park", "vegetable"),
    ("稻油轮作示范园", "Rice-Rapeseed Rotation Demonstration Park", "paddy_dryland_rotation"),
)
PARK_SPECIALTY_SHARE = 0.85
AREA_GIVEN_SHARE = 0.70  # the rest come without area_m2, so that the importer computes it

_FIRST = (
    ("青", "qing"), ("石", "shi"), ("新", "xin"), ("黄", "huang"), ("大", "da"), ("高", "gao"),
    ("柳", "liu"), ("梅", "mei"), ("杨", "yang"), ("丰", "feng"), ("龙", "long"), ("金", "jin"),
    ("白", "bai"), ("长", "chang"), ("沙", "sha"), ("洪", "hong"), ("罗", "luo"), ("马", "ma"),
    ("上", "shang"), ("下", "xia"), ("安", "an"), ("永", "yong"), ("和", "he"), ("兴", "xing"),
    ("桂", "gui"), ("枫", "feng"), ("竹", "zhu"), ("松", "song"), ("桃", "tao"), ("樟", "zhang"),
    ("荷", "he"), ("万", "wan"), ("双", "shuang"), ("横", "heng"), ("前", "qian"), ("后", "hou"),
    ("东", "dong"), ("西", "xi"), ("南", "nan"), ("北", "bei"), ("中", "zhong"), ("古", "gu"),
    ("胡", "hu"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("邓", "deng"), ("熊", "xiong"),
)
_SECOND = (
    ("溪", "xi"), ("口", "kou"), ("岭", "ling"), ("坪", "ping"), ("塘", "tang"), ("田", "tian"),
    ("湾", "wan"), ("坑", "keng"), ("桥", "qiao"), ("埠", "bu"), ("山", "shan"), ("港", "gang"),
    ("洲", "zhou"), ("岗", "gang"), ("坊", "fang"), ("圩", "xu"), ("湖", "hu"), ("家", "jia"),
    ("源", "yuan"), ("里", "li"), ("陂", "bei"), ("庄", "zhuang"), ("园", "yuan"), ("林", "lin"),
    ("坳", "ao"), ("畈", "fan"), ("墩", "dun"), ("屋", "wu"), ("垅", "long"), ("背", "bei"),
)
_TOWNS = 8  # the first townships are towns (镇, codes 100…), the rest rural townships (乡, 200…)
_MARGIN_M, _JITTER_M = 2.5, 2.0  # field ridge kept free on each side of a cell; corner jitter


@dataclass(frozen=True)
class SamplePoint:
    """Where a sampler stood: inside ``parcel``, with the phone's reported accuracy."""

    parcel: str
    lon: float
    lat: float
    accuracy_m: float


@dataclass(frozen=True)
class DemoCounty:
    """Plain data, shaped like the API's inputs (regions, farm parks, a parcel FeatureCollection)."""

    seed: int
    county: str
    regions: list[dict[str, Any]]
    farm_parks: list[dict[str, Any]]
    parcels: list[dict[str, Any]]
    origin: tuple[float, float] = field(default=ORIGIN)

    def feature_collection(self) -> dict[str, Any]:
        return {"type": "FeatureCollection", "features": self.parcels}

    def summary(self) -> dict[str, Any]:
        levels = Counter(r["level"] for r in self.regions)
        props = [f["properties"] for f in self.parcels]
        return {
            "county": self.county,
            "townships": levels["township"],
            "villages": levels["village"],
            "farm_parks": len(self.farm_parks),
            "parcels": len(self.parcels),
            "parcels_in_farm_parks": sum(1 for p in props if "farm_park" in p),
            "parcels_with_area": sum(1 for p in props if "area_m2" in p),
            "land_use": dict(sorted(Counter(p["land_use"] for p in props).items())),
        }


# --- names --------------------------------------------------------------------------------------


def _pinyin(syllables: Sequence[str]) -> str:
    """Toneless pinyin word with the apostrophe before a/o/e syllables (Shi'ao), capitalised."""
    word = syllables[0] + "".join("'" + s if s[0] in "aoe" else s for s in syllables[1:])
    return word[:1].upper() + word[1:]


def _place_names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` distinct two-character names as (汉字, Pinyin)."""
    pairs = [(a, b) for a in _FIRST for b in _SECOND if a[1] != b[1]]
    return [(a[0] + b[0], _pinyin([a[1], b[1]])) for a, b in rng.sample(pairs, count)]


# --- regions ------------------------------------------------------------------------------------


def _allocate(rng: random.Random, total: int, parts: int, spread: float) -> list[int]:
    """Split ``total`` into ``parts`` positive integers around the mean (± ``spread`` share)."""
    weights = [rng.uniform(1.0 - spread, 1.0 + spread) for _ in range(parts)]
    free = total - parts
    raw = [free * w / sum(weights) for w in weights]
    counts = [1 + int(r) for r in raw]
    by_remainder = sorted(range(parts), key=lambda i: int(raw[i]) - raw[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _regions(rng: random.Random, townships: int, villages: int) -> tuple[list[dict], list[list[str]]]:
    """The county, its townships and villages, and each township's village codes in order."""
    regions = [{"code": COUNTY_CODE, "name": COUNTY_NAME, "name_en": COUNTY_NAME_EN, "level": "county",
                "parent": None}]
    names = iter(_place_names(rng, townships + villages))
    villages_of: list[list[str]] = []
    for t, n_villages in enumerate(_allocate(rng, villages, townships, 0.35)):
        is_town = t < _TOWNS
        code = f"{COUNTY_CODE}{100 + t if is_town else 200 + t - _TOWNS:03d}"
        name, name_en = next(names)
        regions.append({"code": code, "name": name + ("镇" if is_town else "乡"),
                        "name_en": f"{name_en} {'Town' if is_town else 'Township'}",
                        "level": "township", "parent": COUNTY_CODE})
        villages_of.append([])
        for v in range(n_villages):
            vname, vname_en = next(names)
            vcode = f"{code}{200 + v:03d}"
            regions.append({"code": vcode, "name": vname + "村", "name_en": f"{vname_en} Village",
                            "level": "village", "parent": code})
            villages_of[-1].append(vcode)
    return regions, villages_of


# --- layout (metres east/north of ORIGIN) -------------------------------------------------------


@dataclass
class _Block:
    """One village's field grid: column widths and row heights in metres, its first n cells used."""

    village: str
    n: int
    widths: list[float]
    heights: list[float]
    x: float = 0.0
    y: float = 0.0

    @property
    def width(self) -> float:
        return sum(self.widths)

    @property
    def height(self) -> float:
        return sum(self.heights)

    def cells(self) -> list[tuple[int, int]]:
        cols = len(self.widths)
        return [(i // cols, i % cols) for i in range(self.n)]

    def edge_x(self, col: int) -> float:
        return self.x + sum(self.widths[:col])

    def edge_y(self, row: int) -> float:
        return self.y + sum(self.heights[:row])


def _block(rng: random.Random, village: str, n: int) -> _Block:
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    # Mostly small fields, as in the hill-and-paddy south: 0.1–0.5 ha common, up to ~1.9 ha.
    widths = [rng.triangular(48.0, 150.0, 60.0) for _ in range(cols)]
    heights = [rng.triangular(38.0, 125.0, 50.0) for _ in range(rows)]
    return _Block(village, n, widths, heights)


def _pack(rng: random.Random, blocks: list[_Block]) -> list[list[_Block]]:
    """Shelf-pack village blocks left to right, bottom to top, with roads and hamlets between them."""
    area = sum((b.width + 180.0) * (b.height + 250.0) for b in blocks)
    shelf_width = math.sqrt(area)
    shelves: list[list[_Block]] = [[]]
    x = y = shelf_height = 0.0
    for b in blocks:
        if shelves[-1] and x + b.width > shelf_width:
            shelves.append([])
            x, y, shelf_height = 0.0, y + shelf_height + rng.uniform(100.0, 400.0), 0.0
        b.x, b.y = x, y
        shelves[-1].append(b)
        x += b.width + rng.uniform(60.0, 300.0)
        shelf_height = max(shelf_height, b.height)
    return shelves


class _Projector:
    """Metres east/north of ORIGIN → rounded lon/lat (7 decimals ≈ 1 cm, well inside ridge margins)."""

    def __init__(self, origin: tuple[float, float]) -> None:
        self.lon0, self.lat0 = origin
        self.kx, self.ky = metres_per_degree(origin[1] + 0.1)

    def __call__(self, x: float, y: float) -> list[float]:
        return [round(self.lon0 + x / self.kx, 7), round(self.lat0 + y / self.ky, 7)]


def _parcel_ring(rng: random.Random, block: _Block, row: int, col: int, to_deg: _Projector) -> list:
    x0, x1 = block.edge_x(col), block.edge_x(col + 1)
    y0, y1 = block.edge_y(row), block.edge_y(row + 1)
    m = _MARGIN_M

    def corner(x: float, y: float) -> list[float]:
        return to_deg(x + rng.uniform(-_JITTER_M, _JITTER_M), y + rng.uniform(-_JITTER_M, _JITTER_M))

    ring = [corner(x0 + m, y0 + m), corner(x1 - m, y0 + m), corner(x1 - m, y1 - m), corner(x0 + m, y1 - m)]
    return [*ring, ring[0]]  # counter-clockwise and closed, as RFC 7946 asks


# --- farm parks ---------------------------------------------------------------------------------


def _park_pairs(shelves: list[list[_Block]], count: int) -> list[tuple[_Block, _Block]]:
    """``count`` disjoint pairs of neighbouring villages, spread across the county."""
    pairs = [(s[i], s[i + 1]) for s in shelves for i in range(0, len(s) - 1, 2)]
    if len(pairs) < count:
        raise ValueError("too few villages for the farm parks")
    return [pairs[int((k + 0.5) * len(pairs) / count)] for k in range(count)]


def _park_outline(a: _Block, b: _Block) -> tuple[list[tuple[float, float]], set[tuple[str, int, int]]]:
    """A park over whole cells: the right part of village a and the left part of b, from the shelf base.

    Its edges run along cell boundaries (inside ridge margins) and through the road between
    the villages, so it holds whole parcels and no part of any other.
    """
    a_col, a_rows = len(a.widths) // 3, max(1, len(a.heights) - len(a.heights) // 4)
    b_cols, b_rows = max(1, (2 * len(b.widths) + 2) // 3), max(1, len(b.heights) - len(b.heights) // 4)
    xa, xm, xb = a.edge_x(a_col), (a.x + a.width + b.x) / 2, b.edge_x(b_cols)
    ya, yb = a.edge_y(a_rows), b.edge_y(b_rows)
    outline = [(xa, a.y), (xb, a.y), (xb, yb), (xm, yb), (xm, ya), (xa, ya)]
    if ya == yb:
        outline = [(xa, a.y), (xb, a.y), (xb, yb), (xa, ya)]
    cells = {(a.village, r, c) for r, c in a.cells() if c >= a_col and r < a_rows}
    cells |= {(b.village, r, c) for r, c in b.cells() if c < b_cols and r < b_rows}
    return outline, cells


def _farm_parks(shelves: list[list[_Block]], to_deg: _Projector) -> tuple[list[dict], dict]:
    parks, park_of_cell = [], {}
    pairs = _park_pairs(shelves, len(PARKS))
    for k, ((name, name_en, _), (a, b)) in enumerate(zip(PARKS, pairs, strict=True)):
        outline, cells = _park_outline(a, b)
        ring = [to_deg(x, y) for x, y in outline]
        geometry = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
        parks.append({"code": f"{COUNTY_CODE}-P{k + 1:02d}", "name": COUNTY_NAME + name,
                      "name_en": f"Qinghe {name_en}", "county": COUNTY_CODE, "geometry": geometry})
        park_of_cell.update(dict.fromkeys(cells, k))
    return parks, park_of_cell


# --- parcels ------------------------------------------------------------------------------------


def _land_use_picker(rng: random.Random) -> tuple[list[str], list[float]]:
    """This village's land-use mix: the county weights, each scaled by a local factor."""
    uses = list(LAND_USE_WEIGHTS)
    weights = [LAND_USE_WEIGHTS[u] * rng.uniform(0.4, 1.6) for u in uses]
    return uses, list(_cumulative(weights))


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


_CROP_CUM = {use: ([c for c, _ in crops], _cumulative([w for _, w in crops])) for use, crops in CROPS.items()}


def _parcels(rng: random.Random, shelves: list[list[_Block]], parks: list[dict], park_of_cell: dict,
             to_deg: _Projector) -> list[dict]:
    features = []
    for block in (b for shelf in shelves for b in shelf):
        uses, cum = _land_use_picker(rng)
        for i, (row, col) in enumerate(block.cells()):
            park = park_of_cell.get((block.village, row, col))
            land_use = rng.choices(uses, cum_weights=cum)[0]
            if park is not None and rng.random() < PARK_SPECIALTY_SHARE:
                land_use = PARKS[park][2]
            crops, crop_cum = _CROP_CUM[land_use]
            props: dict[str, Any] = {"code": f"{block.village}-{i + 1:04d}", "village": block.village,
                                     "land_use": land_use}
            if park is not None:
                props["farm_park"] = parks[park]["code"]
            props["crop"] = rng.choices(crops, cum_weights=crop_cum)[0]
            ring = _parcel_ring(rng, block, row, col, to_deg)
            features.append({"type": "Feature", "properties": props,
                             "geometry": {"type": "Polygon", "coordinates": [ring]}})
    given = [rng.random() < AREA_GIVEN_SHARE for _ in features]
    for feature, has_area, area in zip(features, given, areas_m2([f["geometry"] for f in features]),
                                       strict=True):
        if has_area:
            feature["properties"]["area_m2"] = round(area, 2)
    return features


def generate_county(seed: int = 391, parcels: int = 20_000, *, townships: int = 12,
                    villages: int = 391) -> DemoCounty:
    """A deterministic demo county: regions, 5 farm parks and ``parcels`` parcel Features.

    The defaults match a real county pilot (391 villages, 5 agricultural parks, ~20,000 parcels).
    :raise ValueError: when there are fewer parcels than villages or too few villages for the parks.
    """
    if parcels < villages or villages < 2 * len(PARKS) or not 1 <= townships <= villages:
        raise ValueError("need parcels >= villages >= 10 and 1 <= townships <= villages")
    rng = random.Random(seed)
    regions, villages_of = _regions(rng, townships, villages)
    village_codes = [v for vs in villages_of for v in vs]
    counts = _allocate(rng, parcels, villages, 0.5)
    shelves = _pack(rng, [_block(rng, v, n) for v, n in zip(village_codes, counts, strict=True)])
    to_deg = _Projector(ORIGIN)
    parks, park_of_cell = _farm_parks(shelves, to_deg)
    features = _parcels(rng, shelves, parks, park_of_cell, to_deg)
    return DemoCounty(seed=seed, county=COUNTY_CODE, regions=regions, farm_parks=parks, parcels=features)


def sample_points(county: DemoCounty, n: int, seed: int = 1) -> list[SamplePoint]:
    """``n`` plausible sampling spots, each well inside a demo parcel (distinct parcels while n allows).

    Accuracy follows what phones report in open fields: mostly 3–10 m, now and then much worse.
    """
    rng = random.Random(seed)
    total = len(county.parcels)
    picks = rng.sample(range(total), n) if n <= total else [rng.randrange(total) for _ in range(n)]
    points = []
    for index in picks:
        feature = county.parcels[index]
        (a, b, c, d, _) = feature["geometry"]["coordinates"][0]
        u, v = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85)
        # Bilinear interpolation of the four corners stays inside a convex quadrilateral.
        lon = (1 - u) * (1 - v) * a[0] + u * (1 - v) * b[0] + u * v * c[0] + (1 - u) * v * d[0]
        lat = (1 - u) * (1 - v) * a[1] + u * (1 - v) * b[1] + u * v * c[1] + (1 - u) * v * d[1]
        accuracy = min(60.0, max(2.0, rng.lognormvariate(math.log(5.0), 0.45)))
        code = feature["properties"]["code"]
        points.append(SamplePoint(code, round(lon, 7), round(lat, 7), round(accuracy, 1)))
    return points


# --- a survey's sampling design ----------------------------------------------------------------

SURVEY_SPACING_M = 600.0  # one sample per ~15 ha of farmland, as land-quality surveys sample (one per several ha)
SURVEY_GAPS = (  # (east km, north km, radius km) from ORIGIN: land the survey did not reach
    (14.0, 17.5, 2.0),  # the far north-east corner: hill farms, left for next season
    (1.5, 13.0, 1.8),   # a western valley: access road washed out
    (9.0, 9.5, 1.6),    # a village cluster whose samples were lost in transit
)


def local_xy(county: DemoCounty, lon: float, lat: float) -> tuple[float, float]:
    """Metres east and north of the county's origin (the inverse of the generator's projector)."""
    kx, ky = metres_per_degree(county.origin[1] + 0.1)
    return (lon - county.origin[0]) * kx, (lat - county.origin[1]) * ky


def parcel_centre(feature: dict[str, Any]) -> tuple[float, float]:
    """lon/lat of the mean of a demo parcel's four corners (inside it: every parcel is convex)."""
    ring = feature["geometry"]["coordinates"][0][:4]
    return sum(p[0] for p in ring) / 4, sum(p[1] for p in ring) / 4


def survey_parcels(county: DemoCounty, spacing_m: float = SURVEY_SPACING_M, seed: int = 7,
                   gaps: Sequence[tuple[float, float, float]] = SURVEY_GAPS) -> list[str]:
    """The parcels a county survey samples, in survey order: a jittered grid of ``spacing_m``
    over the farmland, each node taking the parcel whose centre is nearest (within the cell),
    none inside the ``gaps`` (areas the survey did not reach). Deterministic for a seed.

    Real surveys (DZ/T 0295, NY/T 1054 practice) lay out a grid of about one composite sample per
    several hectares and value the land between from those samples; this gives the demo that
    density instead of sampling a few villages parcel by parcel.
    """
    rng = random.Random(seed)
    cells: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
    for feature in county.parcels:
        x, y = local_xy(county, *parcel_centre(feature))
        cells.setdefault((int(x // spacing_m), int(y // spacing_m)), []).append((x, y, feature["properties"]["code"]))
    chosen = []
    for (i, j) in sorted(cells):
        tx = (i + 0.5 + rng.uniform(-0.3, 0.3)) * spacing_m
        ty = (j + 0.5 + rng.uniform(-0.3, 0.3)) * spacing_m
        if any(math.hypot(tx - gx * 1000, ty - gy * 1000) < r * 1000 for gx, gy, r in gaps):
            continue
        x, y, code = min(cells[(i, j)], key=lambda c: (math.hypot(c[0] - tx, c[1] - ty), c[2]))
        chosen.append(code)
    return chosen
