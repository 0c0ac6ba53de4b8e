"""Element maps (DESIGN §4.6): per county and analyte, an estimate grid and a σ grid.

``.tif``: GeoTIFF (rasterio) in the county's UTM zone, band 1 the estimate, band 2 σ, NaN where
fewer than ``min_neighbours`` samples lie within ``search_radius_m`` of a cell (not assessed).
``.png``: the estimate classed by the pack's limits (the strictest limit of the analyte over
land uses and pH: ≤ half of it, ≤ it, above it; not assessed grey), with a legend.
``.json``: the model report: method, variogram and leave-one-out cross-validation, and the
extent of the overlay.
``.png?overlay=1``: the same classes without the legend, resampled onto a Web Mercator grid and
transparent outside the grid, so that a web map lays it over its tiles as it is (``overlay``).

A map is a county surface: it pools every land-use group (parcel verdicts use each parcel's own
group). The model is the latest county run's, else fitted here.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import not_found
from . import estimation as es
from . import spatial
from .rules import LAND_USES, RulePack, load_pack

MAX_CELLS_SIDE = 300
MIN_CELL_M = 50.0
_PH_CLASSES = ((5.5, "pH < 5.5"), (6.5, "5.5-6.5"), (7.5, "6.5-7.5"), (math.inf, "pH > 7.5"))
_COLOURS = ((46, 139, 87), (240, 200, 60), (200, 50, 40), (120, 60, 150))
_GREY = (200, 200, 200)


@dataclass(frozen=True)
class ElementMap:
    county: str
    analyte: str
    unit: str
    epsg: int
    x0: float
    y1: float
    cell_m: float
    estimate: np.ndarray  # rows north to south
    sigma: np.ndarray
    model: es.Model
    samples: list[es.Obs]
    params: es.EstimationParams
    limit: float | None


# Mapped beside the pack's own analytes: Se (DZ/T 0295 / DZ/T 0380 land-quality surveys map it;
# its classes come from the Se-rich pack, not from a limit).
EXTRA_ANALYTES = ("Se",)
SE_PACK = "dzt0380_se_rich"


def analytes_of(pack: RulePack) -> list[str]:
    own = list(pack.data.get("analytes", []))
    return ["pH", *own, *(a for a in EXTRA_ANALYTES if a not in own)]


def _se_classes() -> list[tuple[float, str]]:
    """Not Se-rich / Se-rich / Se excess, from the Se-rich pack (the stricter, pH <= 7.5, threshold)."""
    se = load_pack(SE_PACK).data
    low, high = float(se["se_min"]["<=7.5"]), float(se["se_max"])
    return [(low, f"< {low:g} mg/kg (not Se-rich)"), (high, f"{low:g}-{high:g} mg/kg (Se-rich)"),
            (math.inf, f"> {high:g} mg/kg (Se excess)")]


def build(county: str, analyte: str, pack: RulePack,
          data: spatial.CountySurvey | None = None, shared: dict | None = None) -> ElementMap | None:
    """The grids for one county and analyte; None when the county has no parcel or no sample of it.

    ``data``: the county's samples, projection and extent (``spatial.load_survey``) when the
    caller builds several analytes' maps: one read of the county serves them all. ``shared``: a dict the caller keeps
    across those analytes, so the ones measured on the same samples share the grid's neighbour
    search and kriging windows (only the variogram differs)."""
    from .estimated import latest_models

    data = data if data is not None else spatial.load_survey(county)
    if data is None:
        return None
    obs = [es.Obs(s.code, s.x, s.y, s.land_use, float(s.values[analyte])) for s in data.samples if analyte in s.values]
    if not obs:
        return None
    params = pack.estimation
    model = (latest_models(county, pack) or {}).get(analyte) or es.fit_model(analyte, obs, params)
    pad = params.search_radius_m
    x0, x1, y0, y1 = data.extent[0] - pad, data.extent[1] + pad, data.extent[2] - pad, data.extent[3] + pad
    cell = max(MIN_CELL_M, max(x1 - x0, y1 - y0) / MAX_CELLS_SIDE)
    nx, ny = int(math.ceil((x1 - x0) / cell)), int(math.ceil((y1 - y0) / cell))
    cx = x0 + (np.arange(nx) + 0.5) * cell
    cy = y1 - (np.arange(ny) + 0.5) * cell  # north to south
    gx, gy = np.meshgrid(cx, cy)
    obs.sort(key=lambda o: o.code)
    sxy = np.array([[o.x, o.y] for o in obs])
    raw = np.array([o.value for o in obs])
    gxy = np.column_stack([gx.ravel(), gy.ravel()])
    key = (float(x0), float(y1), float(cell), nx, ny, tuple(o.code for o in obs))
    near = None if shared is None else shared.get(key)
    if near is None:
        near = (*es._neighbours(sxy, gxy, params), {})
        if shared is not None:
            shared[key] = near
    surf = es.estimate_points(model, sxy, raw, gxy, params, neighbours=(near[0], near[1]), windows=near[2])
    ok = surf.count >= params.min_neighbours
    est = np.where(ok, surf.value, np.nan).reshape(ny, nx)
    sig = np.where(ok, surf.sigma, np.nan).reshape(ny, nx)
    limit = None
    if analyte != "pH" and analyte in pack.data.get("analytes", []):
        lim = spatial.limit_fn(pack)
        limit = min(lim(analyte, lu, 0.0, 14.0)[0] for lu in LAND_USES if lu in pack.land_uses)
    unit = "" if analyte == "pH" else pack.data.get("unit", "mg/kg")
    return ElementMap(county, analyte, unit, data.projection.epsg, float(x0), float(y1), float(cell), est, sig,
                      model, obs, params, limit)


def geotiff(m: ElementMap) -> bytes:
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    ny, nx = m.estimate.shape
    with warnings.catch_warnings(), MemoryFile() as mem:
        # rasterio 1.4 multiplies affine transforms with ``*``, which affine 3 marks pending deprecation
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        with mem.open(driver="GTiff", height=ny, width=nx, count=2, dtype="float32",
                      crs=rasterio.crs.CRS.from_epsg(m.epsg), transform=from_origin(m.x0, m.y1, m.cell_m, m.cell_m),
                      nodata=float("nan"), compress="deflate") as dst:
            dst.write(m.estimate.astype("float32"), 1)
            dst.write(m.sigma.astype("float32"), 2)
            dst.set_band_description(1, f"{m.analyte} estimate ({m.unit or 'pH units'})")
            dst.set_band_description(2, f"{m.analyte} sigma")
            dst.update_tags(analyte=m.analyte, method=m.model.method, county=m.county)
        return mem.read()


def _classes(m: ElementMap) -> list[tuple[float, str]]:
    if m.analyte == "Se":
        return _se_classes()
    if m.limit is None:
        return list(_PH_CLASSES)
    half = m.limit / 2
    return [(half, f"<= {half:g} {m.unit} (half the limit)"), (m.limit, f"<= {m.limit:g} {m.unit} (limit)"),
            (math.inf, f"> {m.limit:g} {m.unit}")]


def png(m: ElementMap, scale: int = 2) -> bytes:
    from PIL import Image, ImageDraw

    classes = _classes(m)
    ny, nx = m.estimate.shape
    rgb = np.empty((ny, nx, 3), dtype=np.uint8)
    rgb[:] = _GREY
    est = m.estimate
    lower = -np.inf
    for k, (upper, _) in enumerate(classes):
        mask = np.isfinite(est) & (est > lower) & (est <= upper)
        rgb[mask] = _COLOURS[k]
        lower = upper
    img = Image.fromarray(rgb, "RGB").resize((nx * scale, ny * scale), Image.NEAREST)
    legend_h = 18 * (len(classes) + 2) + 10
    out = Image.new("RGB", (max(img.width, 360), img.height + legend_h), (255, 255, 255))
    out.paste(img, (0, 0))
    draw = ImageDraw.Draw(out)
    y = img.height + 6
    draw.text((6, y), f"{m.analyte}, county {m.county}: {m.model.method}, cell {m.cell_m:.0f} m", fill=(0, 0, 0))
    for k, (_, label) in enumerate(classes):
        y += 18
        draw.rectangle((6, y, 20, y + 12), fill=_COLOURS[k])
        draw.text((26, y), label, fill=(0, 0, 0))
    y += 18
    draw.rectangle((6, y, 20, y + 12), fill=_GREY)
    draw.text((26, y), f"not assessed (< {m.params.min_neighbours} samples within {m.params.search_radius_m:g} m)",
              fill=(0, 0, 0))
    buf = io.BytesIO()
    out.save(buf, "PNG", optimize=True)
    return buf.getvalue()


OVERLAY_MAX_SIDE = 800  # pixels on the longer side of the overlay picture


def overlay_extent(m: ElementMap) -> dict[str, Any]:
    """Where the overlay lies: the grid's bounds in Web Mercator metres (EPSG:3857) and in degrees."""
    from pyproj import Transformer

    ny, nx = m.estimate.shape
    x1, y0 = m.x0 + nx * m.cell_m, m.y1 - ny * m.cell_m
    merc = Transformer.from_crs(m.epsg, 3857, always_xy=True).transform_bounds(m.x0, y0, x1, m.y1, densify_pts=21)
    deg = Transformer.from_crs(m.epsg, 4326, always_xy=True).transform_bounds(m.x0, y0, x1, m.y1, densify_pts=21)
    return {"epsg": 3857, "bbox": [round(v, 1) for v in merc], "bbox_lonlat": [round(v, 6) for v in deg]}


