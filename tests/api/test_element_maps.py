"""Element maps: GET /api/v1/maps/<county>/<analyte>.tif|.png|.json."""

from __future__ import annotations

import io

from tests.api.test_grading_api import put_results, put_sample
from tests.helpers import assert_problem

CLEAN = {"pH": "6.0", "Cd": "0.12", "Hg": "0.05", "As": "8", "Pb": "25", "Cr": "60", "Cu": "20"}


def _sample_some(app, county, n=10):
    dry = [f["properties"] for f in county.parcels if f["properties"]["land_use"] in ("dryland", "vegetable", "tea")]
    for i, p in enumerate(dry[:n]):
        put_results(app, put_sample(app, p["code"], county=county.county),
                    {**CLEAN, "Cd": f"{0.08 + 0.03 * i:.2f}", "pH": f"{5.6 + 0.2 * i:.1f}"})


def test_maps_as_geotiff_png_and_model_report(app, client, official, county):
    import rasterio
    from PIL import Image

    _sample_some(app, county)
    base = f"/api/v1/maps/{county.county}/Cd"
    report = client.get(base + ".json", headers=official.headers)
    assert report.status_code == 200
    body = report.get_json()
    assert body["method"] == "idw" and body["reason"] == "too_few_samples" and body["samples"] == 10
    cv = body["cross_validation"]
    assert cv["n"] == 10 and set(cv) == {"n", "mean_error", "rmse", "mean_standardised_error", "coverage_95"}
    assert 0 < body["grid"]["assessed_share"] <= 1 and body["limit"] == 0.3

    tif = client.get(base + ".tif", headers=official.headers)
    assert tif.status_code == 200 and tif.mimetype == "image/tiff"
    with rasterio.open(io.BytesIO(tif.data)) as ds:
        assert ds.count == 2 and ds.crs.to_epsg() == body["grid"]["epsg"]
        est, sigma = ds.read(1), ds.read(2)
        assert (ds.width, ds.height) == (body["grid"]["width"], body["grid"]["height"])
    import numpy as np

    finite = np.isfinite(est)
    assert finite.any() and not finite.all()  # far corners are not assessed (NaN)
    assert 0.05 < float(np.nanmin(est)) and float(np.nanmax(est)) < 0.5  # within the samples' range, log-normal mean
    assert (np.isfinite(sigma) == finite).all() and float(np.nanmin(sigma)) >= 0

    png = client.get(base + ".png", headers=official.headers)
    assert png.status_code == 200 and png.mimetype == "image/png"
    img = Image.open(io.BytesIO(png.data))
    assert img.width >= 360 and img.height > 2 * body["grid"]["height"]
    colours = {c for _, c in img.convert("RGB").getcolors(maxcolors=1_000_000)}
    assert (200, 200, 200) in colours and (46, 139, 87) in colours  # not assessed grey, clean green

    ph = client.get(f"/api/v1/maps/{county.county}/pH.json", headers=official.headers).get_json()
    assert ph["limit"] is None and ph["samples"] == 10


def test_map_errors_name_what_is_missing(app, client, official, county):
    assert_problem(client.get(f"/api/v1/maps/{county.county}/Cd.json", headers=official.headers), 404, "not_found")
    _sample_some(app, county, 4)
    assert_problem(client.get(f"/api/v1/maps/{county.county}/Zn.json", headers=official.headers), 404, "not_found")
    assert_problem(client.get(f"/api/v1/maps/{county.county}/Cd.svg", headers=official.headers), 404, "not_found")
    assert_problem(client.get("/api/v1/maps/999999/Cd.json", headers=official.headers), 404, "not_found")
    assert client.get(f"/api/v1/maps/{county.county}/Cd.json").status_code == 401