def overlay(m: ElementMap) -> bytes:
    """The classed estimate as an RGBA PNG on a Web Mercator grid over ``overlay_extent``: each pixel takes
    the grid cell under its centre (nearest, as the classed PNG does), half-transparent; not-assessed cells
    a light grey; outside the grid transparent. Resampling here keeps UTM arithmetic out of the browser."""
    from PIL import Image
    from pyproj import Transformer

    w, s, e, n = overlay_extent(m)["bbox"]
    scale = OVERLAY_MAX_SIDE / max(e - w, n - s)
    width, height = max(1, round((e - w) * scale)), max(1, round((n - s) * scale))
    px = w + (np.arange(width) + 0.5) * (e - w) / width
    py = n - (np.arange(height) + 0.5) * (n - s) / height
    gx, gy = np.meshgrid(px, py)
    ux, uy = Transformer.from_crs(3857, m.epsg, always_xy=True).transform(gx, gy)
    ny, nx = m.estimate.shape
    col = np.floor((ux - m.x0) / m.cell_m).astype(int)
    row = np.floor((m.y1 - uy) / m.cell_m).astype(int)
    inside = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
    est = np.full(gx.shape, np.nan)
    est[inside] = m.estimate[row[inside], col[inside]]
    rgba = np.zeros(gx.shape + (4,), dtype=np.uint8)
    rgba[inside] = (*_GREY, 90)
    lower = -np.inf
    for k, (upper, _) in enumerate(_classes(m)):
        mask = inside & np.isfinite(est) & (est > lower) & (est <= upper)
        rgba[mask] = (*_COLOURS[k], 170)
        lower = upper
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG", optimize=True)
    return buf.getvalue()


def legend(m: ElementMap) -> list[dict[str, Any]]:
    """The overlay's classes (colour and label), as the classed PNG writes them under the picture."""
    def hex_(rgb: tuple[int, int, int]) -> str:
        return "#" + "".join(f"{c:02x}" for c in rgb)

    items = [{"colour": hex_(_COLOURS[k]), "label": label} for k, (_, label) in enumerate(_classes(m))]
    return [*items, {"colour": hex_(_GREY), "label": "not assessed"}]


def report(m: ElementMap) -> dict[str, Any]:
    v = m.model.variogram
    return {
        "county": m.county, "analyte": m.analyte, "unit": m.unit, "method": m.model.method,
        "reason": m.model.reason, "log_transformed": m.model.log, "samples": len(m.samples),
        "variogram": None if v is None else {"model": v["model"], "nugget": es._sig(v["nugget"]),
                                             "sill": es._sig(v["sill"]), "range_m": round(v["range_m"])},
        "cross_validation": es.cross_validate(m.model, m.samples, m.params),
        "extent": overlay_extent(m), "legend": legend(m),
        "grid": {"epsg": m.epsg, "cell_m": round(m.cell_m, 1), "width": int(m.estimate.shape[1]),
                 "height": int(m.estimate.shape[0]),
                 "assessed_share": round(float(np.isfinite(m.estimate).mean()), 4)},
        "limit": m.limit,
        "classes": [label for _, label in _classes(m)],
        "note": "A county surface pooling land uses; parcel verdicts use each parcel's own land-use group.",
    }


FORMATS = {"tif": "image/tiff", "png": "image/png", "json": "application/json"}


def element_map_file(county: str, analyte: str, fmt: str, pack: RulePack, actor: Any,
                     web_overlay: bool = False) -> bytes | dict[str, Any]:
    """One map file for an account (the API and the console serve the same): the GeoTIFF, the
    classed PNG (``web_overlay``: without legend, on a Web Mercator grid for a web map) or the model
    report. 404 for an unknown format or analyte, a county the account may not see, or a county
    without samples of the analyte."""
    from .queries import get_subject

    if fmt not in FORMATS:
        raise not_found("map format", fmt)
    pack.check_kind("green_food_soil")
    if analyte not in analytes_of(pack):
        raise not_found("analyte", analyte)
    get_subject("county", county, actor)  # 404 for a county the account may not see
    m = build(county, analyte, pack)
    if m is None:
        raise not_found("samples of", f"{analyte} in county {county}")
    if fmt == "json":
        return report(m)
    return geotiff(m) if fmt == "tif" else overlay(m) if web_overlay else png(m)