def test_overlay_png_lies_on_web_mercator_over_the_extent_and_matches_the_grid(app, client, official, county):
    """The console lays ``.png?overlay=1`` over its tiles at the ``.json``'s ``extent``: each cell of the
    GeoTIFF grid, taken at its centre, has its class colour at that place in the overlay."""
    import numpy as np
    import rasterio
    from PIL import Image
    from pyproj import Transformer

    _sample_some(app, county)
    base = f"/api/v1/maps/{county.county}/Cd"
    body = client.get(base + ".json", headers=official.headers).get_json()
    extent = body["extent"]
    assert extent["epsg"] == 3857 and [c["label"] for c in body["legend"]][-1] == "not assessed"
    w, s, e, n = extent["bbox"]
    resp = client.get(base + ".png?overlay=1", headers=official.headers)
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    img = Image.open(io.BytesIO(resp.data))
    assert img.mode == "RGBA" and max(img.size) == 800
    # the console's overview fetches the same picture and report through its session-signed route
    assert client.get(f"/console/map/surface/{county.county}/Cd.png", headers=official.headers).data == resp.data
    assert client.get(f"/console/map/surface/{county.county}/Cd.json", headers=official.headers).get_json()[
        "extent"] == extent
    assert abs(img.width / img.height - (e - w) / (n - s)) < 0.01  # square pixels in Web Mercator
    with rasterio.open(io.BytesIO(client.get(base + ".tif", headers=official.headers).data)) as ds:
        est, transform, epsg = ds.read(1), ds.transform, ds.crs.to_epsg()
    to_merc = Transformer.from_crs(epsg, 3857, always_xy=True)
    pixels = img.load()
    limit = body["limit"]
    checked = {"finite": 0, "nan": 0}
    for row in range(0, est.shape[0], 7):
        for col in range(0, est.shape[1], 7):
            x, y = transform.c + (col + 0.5) * transform.a, transform.f + (row + 0.5) * transform.e
            mx, my = to_merc.transform(x, y)
            px, py = int((mx - w) / (e - w) * img.width), int((n - my) / (n - s) * img.height)
            r, g, b, a = pixels[px, py]
            value = est[row, col]
            if np.isfinite(value):
                want = (46, 139, 87) if value <= limit / 2 else (240, 200, 60) if value <= limit else (200, 50, 40)
                assert ((r, g, b), a) == (want, 170), (row, col, value)
                checked["finite"] += 1
            else:
                assert ((r, g, b), a) == ((200, 200, 200), 90)
                checked["nan"] += 1
    assert checked["finite"] > 10 and checked["nan"] > 10
    assert_problem(client.get(base + ".png?overlay=maybe", headers=official.headers), 422, "validation_failed",
                   "overlay")


def test_maps_of_several_analytes_share_the_grid_search_and_give_the_same_grids(app, county):
    import numpy as np

    from fieldsvc.grading import maps, spatial
    from fieldsvc.grading.rules import load_pack

    _sample_some(app, county)
    with app.app_context():
        pack = load_pack("green_food_soil")
        data = spatial.load_survey(county.county)
        shared: dict = {}
        for analyte in ("pH", "Cd", "Pb"):
            alone = maps.build(county.county, analyte, pack, data=data)
            together = maps.build(county.county, analyte, pack, data=data, shared=shared)
            np.testing.assert_array_equal(alone.estimate, together.estimate)
            np.testing.assert_array_equal(alone.sigma, together.sigma)
        assert len(shared) == 1  # the three analytes are measured on the same samples: one search


def test_the_survey_a_map_reads_is_the_county_read_without_its_parcels(app, county):
    """``load_survey`` (what maps and a county run's estimation read) gives the projection, the
    samples and the extent of the parcels' centres that reading every parcel (``load_county``)
    gives, so a map's grid is where it would be; a deleted parcel leaves the extent."""
    from datetime import UTC, datetime

    from fieldsvc.extensions import db
    from fieldsvc.grading import spatial
    from fieldsvc.grading.rules import load_pack
    from fieldsvc.places.models import Parcel

    _sample_some(app, county)
    with app.app_context():
        pack = load_pack("green_food_soil")

        def same():
            survey, full = spatial.load_survey(county.county), spatial.load_county(county.county, pack)
            xs, ys = [t.x for t in full.targets], [t.y for t in full.targets]
            assert survey.projection.epsg == full.projection.epsg
            assert survey.extent == (min(xs), max(xs), min(ys), max(ys))
            assert survey.samples == full.samples and len(survey.samples) >= 10
            return survey.extent

        before = same()
        east = db.session.scalars(db.select(Parcel).where(Parcel.county_code == county.county)
                                  .order_by(Parcel.max_lon.desc())).first()
        east.deleted_at = datetime.now(UTC)
        db.session.flush()
        after = same()
        assert after[1] < before[1]  # the easternmost parcel no longer stretches the extent
        db.session.rollback()
